"""Scale-out run: 2 web instances and 2 workers as separate processes on one PostgreSQL and one Redis,
the emulator's fake WeCom API in its own process, a bounded mixed load, then the books are checked.

Processes (all on loopback): ``gunicorn bot.wsgi:app`` ×2 (web), ``salesbot worker`` ×2 (scheduler and
outbox, ``wecom.api_base_url`` pointing at the fake API), ``gunicorn bench.fake_wecom:app`` (WeCom).
Database: SALESBOT_BENCH_SCALE_PG (default postgresql://postgres@127.0.0.1:5432/bench_scale);
Redis: SALESBOT_BENCH_SCALE_REDIS (default redis://127.0.0.1:6379/10).

Load (``--seconds``, default 60), from threads of this process, each request to a random instance:
- reps' messages (``联系人 …``, one contact each; some ``帮助``, whose long reply goes through the outbox),
  a quarter of them delivered again with the same MsgId to the other instance (half of those at the
  same moment), as WeCom's retries are;
- the admin's ``主管 <rep> <manager>``, each sending the manager a card through the outbox; the managers
  click the cards as they arrive (each click delivered to both instances, as a retried event);
- tracked-link clicks (``GET /t/<token>``) with a phone's User-Agent (queued in Redis by the web instances,
  stored by the ``link_clicks`` job of the workers and by the web processes' own drains);
- signed product events (trials and logins, which remind owners and move opportunities automatically),
  a quarter of them posted twice to both instances;
- the ``cleanup`` job every 5 s, ``link_clicks`` every 5 s and ``customer_events`` every 10 s, scheduled by
  both workers.

Checks (exit status 1 on any violation): no 5xx; every message handled once (one archive row per MsgId,
one contact per 联系人 message, at most one non-empty answer per MsgId); every card decided once; every
click (after the queue drained: the workers' job empties it) and every product event stored once; every outbox row delivered, and the fake WeCom received each
row's content exactly once (as many times as there are such rows); every job run at most once per
schedule slot, with the slots of the run covered.

    python -m bench.scaleout [--seconds 60] [--rate 40]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, insert, select, text

from bench.common import (
    AGENT_ID,
    CORP_ID,
    PY,
    config_from_env,
    free_port,
    gunicorn_cmd,
    print_machine,
    process,
    reset_postgres,
    salesbot_env,
    wait_port,
)

PG = os.environ.get("SALESBOT_BENCH_SCALE_PG", "postgresql://postgres@127.0.0.1:5432/bench_scale")
REDIS = os.environ.get("SALESBOT_BENCH_SCALE_REDIS", "redis://127.0.0.1:6379/10")
HOOK_SECRET = "scaleout-hook-secret"  # noqa: S105  (the benchmark's own)
REPS = [f"rep{i:02d}" for i in range(16)]
BOSSES = [f"boss{i}" for i in range(4)]
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh")
CLEANUP_EVERY, EVENTS_EVERY, LINKS_EVERY = 5, 10, 5


@dataclass
class Books:
    """What the load sent and what it got back."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    answers: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))  # MsgId → non-empty?
    contact_names: set[str] = field(default_factory=set)
    help_ids: set[str] = field(default_factory=set)
    clicks: Counter[str] = field(default_factory=Counter)  # task_id → deliveries
    link_clicks: int = 0
    event_ids: set[str] = field(default_factory=set)  # accepted product events (202 or duplicate)
    admin_cards: int = 0

    def got(self, what: str, resp: requests.Response) -> None:
        with self.lock:
            self.statuses[resp.status_code] += 1
            if resp.status_code >= 500:
                self.server_errors.append(f"{what}: {resp.status_code} {resp.text[:200]}")


class Load:
    def __init__(self, urls: list[str], api: str, books: Books, crypto: Any, tokens: list[str],
                 customers: dict[str, int], rate: float, seconds: float) -> None:
        self.urls, self.api, self.books, self.crypto = urls, api, books, crypto
        self.tokens, self.customers = tokens, customers
        self.interval = 1.0 / rate
        self.deadline = time.monotonic() + seconds
        self.rng = random.Random(2026)
        self.rng_lock = threading.Lock()
        self.seq = iter(range(random.randint(10**17, 2 * 10**17), 10**19))
        self.clicked: set[str] = set()
        self.sessions = threading.local()

    # ---- plumbing ------------------------------------------------------------------------------

    def http(self) -> requests.Session:
        if not hasattr(self.sessions, "s"):
            self.sessions.s = requests.Session()
            # a connection per request: a kept-alive one that gunicorn closes (idle 2 s) just as it is reused
            # is reset, and requests does not retry it (seen on a loaded machine, as ConnectionResetError)
            self.sessions.s.headers["Connection"] = "close"
        return self.sessions.s  # type: ignore[no-any-return]

    def pick(self, seq: list[Any]) -> Any:
        with self.rng_lock:
            return self.rng.choice(seq)

    def roll(self) -> float:
        with self.rng_lock:
            return self.rng.random()

    def post_callback(self, url: str, xml: str, what: str) -> requests.Response:
        params, body = self.crypto.encrypt_callback(xml)
        resp = self.http().post(url + "/wecom/callback", params=params, data=body.encode(),
                                headers={"Content-Type": "text/xml"}, timeout=15)
        self.books.got(what, resp)
        return resp

    def deliver_twice(self, xml: str, what: str, key: str | None) -> None:
        """Once, or — a quarter of the time — again to the other instance (half of those concurrently)."""
        first = self.pick(self.urls)
        other = self.urls[1] if first == self.urls[0] else self.urls[0]
        mode = self.roll()
        if mode < 0.125:
            out: list[requests.Response] = []
            ts = [threading.Thread(target=lambda u=u: out.append(self.post_callback(u, xml, what)))
                  for u in (first, other)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        else:
            out = [self.post_callback(first, xml, what)]
            if mode < 0.25:
                out.append(self.post_callback(other, xml, what))
        if key is not None:
            with self.books.lock:
                self.books.answers[key] += [bool(r.content) for r in out if r.status_code == 200]

    # ---- actions -------------------------------------------------------------------------------

    def message(self) -> None:
        from bot.emulator import wire

        rep = self.pick(REPS)
        msg_id = str(next(self.seq))
        if self.roll() < 0.1:
            text_ = "帮助"
            with self.books.lock:
                self.books.help_ids.add(msg_id)
        else:
            name = f"联系人{msg_id[-9:]}"
            text_ = f"联系人 规模客户{REPS.index(rep)}有限公司 {name} 经理"
            with self.books.lock:
                self.books.contact_names.add(name)
        self.deliver_twice(wire.text_xml(CORP_ID, AGENT_ID, rep, text_, msg_id=msg_id), "message", msg_id)

    def admin_card(self) -> None:
        from bot.emulator import wire

        xml = wire.text_xml(CORP_ID, AGENT_ID, "admin", f"主管 {self.pick(REPS)} {self.pick(BOSSES)}",
                            msg_id=str(next(self.seq)))
        resp = self.post_callback(self.pick(self.urls), xml, "admin")
        if resp.status_code == 200:
            with self.books.lock:
                self.books.admin_cards += 1

    def card_clicks(self) -> None:
        from bot.emulator import wire

        cards = [m for m in self.http().get(self.api.replace("/cgi-bin/", "/_messages"), timeout=30).json()
                 if m["msgtype"] == "template_card" and m["touser"] in BOSSES and m["response_code"]]
        for m in cards:
            with self.books.lock:
                if m["task_id"] in self.clicked:
                    continue
                self.clicked.add(m["task_id"])
            key = "confirm" if m["body"].get("card_type") == "button_interaction" and any(
                b.get("key") == "confirm" for b in m["body"].get("button_list", [])) else "ack"
            xml = wire.card_click_xml(CORP_ID, AGENT_ID, m["touser"], m["task_id"], key, "button_interaction",
                                      m["response_code"], create_time=int(time.time()))
            for url in self.urls:  # WeCom's retry of the click event lands on the other instance
                self.post_callback(url, xml, "click")
            with self.books.lock:
                self.books.clicks[m["task_id"]] += 2

    def link_click(self) -> None:
        resp = self.http().get(self.pick(self.urls) + "/t/" + self.pick(self.tokens),
                               headers={"User-Agent": PHONE_UA}, allow_redirects=False, timeout=15)
        self.books.got("link", resp)
        if resp.status_code == 302:
            with self.books.lock:
                self.books.link_clicks += 1

    def product_event(self) -> None:
        rep = self.pick(REPS)
        event_id = f"scale-{next(self.seq)}"
        body = {"id": event_id, "customer": str(self.customers[rep]),
                "type": "trial_requested" if self.roll() < 0.2 else "login",
                "occurred_at": datetime.now(UTC).isoformat()}
        raw = json.dumps(body).encode()
        sig = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        targets = self.urls if self.roll() < 0.25 else [self.pick(self.urls)]
        for url in targets:
            resp = self.http().post(url + "/hooks/product-events", data=raw, timeout=15,
                                    headers={"X-Salesbot-Signature": sig, "Content-Type": "application/json"})
            self.books.got("event", resp)
            if resp.status_code in (200, 202):
                with self.books.lock:
                    self.books.event_ids.add(event_id)

    def run(self, threads: int) -> None:
        actions = [(self.message, 0.55), (self.link_click, 0.2), (self.product_event, 0.17),
                   (self.admin_card, 0.04), (self.card_clicks, 0.04)]

        def worker(i: int) -> None:
            nxt = time.monotonic() + i * self.interval
            while time.monotonic() < self.deadline:
                r, acc = self.roll(), 0.0
                for fn, share in actions:
                    acc += share
                    if r < acc:
                        try:
                            fn()
                        except requests.RequestException as exc:
                            with self.books.lock:
                                self.books.server_errors.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")
                        break
                nxt += self.interval * threads
                time.sleep(max(0.0, nxt - time.monotonic()))

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.card_clicks()  # the cards that arrived last


def seed(db_url: str) -> tuple[list[str], dict[str, int]]:
    from storage.behaviour import LinkItem, TrackedLink
    from storage.db import Database
    from storage.models import Member
    from storage.sales import Customer, Opportunity

    db = Database(db_url)
    now = datetime.now(UTC)
    base = {"active": True, "created_at": now, "updated_at": now, "region": "华东"}
    with db.engine.begin() as conn:
        conn.execute(insert(Member), [{"userid": "admin", "name": "管理员", "roles": ["admin"], **base}]
                     + [{"userid": b, "name": f"主管{b[-1]}", "roles": ["manager"], **base} for b in BOSSES])
        conn.execute(insert(Member), [{"userid": r, "name": f"销售{r[-2:]}", "roles": ["rep"],
                                       "manager_userid": BOSSES[i % len(BOSSES)], **base} for i, r in enumerate(REPS)])
        customers = {}
        for i, rep in enumerate(REPS):
            name = f"规模客户{i}有限公司"
            customers[rep] = conn.execute(insert(Customer).values(
                name=name, name_key=f"规模客户{i}", owner_userid=rep, created_by=rep, created_at=now)
                .returning(Customer.id)).scalar_one()
            conn.execute(insert(Opportunity).values(customer_id=customers[rep], owner_userid=rep,
                                                    amount=Decimal(100000), kind="new", stage="demo",
                                                    stage_entered_at=now, frozen=False, created_at=now))
        item = conn.execute(insert(LinkItem).values(name="竞品对比白皮书", url="https://docs.example.com/c.pdf",
                                                    category="competitor", active=True, created_by="admin",
                                                    created_at=now).returning(LinkItem.id)).scalar_one()
        tokens = [f"scale{i:04d}{rep}" for rep in REPS for i in range(3)]
        conn.execute(insert(TrackedLink), [{"token": t, "customer_id": customers[t[9:]], "item_id": item,
                                            "created_by": t[9:], "created_at": now, "revoked": False} for t in tokens])
    db.dispose()
    return tokens, customers


def drain(db_url: str, redis_url: str, timeout: float) -> dict[str, int]:
    """Wait until the workers have stored every queued click, delivered the outbox and processed every event."""
    import redis

    from jobs.link_clicks import QUEUE
    from storage.db import Database

    db = Database(db_url)
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    left: dict[str, int] = {}
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            left = {"clicks queued": int(r.llen(QUEUE)),
                    "outbox": int(conn.execute(text("SELECT COUNT(*) FROM outbox WHERE status IN "
                                                    "('pending', 'sending')")).scalar() or 0),
                    "events": int(conn.execute(text("SELECT COUNT(*) FROM customer_events WHERE processed_at "
                                                    "IS NULL")).scalar() or 0)}
        if not any(left.values()):
            break
        time.sleep(1)
    db.dispose()
    return left


def wait_ready(urls: list[str], db_url: str, timeout: float = 240.0) -> float:
    """Until every web instance answers /healthz and a worker's scheduler has run a job: on a loaded machine
    importing the app takes each process many seconds after its port opened. Returns the seconds waited."""
    from storage.db import Database

    started = time.monotonic()
    deadline = started + timeout
    for url in urls:
        while True:
            try:
                if requests.get(url + "/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout:.0f} s")
            time.sleep(0.5)
    db = Database(db_url)
    try:
        while not db.engine.connect().execute(text("SELECT COUNT(*) FROM job_runs")).scalar():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker ran a job within {timeout:.0f} s")
            time.sleep(0.5)
    finally:
        db.dispose()
    time.sleep(2)  # the other gunicorn worker of each instance, booting beside the first
    return time.monotonic() - started


def check(db_url: str, api: str, books: Books, started: float, ended: float, left: dict[str, int]) -> list[str]:
    from storage.behaviour import CustomerEvent
    from storage.db import Database
    from storage.models import AuditEntry, Card, InboundMessage, JobRun, OutboxMessage
    from storage.sales import Contact

    problems: list[str] = []
    ok: list[str] = []
    db = Database(db_url)
    with db.sessions() as s:
        # no 5xx
        if books.server_errors:
            problems.append(f"{len(books.server_errors)} server errors, e.g. {books.server_errors[:3]}")
        else:
            ok.append(f"no 5xx in {sum(books.statuses.values())} requests ({dict(sorted(books.statuses.items()))})")
        # every message handled once
        keys = [f"msg:{m}" for m in books.answers]
        archived = Counter(s.scalars(select(InboundMessage.callback_key).where(InboundMessage.callback_key.in_(keys))))
        missing = [k for k in keys if archived[k] == 0]
        twice = [k for k, n in archived.items() if n > 1]
        multi_answer = [m for m, a in books.answers.items() if sum(a) > 1]
        contacts = Counter(s.scalars(select(Contact.name).where(Contact.name.in_(books.contact_names))))
        if missing or twice or multi_answer or set(contacts) != books.contact_names or any(
                n > 1 for n in contacts.values()):
            problems.append(f"messages: {len(missing)} not archived, {len(twice)} archived twice, "
                            f"{len(multi_answer)} answered twice, {len(books.contact_names) - len(contacts)} "
                            f"contacts missing, {sum(1 for n in contacts.values() if n > 1)} contacts doubled")
        else:
            deliveries = sum(len(a) for a in books.answers.values())
            ok.append(f"{len(keys)} messages ({deliveries} deliveries incl. retries) archived once each, "
                      f"{len(contacts)} contacts written once each, never two answers to one MsgId")
        # every card decided once
        clicked = list(books.clicks)
        decided = Counter(s.scalars(select(Card.status).where(Card.task_id.in_(clicked))))
        confirms = int(s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(["confirm_team_member", "reject_team_member"]))) or 0)
        team_cards = int(s.scalar(select(func.count()).select_from(Card).where(
            Card.task_id.in_(clicked), Card.kind == "team_confirm")) or 0)
        if decided.get("open", 0) or confirms != team_cards:
            problems.append(f"cards: {decided} after clicks; {confirms} team decisions for {team_cards} clicked cards")
        else:
            ok.append(f"{len(clicked)} cards clicked (each click delivered twice), each decided once")
        # link clicks and product events stored once (each click has its own id: unique external_id)
        stored_clicks = int(s.scalar(select(func.count()).select_from(CustomerEvent)
                                     .where(CustomerEvent.type == "link_click")) or 0)
        click_ids = int(s.scalar(select(func.count(func.distinct(CustomerEvent.external_id)))
                                 .where(CustomerEvent.type == "link_click")) or 0)
        stored_events = Counter(s.scalars(select(CustomerEvent.external_id).where(CustomerEvent.source == "product")))
        if stored_clicks != books.link_clicks or click_ids != stored_clicks or left.get("clicks queued") \
                or set(stored_events) != {f"product:{e}" for e in books.event_ids} \
                or any(n > 1 for n in stored_events.values()):
            problems.append(f"behaviour: {stored_clicks} clicks stored for {books.link_clicks} redirects; "
                            f"{len(stored_events)} product events stored for {len(books.event_ids)} accepted")
        else:
            ok.append(f"{stored_clicks} link clicks and {len(stored_events)} product events stored once each")
        # the outbox: everything delivered; WeCom shows each row's content once
        statuses = Counter(s.scalars(select(OutboxMessage.status)))
        rows = list(s.execute(select(OutboxMessage.recipient, OutboxMessage.msgtype, OutboxMessage.body)
                              .where(OutboxMessage.status == "sent")))
        shown = requests.get(api.replace("/cgi-bin/", "/_messages"), timeout=60).json()

        def canon(touser: str, msgtype: str, body: dict[str, Any]) -> tuple[str, str, str]:
            return touser, msgtype, json.dumps({} if msgtype == "image" else body, sort_keys=True, ensure_ascii=False)

        want = Counter(canon(*r) for r in rows if r[1] != "update_template_card")
        got = Counter(canon(m["touser"], m["msgtype"], m["body"]) for m in shown)
        worst = requests.get(api.replace("/cgi-bin/", "/_rate"), timeout=10).json()["max_per_member_minute"]
        if left.get("outbox") or set(statuses) - {"sent"} or want != got or worst > 30:
            problems.append(f"outbox: statuses {dict(statuses)}; {sum((want - got).values())} rows not shown, "
                            f"{sum((got - want).values())} shown more than written; at most {worst} a member-minute")
        else:
            ok.append(f"{sum(statuses.values())} outbox rows delivered, each shown exactly once "
                      f"(at most {worst} per member-minute)")
        # jobs: once per slot, the slots covered
        runs = s.execute(select(JobRun.name, JobRun.slot, JobRun.status)).all()
        per_slot = Counter((n, sl) for n, sl, _ in runs)
        doubled = [k for k, v in per_slot.items() if v > 1]
        failed = [(n, sl) for n, sl, st in runs if st == "failed"]
        for name, every in (("cleanup", CLEANUP_EVERY), ("customer_events", EVENTS_EVERY),
                            ("link_clicks", LINKS_EVERY)):
            slots = {int(sl[1:]) for n, sl, _ in runs if n == name and sl.startswith("i")}
            expected = set(range((int(started) // every + 2) * every, (int(ended) // every - 1) * every, every))
            gaps = sorted(expected - slots)
            if gaps:
                problems.append(f"job {name}: {len(gaps)} of {len(expected)} slots not run, e.g. {gaps[:3]}")
            else:
                ok.append(f"job {name}: each of {len(expected)} slots of the run ran once")
        if doubled or failed:
            problems.append(f"jobs: {len(doubled)} slots ran twice {doubled[:3]}, {len(failed)} failed {failed[:3]}")
    db.dispose()
    for line in ok:
        print(f"  ok: {line}")
    for line in problems:
        print(f"  VIOLATION: {line}")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=40, help="load actions per second in total")
    ap.add_argument("--drain", type=float, default=120, help="seconds allowed to finish deliveries afterwards")
    args = ap.parse_args()
    print_machine()
    from bench.common import flush_redis

    reset_postgres(PG)
    flush_redis(REDIS)
    tokens, customers = seed(PG)
    logs = Path(tempfile.mkdtemp(prefix="salesbot-scaleout-"))
    api_port, web = free_port(), [free_port(), free_port()]
    api = f"http://127.0.0.1:{api_port}/cgi-bin/"
    env = salesbot_env(PG, REDIS, SALESBOT_WECOM_API_BASE_URL=api, SALESBOT_HOOKS_PRODUCT_EVENTS_SECRET=HOOK_SECRET,
                       SALESBOT_LOG_LEVEL="INFO", SALESBOT_OUTBOX_POLL_INTERVAL_S="0.2",
                       SALESBOT_SCHEDULER_JOBS_CLEANUP_CRON="",
                       SALESBOT_SCHEDULER_JOBS_CLEANUP_INTERVAL_S=str(CLEANUP_EVERY),
                       SALESBOT_SCHEDULER_JOBS_CUSTOMER_EVENTS_INTERVAL_S=str(EVENTS_EVERY),
                       SALESBOT_SCHEDULER_JOBS_LINK_CLICKS_INTERVAL_S=str(LINKS_EVERY))
    from bot.runtime import build_runtime

    crypto = build_runtime(config_from_env(env)).crypto
    salesbot = str(Path(PY).with_name("salesbot"))
    print(f"2 web instances (gunicorn -w 2 -k gthread --threads 4) on :{web[0]} and :{web[1]}, 2 salesbot workers, "
          f"fake WeCom on :{api_port}; PostgreSQL {PG}, Redis {REDIS}; logs in {logs}", flush=True)
    with process(gunicorn_cmd("bench.fake_wecom:app", api_port, 1, 8), env=env, log=logs / "fake_wecom.log",
                 port=api_port), \
            process(gunicorn_cmd("bot.wsgi:app", web[0], 2, 4), env=env, log=logs / "web1.log", port=web[0]), \
            process(gunicorn_cmd("bot.wsgi:app", web[1], 2, 4), env=env, log=logs / "web2.log", port=web[1]), \
            process([salesbot, "worker"], env=env, log=logs / "worker1.log"), \
            process([salesbot, "worker"], env=env, log=logs / "worker2.log"):
        wait_port(api_port)
        requests.post(f"http://127.0.0.1:{api_port}/_members", json={"userids": ["admin", *BOSSES, *REPS]}, timeout=10)
        waited = wait_ready([f"http://127.0.0.1:{p}" for p in web], PG)
        print(f"all processes ready after {waited:.0f} s", flush=True)
        books = Books()
        load = Load([f"http://127.0.0.1:{p}" for p in web], api, books, crypto, tokens, customers, args.rate,
                    args.seconds)
        started = time.time()
        print(f"load: {args.rate:.0f} actions/s for {args.seconds:.0f} s …", flush=True)
        load.run(threads=8)
        ended = time.time()
        left = drain(PG, REDIS, args.drain)
        print(f"drained: {left or 'everything'} left after {time.time() - ended:.0f} s", flush=True)
        time.sleep(2 * EVENTS_EVERY)  # let the jobs run a few more slots past the end of the load
        problems = check(PG, api, books, started, time.time() - EVENTS_EVERY, left)
    print("scale-out run: " + ("FAILED" if problems else "passed"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
