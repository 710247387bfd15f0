"""An open-loop load generator for the 80 % run, as a cross-check of wrk's paced mode (``http_bench --open-loop``).

Request i is due at start + i / rate. When it is due it opens its connection, sends, and reads the answer
to the end (``Connection: close``), so, as behind a reverse proxy, a server sees a connection only once its
request is ready; its latency runs from when it was *due*, so time spent waiting for a connection or for
this process counts too (no coordinated omission). wrk's paced mode differs on both: it opens the next
connection as soon as an answer arrives and then waits for the request's slot on it (wrk.c
``socket_writeable``, ``c->delayed``), and it times a request from when it was written.

asyncio in one process: fine for the callback (a few hundred requests a second); it cannot keep a bare
endpoint's thousands a second (it prints how many requests went out more than 5 ms late).

    python -m bench.open_loop URL FILE RATE SECONDS [METHOD]    (FILE: one "path<TAB>body" a line)

Prints one line ``OPENLOOP {json}`` with the keys of bench/wrk_replay.lua's summary.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


async def _one(host: str, port: int, method: str, path: str, body: str, due: float, took: list[float],
               outcome: Counter[str]) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        outcome["err_connect"] += 1
        return
    try:
        data = body.encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        if method == "POST":
            head += f"Content-Type: text/xml\r\nContent-Length: {len(data)}\r\n"
        writer.write(head.encode() + b"\r\n" + data)
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    except TimeoutError:
        outcome["err_timeout"] += 1
        return
    except OSError:
        outcome["err_read"] += 1
        return
    finally:
        writer.close()
    took.append(time.monotonic() - due)
    status = int(answer[9:12] or 0)
    empty = answer.endswith(b"\r\n\r\n")  # headers and no body
    outcome["bad" if status >= 400 or not status else "empty" if status == 200 and empty else "ok"] += 1


async def run(url: str, lines: list[tuple[str, str]], rate: float, seconds: float, method: str) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    n = int(rate * seconds)
    took: list[float] = []
    outcome: Counter[str] = Counter()
    tasks = []
    late = 0
    start = time.monotonic() + 0.1
    for i in range(n):
        due = start + i / rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.005:
            late += 1
        path, body = lines[i % len(lines)]  # round again past the end (counted as exhausted)
        tasks.append(asyncio.create_task(_one(host, port, method, path, body, due, took, outcome)))
    await asyncio.gather(*tasks)
    took.sort()

    def pct(p: float) -> float:
        return took[min(len(took) - 1, int(p * len(took)))] * 1e6 if took else 0.0

    return {"requests": len(took), "rps": len(took) / seconds, "p50_us": pct(0.5), "p90_us": pct(0.9),
            "p99_us": pct(0.99), "max_us": took[-1] * 1e6 if took else 0.0, "ok": outcome["ok"],
            "empty": outcome["empty"], "bad": outcome["bad"], "exhausted": max(0, n - len(lines)), "late": late,
            "err_connect": outcome["err_connect"], "err_read": outcome["err_read"], "err_write": 0,
            "err_status": 0, "err_timeout": outcome["err_timeout"]}


def main() -> None:
    url, file, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    method = sys.argv[5] if len(sys.argv) > 5 else "POST"
    with open(file, encoding="utf-8") as f:
        lines = [tuple(line.rstrip("\n").split("\t", 1)) for line in f]
    result = asyncio.run(run(url, lines, rate, seconds, method))  # type: ignore[arg-type]
    print("OPENLOOP " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
