"""Shared bits of the benchmarks: the machine, fresh databases, processes on loopback, wrk, tables.

Benchmarks use their own PostgreSQL database and Redis database number (never the test ones):
``SALESBOT_BENCH_PG`` (default postgresql://postgres@127.0.0.1:5432/bench) and ``SALESBOT_BENCH_REDIS``
(default redis://127.0.0.1:6379/9).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PG_URL = os.environ.get("SALESBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/bench")
REDIS_URL = os.environ.get("SALESBOT_BENCH_REDIS", "redis://127.0.0.1:6379/9")
PY = sys.executable

# WeCom credentials of the benchmarks (the official test vector's token and key, a made-up corp).
CORP_ID = "wwbench0000000001"
TOKEN = "QDG6eK"  # noqa: S105  (a public test vector)
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SECRET = "bench-secret-0123456789"  # noqa: S105  (the fake WeCom's)
AGENT_ID = 1000002


def machine() -> dict[str, str]:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                    if line.startswith("model name")), "")
    except OSError:
        pass
    mem_kb = 0
    try:
        mem_kb = int(next(line.split()[1] for line in open("/proc/meminfo", encoding="utf-8")
                          if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu or platform.processor(), "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "python": platform.python_version(), "os": platform.platform(terse=True)}


def print_machine() -> None:
    m = machine()
    print(f"machine: {m['nproc']} cores, {m['cpu']}, {m['ram']} RAM, Python {m['python']}, {m['os']}")


def salesbot_env(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for a salesbot process (config by SALESBOT_* variables, no file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBOT_")}
    env.update({
        "SALESBOT_WECOM_CORP_ID": CORP_ID, "SALESBOT_WECOM_AGENT_ID": str(AGENT_ID),
        "SALESBOT_WECOM_SECRET": SECRET, "SALESBOT_WECOM_TOKEN": TOKEN, "SALESBOT_WECOM_ENCODING_AES_KEY": AES_KEY,
        "SALESBOT_DATABASE_URL": db_url, "SALESBOT_REDIS_URL": redis_url, "SALESBOT_ROLES_ADMINS": "admin",
        "SALESBOT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def config_from_env(env: dict[str, str]) -> Any:
    from bot.config import load_config

    return load_config(None, env=env)


def reset_postgres(url: str = PG_URL) -> None:
    from sqlalchemy import create_engine, text

    from storage.migrate import upgrade

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)


def reset_sqlite(path: Path) -> str:
    from storage.migrate import upgrade

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


def flush_redis(url: str = REDIS_URL) -> None:
    import redis

    if not re.search(r"/\d+$", url) or url.endswith("/0") or url.endswith("/5"):
        raise SystemExit(f"refusing to flush Redis {url}: use a database number of your own (not 0 or 5)")
    redis.Redis.from_url(url).flushdb()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


@contextmanager
def process(cmd: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None,
            port: int | None = None) -> Iterator[subprocess.Popen[Any]]:
    """Run ``cmd`` in its own process group; stop it (SIGTERM, then SIGKILL) on exit."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,  # noqa: S603
                            start_new_session=True)
    try:
        if port is not None:
            wait_port(port, proc=proc)
        yield proc
    finally:
        stop(proc)
        if log:
            out.close()  # type: ignore[union-attr]


def stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def gunicorn_cmd(app: str, port: int, workers: int, threads: int, keepalive: int | None = None) -> list[str]:
    """gunicorn serving ``app``: sync workers when ``threads`` is 1, else gthread; ``keepalive`` seconds (0: a
    connection per request), gunicorn's default (2 s) when None."""
    cmd = [PY, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--backlog", "2048",
           "--log-level", "warning"]
    if threads > 1:
        cmd += ["-k", "gthread", "--threads", str(threads)]
    if keepalive is not None:
        cmd += ["--keep-alive", str(keepalive)]
    return [*cmd, app]


def wrk(url: str, requests_file: Path, *, seconds: int, connections: int, threads: int = 2, rate: float = 0,
        method: str = "POST", wrap: bool = False, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Replay ``requests_file`` (one ``path<TAB>body`` a line) with wrk; ``rate`` > 0 paces the sends
    (open loop, requests/s in total). Returns wrk's summary from bench/wrk_replay.lua's done()."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    hdr = "|".join(f"{k}: {v}" for k, v in (headers or {}).items())
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
           "-s", str(BENCH / "wrk_replay.lua"), url, "--", str(requests_file), str(threads), str(rate), method,
           "1" if wrap else "0", hdr]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout  # noqa: S603
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    return json.loads(line[len("WRKJSON "):])


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.1f} ms"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
