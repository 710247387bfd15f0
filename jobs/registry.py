"""Scheduled jobs by name. A job is a function of the runtime returning a one-line summary."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime

JobFn = Callable[["Runtime"], str]


@dataclass(frozen=True)
class Job:
    name: str
    fn: JobFn
    doc: str


JOBS: dict[str, Job] = {}


def job(name: str, doc: str) -> Callable[[JobFn], JobFn]:
    def register(fn: JobFn) -> JobFn:
        JOBS[name] = Job(name, fn, doc)
        return fn
    return register


def load_jobs() -> dict[str, Job]:
    from jobs import (  # noqa: F401
        bank,
        cleanup,
        collection_reminders,
        credit_check,
        customer_events,
        erp_sync,
        forecast_snapshot,
        funnel_heatmap,
        incentives,
        link_clicks,
        media_fetch,
        note_reminders,
        rejection_alert,
    )

    return JOBS


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_threshold: tuple[int, int, int] | None = None


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Batch work with the cyclic garbage collector out of the way: the objects the process already holds
    (the app, SQLAlchemy, matplotlib…) frozen out of collection and the young generation collected every
    50,000 allocations instead of 700. A job allocates tens of thousands of short-lived objects per chunk,
    which refcounting frees; without this, each of the hundreds of collections they trigger walks every
    object the process holds (measured: 7 % of bank matching, most of the countdown's Python time).
    Jobs run in threads: the first to enter sets it, the last to leave restores it."""
    global _gc_holders, _gc_threshold
    with _gc_lock:
        if _gc_holders == 0:
            gc.freeze()
            _gc_threshold = gc.get_threshold()
            gc.set_threshold(50_000, _gc_threshold[1], _gc_threshold[2])
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_threshold is not None:
                gc.set_threshold(*_gc_threshold)
                gc.unfreeze()
