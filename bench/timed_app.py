"""The HTTP benchmark's ``--timing`` runs: the app under test, wrapped to note each request's start and its time
inside the app, per worker process. The benchmark compares that with what wrk saw: how evenly the workers
shared the load, and how much of the latency was spent before the app got the request (queued in a worker or
in the listen backlog) rather than in it.

    SALESBOT_BENCH_TIMED_APP=bot.wsgi:app SALESBOT_BENCH_TIMING_DIR=/tmp/x gunicorn bench.timed_app:app

Each worker writes ``<pid>.txt`` (one ``start app_seconds`` line per request, ``start`` in Unix seconds) into
the directory when it exits (gunicorn's graceful stop exits through ``sys.exit``, so ``atexit`` runs);
``bench.http_bench.server_side`` reads them. The wrapper costs a few microseconds per request, which is why
ordinary runs go without it.
"""

from __future__ import annotations

import atexit
import importlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_module, _, _attr = os.environ["SALESBOT_BENCH_TIMED_APP"].partition(":")
_app: Callable[..., Iterable[bytes]] = getattr(importlib.import_module(_module), _attr or "app")
_dir = Path(os.environ["SALESBOT_BENCH_TIMING_DIR"])
_seen: list[tuple[float, float]] = []  # (start, seconds in the app); list.append is atomic across threads


def _write() -> None:
    (_dir / f"{os.getpid()}.txt").write_text("".join(f"{start:.6f} {took:.6f}\n" for start, took in _seen),
                                             encoding="utf-8")


atexit.register(_write)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start, began = time.time(), time.perf_counter()
    body = _app(environ, start_response)
    try:
        return list(body)  # the benchmark's answers are small: read whole, so the time covers building them
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
        _seen.append((start, time.perf_counter() - began))

