"""HTTP benchmarks: the WeCom callback's full path and the tracked-link redirect, each against a bare Flask
endpoint under the same gunicorn and worker count, load from wrk (a separate process) on loopback.

For each target: a warm-up, a closed-loop run at full speed (peak req/s), then an open-loop run paced at
80 % of that peak (p50/p99 latency there). Only one server runs at a time.

Callback (full path): every request is a distinct message (its own MsgId), encrypted and signed with the
config's token and key, from one of 200 reps: ``联系人 <customer> <name> 经理``, which verifies, decrypts,
dedups (Redis + database key), archives, routes to the contacts handler, writes a contact and an audit row,
and answers an encrypted passive reply. PostgreSQL and Redis are real (bench database, Redis db 9).

Tracked link: ``GET /t/<token>`` with a phone's User-Agent over 5,000 links, the production path: the token
from the process's cache (read from the database on a miss), the click queued in Redis (one RPUSH in the
same round trip as the links-version GET), the 302; each web process drains the queue into customer_events
in its background executor at most once a second (no worker runs here, so the web process does it all) and
follows up a few clicks. After the runs the rest of the queue is drained and every click is counted: each
stored exactly once (a unique click id), none left queued, as many as the 302s wrk saw plus at most the
requests still in flight when a run stopped.

    python -m bench.http_bench [--workers 2] [--threads 4] [--seconds 20] [--only callback|link]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
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
    REDIS_URL,
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


def measure(name: str, url: str, files: Any, seconds: int, method: str, wrap: bool,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Warm up, then peak (closed loop), then 80 % of peak (open loop)."""
    warm = wrk(url, files(), seconds=3, connections=16, method=method, wrap=True, headers=headers)
    peak = wrk(url, files(), seconds=seconds, connections=32, method=method, wrap=wrap, headers=headers)
    rate = 0.8 * peak["rps"]
    paced = wrk(url, files(), seconds=seconds, connections=64, rate=rate, method=method, wrap=wrap, headers=headers)
    print(f"  {name}: peak {peak['rps']:.0f} req/s (p50 {fmt_ms(peak['p50_us'])}, p99 {fmt_ms(peak['p99_us'])}); "
          f"at {rate:.0f} req/s: {paced['rps']:.0f} req/s, p50 {fmt_ms(paced['p50_us'])}, "
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


def run_target(app: str, env: dict[str, str], workers: int, threads: int, log: Path, **kw: Any) -> dict[str, Any]:
    port = free_port()
    with process(gunicorn_cmd(app, port, workers, threads), env=env, log=log, port=port):
        wait_ready(f"http://127.0.0.1:{port}")
        time.sleep(2.0)  # the other workers, booting beside the first
        return measure(url=f"http://127.0.0.1:{port}", **kw)


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


def link_effects(rt: Any, answered: int, in_flight: int) -> dict[str, Any]:
    """Drain what is still queued, then count: every click stored once, nothing left in the queue."""
    from jobs.link_clicks import QUEUE, drain
    from storage.behaviour import CustomerEvent

    started = time.monotonic()
    left_before = int(rt.redis.llen(QUEUE))
    while rt.redis.llen(QUEUE):
        drain(rt, followups=0, wait_s=60)
    drained_s = time.monotonic() - started
    with rt.db.sessions() as s:
        clicks, ids = s.execute(select(func.count(), func.count(func.distinct(CustomerEvent.external_id)))
                                .where(CustomerEvent.type == "link_click")).one()
    ok = clicks == ids and answered <= clicks <= answered + in_flight and not rt.redis.llen(QUEUE)
    print(f"  effects: {clicks} clicks stored ({ids} distinct click ids; {left_before} were still queued after the "
          f"runs, drained in {drained_s:.1f} s) for {answered} redirects answered (+ at most {in_flight} in flight "
          f"when a run stopped): {'ok' if ok else 'VIOLATION'}", flush=True)
    return {"stored": clicks, "distinct": ids, "answered": answered, "queued_after": left_before, "ok": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads per worker (1: sync workers)")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--only", choices=["callback", "link"])
    args = ap.parse_args()
    print_machine()
    print(f"gunicorn -w {args.workers}" + (f" -k gthread --threads {args.threads}" if args.threads > 1 else " (sync)")
          + f"; wrk -t2, peak with 32 connections, 80 % with 64; {args.seconds} s runs; PostgreSQL {PG_URL}, "
          f"Redis {REDIS_URL}", flush=True)
    reset_postgres(PG_URL)
    flush_redis(REDIS_URL)
    seed(PG_URL)
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

    common = {"workers": args.workers, "threads": args.threads, "log": logs, "seconds": args.seconds}
    if args.only in (None, "callback"):
        print("callback: POST /wecom/callback", flush=True)
        before = counts(PG_URL)
        results["callback_full"] = run_target("bot.wsgi:app", env, name="full path", files=fresh_callbacks,
                                              method="POST", wrap=False, **common)
        after = counts(PG_URL)
        results["callback_bare"] = run_target("bench.bare_app:app", env, name="bare Flask", files=fresh_callbacks,
                                              method="POST", wrap=True, **common)
        handled = sum(results["callback_full"][k]["ok"] + results["callback_full"][k]["empty"]
                      for k in ("warm", "peak", "paced"))
        print(f"  effects: {after['inbound'] - before['inbound']} messages archived, "
              f"{after['contacts'] - before['contacts']} contacts written, {handled} answered 200 "
              f"(incl. warm-up; requests still in flight when wrk stopped are archived but not counted as answered; "
              f"one contact per message)", flush=True)
        results["callback_effects"] = {"archived": after["inbound"] - before["inbound"],
                                       "contacts": after["contacts"] - before["contacts"], "answered": handled}
    if args.only in (None, "link"):
        print("tracked link: GET /t/<token>", flush=True)
        links = link_requests(tmp / "links.txt")
        results["link_full"] = run_target("bot.wsgi:app", env, name="tracked link", files=lambda: links,
                                          method="GET", wrap=True, headers={"User-Agent": PHONE_UA}, **common)
        results["link_bare"] = run_target("bench.bare_app:app", env, name="bare redirect", files=lambda: links,
                                          method="GET", wrap=True, headers={"User-Agent": PHONE_UA}, **common)
        answered = sum(results["link_full"][k]["ok"] for k in ("warm", "peak", "paced"))
        results["link_effects"] = link_effects(rt, answered, in_flight=16 + 32 + 64)

    rows = []
    for label, full, bare, goal in (("callback full path", "callback_full", "callback_bare", 0.5),
                                    ("tracked-link redirect", "link_full", "link_bare", 0.8)):
        if full not in results:
            continue
        f, b = results[full], results[bare]
        ratio = f["peak"]["rps"] / b["peak"]["rps"]
        rows.append([label, f"{f['peak']['rps']:.0f}", f"{b['peak']['rps']:.0f}", f"{ratio:.2f}× (goal ≥ {goal}×)",
                     f"{fmt_ms(f['paced']['p50_us'])} / {fmt_ms(f['paced']['p99_us'])}",
                     f"{fmt_ms(b['paced']['p50_us'])} / {fmt_ms(b['paced']['p99_us'])}",
                     str(f["peak"]["bad"] + f["paced"]["bad"])])
    print()
    print(table(rows, ["benchmark", "req/s", "bare req/s", "ratio", "p50 / p99 at 80 % (salesbot)",
                       "p50 / p99 at 80 % (bare)", "5xx"]))
    rt.db.dispose()
    print(f"(server log: {logs})")


if __name__ == "__main__":
    main()
