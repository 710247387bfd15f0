"""HTTP benchmarks: the WeCom callback's full path and the tracked-link redirect, each against a bare Flask
endpoint under the same gunicorn and worker count, load from wrk (a separate process) on loopback.

For each target: a warm-up, a closed-loop run at full speed (peak req/s), then an open-loop run paced at
80 % of that peak (p50/p99 latency there). Only one server runs at a time.

Callback (full path): every request is a distinct message (its own MsgId), encrypted and signed with the
config's token and key, from one of 200 reps: ``联系人 <customer> <name> 经理``, which verifies, decrypts,
dedups (Redis + database key), archives, routes to the contacts handler, writes a contact and an audit row,
and answers an encrypted passive reply. PostgreSQL and Redis are real (bench database, Redis db 9).
Beside it, the same messages to ``bench/floor_app.py``, the least any implementation must do (verify,
decrypt, one Redis SET NX, one autocommit INSERT, an encrypted reply; written by hand, no salesbot code):
where the goal set against the bare endpoint sits between "nothing" and "salesbot".

Tracked link: ``GET /t/<token>`` with a phone's User-Agent over 5,000 links, the production path: the token
from the process's cache (read from the database on a miss), the click appended to the process's buffer,
the 302; each gunicorn worker's flusher thread pushes its buffer to the Redis queue every
``links.click_flush_ms`` (50 ms) in one round trip with the links-version GET, and pushes what is left
when gunicorn stops it, before the clicks are counted. A ``salesbot worker`` (same environment, ``nice -n
19``) runs beside the web servers; its ``link_clicks`` job drains the queue into customer_events and follows
up, and the web processes, seeing its mark in Redis, leave the drain to it (measuring starts once the
worker's first run has set the mark). The WeCom API is pointed at a closed loopback port, so the worker's
outbox delivery of the reminders fails fast and stays offline. Two salesbot runs:

1. *web tier (drain after)*: the worker is paused (SIGSTOP) while wrk runs, its mark set for 3 × an
   interval longer than the runs, so the clicks wait in Redis, as they would with the worker and the
   database on other machines; afterwards what is queued is drained here (one drainer, batches of 500, no
   follow-ups), timed: the drain's capacity in clicks per second, printed beside the redirect's throughput;
2. *drain beside*: the worker's job runs every 5 s during the runs, on the same two cores as the web tier,
   wrk and PostgreSQL (nice does not reach PostgreSQL's backends, which do the writing).

After each, every click is counted: each stored exactly once (a unique click id), none left queued, as
many as the 302s wrk saw plus at most the requests still in flight when a run stopped.

    python -m bench.http_bench [--workers 4] [--threads 4] [--keep-alive 0] [--seconds 20] [--only callback|link] [--timing]
                               [--open-loop]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, insert, select

from bench.common import (
    AGENT_ID,
    CORP_ID,
    PG_URL,
    PY,
    REDIS_URL,
    ROOT,
    config_from_env,
    flush_redis,
    fmt_ms,
    free_port,
    gunicorn_cmd,
    print_machine,
    process,
    reset_postgres,
    salesbot_env,
    table,
    wrk,
)

REPS = 200
LINKS = 5000
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh")


def seed(db_url: str) -> None:
    from domain.names import normalise_company_name
    from storage.behaviour import LinkItem, TrackedLink
    from storage.db import Database
    from storage.models import Member
    from storage.sales import Customer, Opportunity

    db = Database(db_url)
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(insert(Member), [{"userid": "admin", "name": "管理员", "roles": ["admin"], "active": True,
                                       "created_at": now, "updated_at": now},
                                      {"userid": "boss", "name": "主管", "roles": ["manager"], "active": True,
                                       "created_at": now, "updated_at": now}])
        conn.execute(insert(Member), [{"userid": f"rep{i:03d}", "name": f"销售{i}", "roles": ["rep"],
                                       "manager_userid": "boss", "active": True, "created_at": now,
                                       "updated_at": now} for i in range(REPS)])
        names = [f"客户R{i}科技有限公司" for i in range(REPS)] + [f"链接客户{i}有限公司" for i in range(LINKS)]
        conn.execute(insert(Customer), [{"name": n, "name_key": normalise_company_name(n),
                                         "owner_userid": f"rep{i % REPS:03d}", "created_by": "", "created_at": now}
                                        for i, n in enumerate(names)])
        ids = list(conn.scalars(select(Customer.id).order_by(Customer.id)))
        link_customers = ids[REPS:]
        conn.execute(insert(Opportunity), [{"customer_id": cid, "owner_userid": f"rep{i % REPS:03d}",
                                            "amount": Decimal("100000"), "kind": "new", "stage": "demo",
                                            "stage_entered_at": now, "frozen": False, "created_at": now}
                                           for i, cid in enumerate(link_customers)])
        item = conn.execute(insert(LinkItem).values(name="产品手册", url="https://docs.example.com/manual.pdf",
                                                    category="manual", active=True, created_by="admin",
                                                    created_at=now).returning(LinkItem.id)).scalar_one()
        conn.execute(insert(TrackedLink), [{"token": f"bench{cid:010d}tok", "customer_id": cid, "item_id": item,
                                            "created_by": "admin", "created_at": now, "revoked": False}
                                           for cid in link_customers])
    db.dispose()


_seq = itertools.count(10**17)


def callback_requests(crypto: Any, n: int, path: Path) -> Path:
    """``n`` distinct, freshly timestamped, encrypted and signed messages, one per line."""
    from bot.emulator import wire

    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            rep = i % REPS
            xml = wire.text_xml(CORP_ID, AGENT_ID, f"rep{rep:03d}", f"联系人 客户R{rep}科技有限公司 王{i} 经理",
                                msg_id=str(next(_seq)))
            params, body = crypto.encrypt_callback(xml)
            f.write(f"/wecom/callback?{urlencode(params)}\t{body}\n")
    return path


def link_requests(path: Path) -> Path:
    from storage.behaviour import TrackedLink
    from storage.db import Database

    db = Database(PG_URL)
    with db.sessions() as s:
        tokens = list(s.scalars(select(TrackedLink.token)))
    db.dispose()
    path.write_text("".join(f"/t/{t}\t\n" for t in tokens), encoding="utf-8")
    return path


def open_loop(url: str, requests_file: Path, *, seconds: int, rate: float, method: str) -> dict[str, Any]:
    """The 80 % run by bench/open_loop.py instead of wrk's paced mode (see there)."""
    cmd = [PY, "-m", "bench.open_loop", url, str(requests_file), str(rate), str(seconds), method]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout  # noqa: S603
    line = next(line for line in out.splitlines() if line.startswith("OPENLOOP "))
    return json.loads(line[len("OPENLOOP "):])


def measure(name: str, url: str, files: Any, seconds: int, method: str, wrap: bool,
            headers: dict[str, str] | None = None, open_loop_80: bool = False) -> dict[str, Any]:
    """Warm up, then peak (closed loop), then 80 % of peak (open loop: wrk paced, or bench/open_loop.py)."""
    warm = wrk(url, files(), seconds=3, connections=16, method=method, wrap=True, headers=headers)
    peak = wrk(url, files(), seconds=seconds, connections=32, method=method, wrap=wrap, headers=headers)
    rate = 0.8 * peak["rps"]
    paced_from = time.time()
    if open_loop_80:
        paced = open_loop(url, files(), seconds=seconds, rate=rate, method=method)
    else:
        paced = wrk(url, files(), seconds=seconds, connections=64, rate=rate, method=method, wrap=wrap,
                    headers=headers)
    paced["window"] = (paced_from, time.time())
    how = f" (bench/open_loop.py, {paced['late']} sent > 5 ms late)" if open_loop_80 else ""
    print(f"  {name}: peak {peak['rps']:.0f} req/s (p50 {fmt_ms(peak['p50_us'])}, p99 {fmt_ms(peak['p99_us'])}); "
          f"at {rate:.0f} req/s{how}: {paced['rps']:.0f} req/s, p50 {fmt_ms(paced['p50_us'])}, "
          f"p99 {fmt_ms(paced['p99_us'])}; 5xx {peak['bad'] + paced['bad']}, "
          f"socket errors {sum(peak[k] + paced[k] for k in peak if k.startswith('err_'))}, "
          f"exhausted {peak['exhausted'] + paced['exhausted']}", flush=True)
    return {"warm": warm, "peak": peak, "paced": paced, "rate": rate}


def wait_ready(url: str, timeout: float = 180.0) -> None:
    """Until the workers answer: the port opens when gunicorn binds, but on a loaded machine importing the
    salesbot app in each worker takes many seconds more (up to ~20 s seen)."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/ready-check", timeout=5)  # any answer (a 404 here) means a worker is up
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def worker_cmd() -> list[str]:
    """A ``salesbot worker`` at the lowest CPU priority: a worker on another machine, in effect."""
    return ["nice", "-n", "19", str(Path(PY).with_name("salesbot")), "worker"]


def wait_worker_draining(rt: Any, timeout: float = 180.0) -> float:
    """Until a worker's ``link_clicks`` job has run (its mark is in Redis); returns the seconds waited."""
    from jobs.link_clicks import WORKER_KEY

    started = time.monotonic()
    while rt.redis.get(WORKER_KEY) is None:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the worker's link_clicks job did not run within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def run_target(app: str, env: dict[str, str], workers: int, threads: int, keepalive: int, log: Path,
               beside: Sequence[str] | None = None, beside_log: Path | None = None,
               ready: Callable[[], None] | None = None, pause_beside: bool = False, timing: Path | None = None,
               **kw: Any) -> dict[str, Any]:
    """Serve ``app`` under gunicorn (and run ``beside`` next to it, e.g. a worker), then measure.
    ``pause_beside``: ``beside`` is stopped (SIGSTOP) while measuring and continued after it. ``timing``: a
    new directory; ``app`` is wrapped by ``bench.timed_app``, and what its workers noted of the 80 % run is
    printed once they have stopped."""
    port = free_port()
    if timing is not None:
        timing.mkdir(parents=True)
        env = dict(env, SALESBOT_BENCH_TIMED_APP=app, SALESBOT_BENCH_TIMING_DIR=str(timing))
        app = "bench.timed_app:app"
    with ExitStack() as running:
        side = running.enter_context(process(beside, env=env, log=beside_log or log)) if beside else None
        running.enter_context(process(gunicorn_cmd(app, port, workers, threads, keepalive), env=env, log=log,
                                      port=port))
        wait_ready(f"http://127.0.0.1:{port}")
        if ready:
            ready()
        time.sleep(2.0)  # the other workers, booting beside the first
        if side is not None and pause_beside:
            os.killpg(side.pid, signal.SIGSTOP)
            running.callback(os.killpg, side.pid, signal.SIGCONT)  # on exit, before the processes are stopped
        result = measure(url=f"http://127.0.0.1:{port}", **kw)
    if timing is not None:
        result["server"] = server_side(timing, *result["paced"]["window"])
        per_worker = " / ".join(f"{n:,}" for n in result["server"]["per_worker"])
        print(f"    server side of the 80 % run: requests per worker {per_worker}; in the app p50 "
              f"{fmt_ms(result['server']['p50_us'])}, p99 {fmt_ms(result['server']['p99_us'])} (wrk's p99 "
              f"{fmt_ms(result['paced']['p99_us'])}: the rest waited in a worker or the listen backlog, or on the "
              f"wire)", flush=True)
    return result


def server_side(directory: Path, since: float, until: float) -> dict[str, Any]:
    """What ``bench.timed_app`` noted of the requests that started in [since, until): how many each worker
    answered (busiest first) and the time in the app, p50 and p99, in µs."""
    took: list[float] = []
    per_worker = []
    for path in directory.glob("*.txt"):
        mine = [float(t) for s, t in (line.split() for line in path.read_text(encoding="utf-8").splitlines())
                if since <= float(s) < until]
        per_worker.append(len(mine))
        took += mine
    took.sort()

    def pct(p: float) -> float:
        return 1e6 * took[min(len(took) - 1, int(p * len(took)))] if took else 0.0

    return {"per_worker": sorted(per_worker, reverse=True), "p50_us": pct(0.50), "p99_us": pct(0.99)}


def floor_rows(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM floor_messages").fetchone()[0]  # type: ignore[index]


def counts(db_url: str) -> dict[str, int]:
    from storage.behaviour import CustomerEvent
    from storage.db import Database
    from storage.models import AuditEntry, InboundMessage
    from storage.sales import Contact

    db = Database(db_url)
    with db.sessions() as s:
        out = {name: int(s.scalar(select(func.count()).select_from(model)) or 0)
               for name, model in (("inbound", InboundMessage), ("contacts", Contact), ("audit", AuditEntry),
                                   ("events", CustomerEvent))}
    db.dispose()
    return out


def stored_clicks(rt: Any) -> tuple[int, int]:
    """(link_click events, distinct click ids) in the database."""
    from storage.behaviour import CustomerEvent

    with rt.db.sessions() as s:
        clicks, ids = s.execute(select(func.count(), func.count(func.distinct(CustomerEvent.external_id)))
                                .where(CustomerEvent.type == "link_click")).one()
    return int(clicks), int(ids)


def link_effects(rt: Any, answered: int, in_flight: int) -> dict[str, Any]:
    """Drain what is still queued (timed: the drain's capacity), then count: every click stored once,
    nothing left in the queue."""
    from jobs.link_clicks import LOCK, LOCK_MS, QUEUE, drain

    # a worker stopped in the middle of a run may leave its lock to lapse: wait for it outside the timing
    deadline = time.monotonic() + LOCK_MS / 1000 + 5
    while rt.redis.exists(LOCK) and time.monotonic() < deadline:
        time.sleep(0.1)
    during, _ = stored_clicks(rt)
    left_before = int(rt.redis.llen(QUEUE))
    started = time.monotonic()
    drained = 0
    while rt.redis.llen(QUEUE):
        drained += drain(rt, followups=0, wait_s=60)[0]
    drained_s = time.monotonic() - started
    rate = drained / drained_s if drained and drained_s > 0 else 0.0
    clicks, ids = stored_clicks(rt)
    ok = clicks == ids and answered <= clicks <= answered + in_flight and not rt.redis.llen(QUEUE)
    print(f"  drain: {during} clicks stored during the runs (by the worker; by the web processes only until its "
          f"first run); the {left_before} still queued after "
          f"them stored here in {drained_s:.2f} s: "
          + (f"{rate:.0f} clicks/s (one drainer, batches of 500, no follow-ups)" if drained else "nothing to time"),
          flush=True)
    print(f"  effects: {clicks} clicks stored ({ids} distinct click ids) for {answered} redirects answered "
          f"(+ at most {in_flight} in flight when a run stopped): {'ok' if ok else 'VIOLATION'}", flush=True)
    return {"stored": clicks, "distinct": ids, "answered": answered, "stored_during_runs": during,
            "queued_after": left_before, "drained": drained, "drain_s": drained_s, "drain_per_s": rate, "ok": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers (4: as the README runs it in production)")
    ap.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads per worker (1: sync workers)")
    ap.add_argument("--keep-alive", type=int, default=0, dest="keepalive",
                    help="gunicorn's keep-alive seconds (0, as the README runs production: a connection per request, "
                         "taken by whichever worker is free; with keep-alive each wrk connection stays with one worker)")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--only", choices=["callback", "link"])
    ap.add_argument("--open-loop", action="store_true", dest="open_loop",
                    help="the callback's 80 %% run by bench/open_loop.py (a connection only when a request is due, "
                         "latency from when it was due) instead of wrk's paced mode; the bare endpoint's stays wrk's "
                         "(a Python client cannot keep its rate); with --only callback")
    ap.add_argument("--timing", action="store_true",
                    help="wrap each app to time its requests per worker (bench/timed_app.py): prints how evenly the "
                         "workers shared the 80 %% run and how long its requests spent in the app")
    args = ap.parse_args()
    if args.open_loop and args.only != "callback":
        ap.error("--open-loop is for the callback's full path: use it with --only callback")
    print_machine()
    print(f"gunicorn -w {args.workers}" + (f" -k gthread --threads {args.threads}" if args.threads > 1 else " (sync)")
          + f" --keep-alive {args.keepalive}; wrk -t2, peak with 32 connections, 80 % with 64; {args.seconds} s runs; PostgreSQL {PG_URL}, "
          f"Redis {REDIS_URL}", flush=True)
    reset_postgres(PG_URL)
    flush_redis(REDIS_URL)
    seed(PG_URL)
    if args.only in (None, "callback"):
        import psycopg

        from bench.floor_app import TABLE

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(TABLE)
    env = salesbot_env(PG_URL, REDIS_URL)
    from bot.runtime import build_runtime

    rt = build_runtime(config_from_env(env))
    tmp = Path(tempfile.mkdtemp(prefix="salesbot-bench-"))
    logs = tmp / "server.log"
    results: dict[str, Any] = {}
    # each run's requests are built just before it (the timestamp must be fresh), at most ~2,500 req/s × run
    per_run = max(20000, 2500 * args.seconds)
    box = {"n": 0}

    def fresh_callbacks() -> Path:
        box["n"] += 1
        return callback_requests(rt.crypto, per_run, tmp / f"callbacks-{box['n']}.txt")

    common = {"workers": args.workers, "threads": args.threads, "keepalive": args.keepalive, "log": logs,
              "seconds": args.seconds}
    timed = itertools.count(1)

    def timing() -> dict[str, Path]:
        return {"timing": tmp / f"timing-{next(timed)}"} if args.timing else {}

    if args.only in (None, "callback"):
        print("callback: POST /wecom/callback", flush=True)
        before = counts(PG_URL)
        results["callback_full"] = run_target("bot.wsgi:app", env, name="full path", files=fresh_callbacks,
                                              method="POST", wrap=False, open_loop_80=args.open_loop, **common,
                                              **timing())
        after = counts(PG_URL)
        results["callback_floor"] = run_target("bench.floor_app:app", env, name="floor", files=fresh_callbacks,
                                               method="POST", wrap=False, **common, **timing())
        results["callback_bare"] = run_target("bench.bare_app:app", env, name="bare Flask", files=fresh_callbacks,
                                              method="POST", wrap=True, **common, **timing())
        handled = sum(results["callback_full"][k]["ok"] + results["callback_full"][k]["empty"]
                      for k in ("warm", "peak", "paced"))
        print(f"  effects: {after['inbound'] - before['inbound']} messages archived, "
              f"{after['contacts'] - before['contacts']} contacts written, {handled} answered 200 "
              f"(incl. warm-up; requests still in flight when wrk stopped are archived but not counted as answered; "
              f"one contact per message)", flush=True)
        results["callback_effects"] = {"archived": after["inbound"] - before["inbound"],
                                       "contacts": after["contacts"] - before["contacts"], "answered": handled}
        floor_handled = sum(results["callback_floor"][k]["ok"] for k in ("warm", "peak", "paced"))
        print(f"  floor: {floor_rows(PG_URL)} messages written, {floor_handled} answered 200 with a reply",
              flush=True)
    if args.only in (None, "link"):
        # the worker delivers the click reminders: to a closed port, so the benchmark stays offline
        link_env = salesbot_env(PG_URL, REDIS_URL, SALESBOT_WECOM_API_BASE_URL="http://127.0.0.1:1/cgi-bin/")
        print(f"tracked link: GET /t/<token>, with `{' '.join(worker_cmd()[:3])} salesbot worker` beside the "
              f"salesbot servers (its link_clicks job drains; log {tmp / 'worker.log'})", flush=True)
        links = link_requests(tmp / "links.txt")

        def worker_ready() -> None:
            print(f"  the worker's first link_clicks run came {wait_worker_draining(rt):.0f} s after the web "
                  f"answered; measuring from here", flush=True)

        # 1. the web tier alone: the worker's first link_clicks run marks it draining (for 3 × its interval,
        # longer than the measurement), then it is paused while wrk runs, so the clicks wait in Redis and
        # nothing stores them on these two cores meanwhile; they are drained after the runs, timed
        paused_env = dict(link_env, SALESBOT_SCHEDULER_JOBS_LINK_CLICKS_INTERVAL_S=str(2 * args.seconds + 10))
        print("  1. the web tier alone: the worker is paused (SIGSTOP) while wrk runs, after its first drain has "
              "marked it draining; the queued clicks are drained after the runs", flush=True)
        results["link_tier"] = run_target("bot.wsgi:app", paused_env, name="tracked link, web tier alone",
                                          files=lambda: links, method="GET", wrap=True,
                                          headers={"User-Agent": PHONE_UA}, beside=worker_cmd(),
                                          beside_log=tmp / "worker.log", ready=worker_ready, pause_beside=True,
                                          **common, **timing())
        tier_answered = sum(results["link_tier"][k]["ok"] for k in ("warm", "peak", "paced"))
        results["link_tier_effects"] = link_effects(rt, tier_answered, in_flight=16 + 32 + 64)
        # 2. everything on one machine: the worker drains (and follows up) while wrk runs
        print("  2. web tier and drain on the same two cores: the worker's link_clicks job runs every 5 s "
              "during the runs", flush=True)
        results["link_full"] = run_target("bot.wsgi:app", link_env, name="tracked link, drain beside",
                                          files=lambda: links, method="GET", wrap=True,
                                          headers={"User-Agent": PHONE_UA}, beside=worker_cmd(),
                                          beside_log=tmp / "worker.log", ready=worker_ready, **common, **timing())
        results["link_bare"] = run_target("bench.bare_app:app", link_env, name="bare redirect",
                                          files=lambda: links, method="GET", wrap=True,
                                          headers={"User-Agent": PHONE_UA}, **common, **timing())
        answered = tier_answered + sum(results["link_full"][k]["ok"] for k in ("warm", "peak", "paced"))
        results["link_effects"] = link_effects(rt, answered, in_flight=2 * (16 + 32 + 64))

    rows = []
    for label, full, bare, goal in (("callback full path", "callback_full", "callback_bare", 0.5),
                                    ("callback floor (bench/floor_app.py)", "callback_floor", "callback_bare", None),
                                    ("tracked-link redirect, web tier (drain after)", "link_tier", "link_bare", 0.8),
                                    ("tracked-link redirect, drain beside", "link_full", "link_bare", 0.8)):
        if full not in results:
            continue
        f, b = results[full], results[bare]
        ratio = f["peak"]["rps"] / b["peak"]["rps"]
        rows.append([label, f"{f['peak']['rps']:.0f}", f"{b['peak']['rps']:.0f}",
                     f"{ratio:.2f}×" + (f" (goal ≥ {goal}×)" if goal else ""),
                     f"{fmt_ms(f['paced']['p50_us'])} / {fmt_ms(f['paced']['p99_us'])}",
                     f"{fmt_ms(b['paced']['p50_us'])} / {fmt_ms(b['paced']['p99_us'])}",
                     str(f["peak"]["bad"] + f["paced"]["bad"])])
    print()
    print(table(rows, ["benchmark", "req/s", "bare req/s", "ratio", "p50 / p99 at 80 % (salesbot)",
                       "p50 / p99 at 80 % (bare)", "5xx"]))
    if "link_tier_effects" in results:
        fx = results["link_tier_effects"]
        drained = (f"{fx['drain_per_s']:.0f} clicks/s ({fx['drained']} clicks in {fx['drain_s']:.2f} s)"
                   if fx["drained"] else "not measured (nothing was left queued)")
        print(f"click drain capacity (one drainer, no follow-ups): {drained}, beside the web tier's peak "
              f"{results['link_tier']['peak']['rps']:.0f} req/s")
    rt.db.dispose()
    print(f"(server log: {logs})")


if __name__ == "__main__":
    main()
