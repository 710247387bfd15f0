"""Outbox delivery throughput against the emulator's fake WeCom API (bench/fake_wecom.py, gunicorn on
loopback), with the per-member pacing on (30 a minute, WeCom's limit), on PostgreSQL + Redis.

200 members get 35 notifications each (7,000 rows). The Deliverer (what ``salesbot worker`` runs) sends
until every member has had the 30 a minute allows; the other 5 each must wait for the next minute window
(checked: nobody gets more than 30 in any minute, and no row is sent twice). Baseline: the same 6,000
messages POSTed to the same fake API by a bare loop over one keep-alive ``requests.Session`` (no database,
no pacing, no bookkeeping).

    python -m bench.outbox_bench [--members 200] [--per-member 35] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter

import requests
from sqlalchemy import func, select

from bench.common import (
    AGENT_ID,
    CORP_ID,
    PG_URL,
    REDIS_URL,
    SECRET,
    config_from_env,
    flush_redis,
    free_port,
    gunicorn_cmd,
    print_machine,
    process,
    reset_postgres,
    salesbot_env,
    table,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--per-member", type=int, default=35)
    ap.add_argument("--workers", type=int, default=1, help="Deliverers running at once (threads, own runtimes)")
    args = ap.parse_args()
    print_machine()
    reset_postgres(PG_URL)
    flush_redis(REDIS_URL)
    port = free_port()
    api = f"http://127.0.0.1:{port}/cgi-bin/"
    env = salesbot_env(PG_URL, REDIS_URL, SALESBOT_WECOM_API_BASE_URL=api)
    users = [f"member{i:04d}" for i in range(args.members)]
    allowed = min(args.per_member, 30)
    with process(gunicorn_cmd("bench.fake_wecom:app", port, 1, 8), env=env, port=port):
        requests.post(f"http://127.0.0.1:{port}/_members", json={"userids": users}, timeout=10)

        # baseline: the bare loop
        http = requests.Session()
        token = http.get(api + "gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET}, timeout=10).json()
        t0 = time.perf_counter()
        for k in range(allowed):
            for u in users:
                r = http.post(api + "message/send", params={"access_token": token["access_token"]}, timeout=10,
                              data=json.dumps({"touser": u, "msgtype": "text", "agentid": AGENT_ID,
                                               "text": {"content": f"基线 {k}"}}, ensure_ascii=False).encode())
                assert r.json()["errcode"] == 0, r.text
        bare_s = time.perf_counter() - t0
        bare_rate = allowed * len(users) / bare_s
        print(f"baseline: {allowed * len(users)} sends in {bare_s:.1f} s = {bare_rate:.0f} msg/s", flush=True)
        base_count = len(requests.get(f"http://127.0.0.1:{port}/_messages", timeout=30).json())

        # the outbox
        from bot.out import Text
        from bot.outbox import Deliverer, enqueue
        from bot.runtime import build_runtime
        from storage.models import OutboxMessage

        rts = [build_runtime(config_from_env(env)) for _ in range(args.workers)]
        with rts[0].db.transaction() as s:
            for k in range(args.per_member):
                for u in users:
                    enqueue(s, u, Text(f"通知 {u} #{k}"))
        # wait for a fresh minute window so the pacing limit is what the members see
        time.sleep(60 - time.time() % 60 + 0.2)
        minute = int(time.time() // 60)
        target = allowed * len(users)
        sent = Counter[str]()
        t0 = time.perf_counter()

        def work(i: int) -> None:
            d = Deliverer(rts[i], owner=f"bench-{i}")
            while sum(sent.values()) < target and time.perf_counter() - t0 < 120:
                if d.run_once() == 0:
                    time.sleep(0.05)
                with rts[i].db.sessions() as s:
                    sent["n"] = int(s.scalar(select(func.count()).select_from(OutboxMessage)
                                             .where(OutboxMessage.status == "sent")) or 0)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        same_minute = int(time.time() // 60) == minute
        with rts[0].db.sessions() as s:
            status = dict(s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
            held = int(s.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.status == "pending", OutboxMessage.attempts == 0)) or 0)
        shown = requests.get(f"http://127.0.0.1:{port}/_messages", timeout=30).json()[base_count:]
        per_row = Counter((m["touser"], m["body"]["content"]) for m in shown)
        # the outbox's own sends only (the baseline's went to the same members, maybe in the same minute)
        worst = max(Counter((m["touser"], int(m["at"] // 60)) for m in shown).values(), default=0)
        rate = status.get("sent", 0) / elapsed
        print(f"outbox: {status.get('sent', 0)} delivered in {elapsed:.1f} s = {rate:.0f} msg/s "
              f"({args.workers} worker{'s' if args.workers > 1 else ''}); {held} held for the next minute "
              f"window{'' if same_minute else ' (the window turned during the run)'}; statuses {status}; "
              f"shown twice: {sum(1 for v in per_row.values() if v > 1)}; most a member got in one minute: "
              f"{worst} (limit 30)", flush=True)
        for rt in rts:
            rt.db.dispose()
    print()
    print(table([["outbox delivery (paced 30/member/min)", f"{rate:.0f} msg/s", f"{bare_rate:.0f} msg/s",
                  f"{rate / bare_rate:.2f}×", str(worst), str(sum(1 for v in per_row.values() if v > 1))]],
                ["benchmark", "throughput", "bare loop", "ratio", "max per member-minute", "duplicates"]))


if __name__ == "__main__":
    main()
