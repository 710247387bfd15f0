"""Fault injection (issue 9 §3): WeCom failing at random, Redis losing everything, the database
unreachable for a moment, a worker killed half-way through a job. After recovery nothing is lost and
nothing is duplicated, and the counts are reconciled.

WeCom is faked at the HTTP layer (``responses`` → ``WeComState``); the faults are injected in front of
it, at the HTTP layer too (status codes, timeouts, WeCom error codes). The database outage is a
refusal to connect, injected on the engine's ``do_connect`` event after the pool was emptied.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest
import requests
import responses
from sqlalchemy import event, func, select, update

from bot.app import create_app
from bot.emulator import wire
from bot.emulator.state import WeComState
from bot.out import Text
from bot.outbox import Deliverer, enqueue
from bot.runtime import Runtime
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.behaviour import CustomerEvent, RuleFiring
from storage.models import AuditEntry, InboundMessage, JobRun, Member, OutboxMessage, ProcessedCallback
from storage.payments import Contract, Receivable
from storage.sales import Customer, Opportunity
from storage.types import utcnow
from tests.conftest import AGENT_ID, CORP_ID, REDIS_URL, SECRET
from tests.harness import API, Chat

# ---- helpers ---------------------------------------------------------------------------------------


def count(rt: Runtime, model: Any, *where: Any) -> int:
    with rt.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def outbox_rows(rt: Runtime) -> list[OutboxMessage]:
    with rt.db.sessions() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def make_due(rt: Runtime) -> None:
    with rt.db.transaction() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                  .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def expire_leases(rt: Runtime) -> None:
    with rt.db.transaction() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.status == "sending")
                  .values(lease_until=utcnow() - timedelta(seconds=1)))


def drain(rt: Runtime, d: Deliverer, passes: int = 200) -> int:
    total = 0
    for _ in range(passes):
        total += d.run_once()
        if count(rt, OutboxMessage, OutboxMessage.status.in_(["pending", "sending"])) == 0:
            return total
        make_due(rt)
    raise AssertionError("outbox did not drain")


def restart_redis(rt: Runtime) -> None:
    """Redis restarted without persistence: every key is gone (dedup keys, dialogs, token, locks).

    The embedded server is this test's own; on a real server only the test's database is flushed
    (FLUSHDB, not FLUSHALL, so other suites sharing the server are left alone)."""
    if REDIS_URL:
        rt.redis.flushdb()
    else:
        rt.redis.flushall()


class FaultyWeCom:
    """The fake WeCom at the HTTP layer, with seeded random faults on message/send while ``on``.

    Faults: HTTP 502 (request lost), HTTP 502 after WeCom accepted it, a connect timeout (never arrived),
    a read timeout after WeCom accepted it, errcode 45009 (rate limited), and an expired token (42001,
    all tokens invalidated so the client must refresh once and retry).
    """

    KINDS = ("502", "502_after_accept", "connect_timeout", "read_timeout_after_accept", "45009", "42001")

    def __init__(self, rsps: responses.RequestsMock, state: WeComState, seed: int, rate: float) -> None:
        self.state = state
        self.rng = random.Random(seed)
        self.rate = rate
        self.on = True
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        pattern = re.compile(re.escape(API) + r".*")
        rsps.add_callback(responses.GET, pattern, callback=self._callback)
        rsps.add_callback(responses.POST, pattern, callback=self._callback)

    def _real(self, api: str, query: dict[str, str], body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        result, ctype = self.state.handle(api, query, body)
        data = result if isinstance(result, bytes) else json.dumps(result).encode()
        return 200, {"Content-Type": ctype}, data

    def _callback(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(request.url)
        api = url.path.split("/cgi-bin/", 1)[1]
        query = dict(parse_qsl(url.query))
        body = request.body.encode() if isinstance(request.body, str) else request.body
        with self.lock:
            self.requests[api] += 1
            kind = None
            if self.on and api == "message/send" and self.rng.random() < self.rate:
                kind = self.rng.choice(self.KINDS)
                self.injected[kind] += 1
        if kind == "502":
            return 502, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>"
        if kind == "502_after_accept":
            self._real(api, query, body)
            return 502, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>"
        if kind == "connect_timeout":
            raise requests.exceptions.ConnectTimeout("connect timed out (injected)")
        if kind == "read_timeout_after_accept":
            self._real(api, query, body)
            raise requests.exceptions.ReadTimeout("read timed out (injected)")
        if kind == "45009":
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"errcode": 45009, "errmsg": "api freq out of limit"}).encode()
        if kind == "42001":
            self.state.expire_tokens()
        return self._real(api, query, body)


class Outage:
    """The database refuses new connections while ``down`` (the pool is emptied when it goes down)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.down = False
        self.refused = 0
        event.listen(rt.db.engine, "do_connect", self._connect)

    def _connect(self, dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        if self.down:
            self.refused += 1
            raise dialect.loaded_dbapi.OperationalError("could not connect to server: Connection refused "
                                                        "(injected outage)")
        return None  # connect normally

    def start(self) -> None:
        self.rt.db.engine.dispose()  # pooled connections die with the server
        self.down = True

    def stop(self) -> None:
        self.down = False


# ---- 1. WeCom failing at random during a delivery run ------------------------------------------------


@pytest.mark.parametrize("seed", [7, 2026])
def test_random_wecom_failures_every_row_delivered_exactly_once_in_order(rt, http, seed):
    state = WeComState(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID)
    members = [f"rep{i:02d}" for i in range(40)]
    for userid in members:
        state.add_member(userid, userid)
    faults = FaultyWeCom(http, state, seed=seed, rate=0.35)
    with rt.db.transaction() as s:
        for i in range(200):
            enqueue(s, members[i % len(members)], Text(f"通知 #{i}"))
    d = Deliverer(rt, owner="worker-under-fire")
    for _ in range(25):  # a stormy stretch: about a third of the sends fail one way or another
        d.run_once()
        make_due(rt)
    assert sum(faults.injected.values()) > 20 and len(faults.injected) == len(FaultyWeCom.KINDS)
    faults.on = False  # WeCom recovers
    drain(rt, d)

    rows = outbox_rows(rt)
    assert [r.status for r in rows] == ["sent"] * 200  # nothing lost, nothing given up
    shown = Counter(m.body["content"] for m in state.messages)
    assert shown == Counter({f"通知 #{i}": 1 for i in range(200)})  # each shown exactly once
    for userid in members:  # and each member's in the order they were written
        got = [int(m.body["content"].split("#")[1]) for m in state.inbox(userid)]
        assert got == sorted(got)
    # reconciliation: every request reached the fake (or was refused in front of it) and is accounted for
    sends = faults.requests["message/send"]
    attempts = sum(r.attempts for r in rows)
    refreshes = faults.requests["gettoken"] - 1  # the first token, then one refresh per expiry
    assert refreshes == faults.injected["42001"]
    assert sends == attempts + refreshes  # each attempt one request, plus the one retry after a refresh
    failed_attempts = attempts - 200
    token_retry_failures = failed_attempts - (sum(faults.injected.values()) - faults.injected["42001"])
    assert 0 <= token_retry_failures <= faults.injected["42001"]
    accepted_twice = faults.injected["502_after_accept"] + faults.injected["read_timeout_after_accept"]
    assert accepted_twice > 0  # some retries followed a send WeCom had shown: duplicate check kept them single
    retries = [json.loads(body) for api, call in state.calls if api == "message/send"
               for body in [call["body"]] if json.loads(body).get("enable_duplicate_check")]
    assert len(retries) >= accepted_twice


# ---- 2. Redis restarted mid-run --------------------------------------------------------------------


def test_redis_restart_mid_run_callbacks_stay_exactly_once(chat: Chat, rt, make_runtime, wecom, company):
    other_rt = make_runtime()  # a second web instance on the same database and Redis
    other = Chat(create_app(runtime=other_rt), other_rt, wecom)
    messages = [(f"9{i:05d}", f"区域 zhangsan 华东{i}") for i in range(30)]

    def send(c: Chat, msg_id: str, text: str) -> Any:
        return c.post_xml(wire.text_xml(CORP_ID, AGENT_ID, "admin", text, msg_id=msg_id))

    first = [send(chat, mid, text) for mid, text in messages[:15]]
    assert all(r.status_code == 200 and r.get_data() for r in first)
    restart_redis(rt)  # every fast-path dedup key is gone
    later = [send(other, mid, text) for mid, text in messages[15:]]
    assert all(r.status_code == 200 and r.get_data() for r in later)
    # WeCom retries every one of them, on both instances, some concurrently
    retries: list[Any] = []
    threads = [threading.Thread(target=lambda c=c, m=m, t=t: retries.append(send(c, m, t)))
               for m, t in messages for c in (chat, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(retries) == 60 and all(r.status_code == 200 and r.get_data() == b"" for r in retries)
    assert count(rt, InboundMessage) == 30 and count(rt, ProcessedCallback) == 30
    assert count(rt, AuditEntry, AuditEntry.action == "set_region") == 30  # one effect per message
    with rt.db.sessions() as s:
        assert s.scalar(select(Member.region).where(Member.userid == "zhangsan")) == "华东29"


def test_redis_restart_loses_a_dialog_and_the_token_but_duplicates_nothing(chat: Chat, rt, wecom, company):
    assert "userid" in chat.say("admin", "新成员")
    assert "请发送姓名" in chat.say("admin", "xiaoming")
    tokens_before = wecom.count("gettoken")
    restart_redis(rt)
    # the dialog is gone: the next answer is read as a command, and nothing half-made is saved
    reply = chat.say("admin", "小明")
    assert "没有听懂" in reply
    with rt.db.sessions() as s:
        assert s.scalar(select(Member).where(Member.userid == "xiaoming")) is None
    # the access token is gone too: fetched again once, and the pushes still arrive once each
    with rt.db.transaction() as s:
        for i in range(5):
            enqueue(s, "zhangsan", Text(f"重启后 #{i}"))
    chat.deliver()
    assert wecom.count("gettoken") == tokens_before + 1
    assert [m.body["content"] for m in wecom.inbox("zhangsan")] == [f"重启后 #{i}" for i in range(5)]
    assert count(rt, AuditEntry, AuditEntry.action == "create_member") == 0


# ---- 3. The database briefly unreachable ------------------------------------------------------------


def test_database_outage_callback_fails_so_wecom_retries_then_the_retry_is_handled_once(chat: Chat, rt, company):
    outage = Outage(rt)
    plaintext = wire.text_xml(CORP_ID, AGENT_ID, "admin", "区域 zhaoliu 华南", msg_id="880001")
    outage.start()
    try:
        during = [chat.post_xml(plaintext) for _ in range(2)]  # WeCom's first delivery and a retry
        health = chat.app.test_client().get("/healthz")
    finally:
        outage.stop()
    assert outage.refused > 0
    assert [r.status_code for r in during] == [503, 503]  # not 200: WeCom keeps the message and retries
    assert all("Traceback" not in r.get_data(as_text=True) for r in during)
    assert health.status_code == 503 and health.json["database"].startswith("error")
    assert count(rt, InboundMessage) == 0  # nothing half-stored

    after = chat.post_xml(plaintext)  # WeCom's next retry, after recovery
    reply = wire.read_passive_reply(rt.crypto, after.get_data(as_text=True))
    assert after.status_code == 200 and reply is not None and "华南" in reply["Content"]
    again = chat.post_xml(plaintext)
    assert again.status_code == 200 and again.get_data() == b""
    assert count(rt, InboundMessage) == 1 and count(rt, ProcessedCallback) == 1
    assert count(rt, AuditEntry, AuditEntry.action == "set_region") == 1
    assert chat.app.test_client().get("/healthz").status_code == 200


def test_database_outage_between_send_and_bookkeeping_is_shown_once(rt, wecom, company):
    """WeCom showed the message, then the worker could not record it: the lease runs out, another pass
    sends it again with the duplicate check, and the member sees it once."""
    outage = Outage(rt)
    real = wecom.handle

    def accept_then_lose_the_database(api: str, query: dict[str, str], body: bytes | None, files: Any = None) -> Any:
        result = real(api, query, body, files)
        if api == "message/send":
            outage.start()
        return result

    wecom.handle = accept_then_lose_the_database  # type: ignore[method-assign]
    with rt.db.transaction() as s:
        [row] = enqueue(s, "zhangsan", Text("合同已归档"))
    d = Deliverer(rt, owner="w1")
    try:
        with pytest.raises(Exception, match="injected outage"):
            d.run_once()
    finally:
        outage.stop()
        wecom.handle = real  # type: ignore[method-assign]
    with rt.db.sessions() as s:
        stuck = s.get(OutboxMessage, row.id)
        assert stuck is not None and stuck.status == "sending"
    expire_leases(rt)
    assert Deliverer(rt, owner="w2").run_once() == 1
    assert [m.body["content"] for m in wecom.inbox("zhangsan")] == ["合同已归档"]
    assert wecom.count("message/send") == 2  # really sent twice, shown once


# ---- 4. A worker killed half-way through a job ----------------------------------------------------


def _reminder_fixture(rt: Runtime, n: int) -> None:
    today = datetime.now(rt.config.tz).date()
    with rt.db.transaction() as s:
        for i in range(n):
            c = Customer(name=f"客户{i}", name_key=f"客户{i}", owner_userid="zhangsan")
            s.add(c)
            s.flush()
            k = Contract(number=f"HT9{i:04d}", customer_id=c.id, owner_userid="zhangsan", amount=Decimal("1000"))
            s.add(k)
            s.flush()
            # invoiced 5 days ago, collectible in 3 days: today's push is the 3-day countdown
            s.add(Receivable(contract_id=k.id, seq=1, amount=Decimal("1000"), outstanding=Decimal("1000"),
                             due_on=today + timedelta(days=3), invoiced_on=today - timedelta(days=5),
                             collectible_on=today + timedelta(days=3)))


def test_worker_killed_mid_job_rerun_completes_without_double_effects(chat: Chat, rt, wecom, company):
    _reminder_fixture(rt, 20)
    jobs = load_jobs()
    slot = "2026-12-01T01:00Z"
    # the dead worker: its run row still says 'running'; it had pushed reminders for the first 8
    # receivables (committed with their dedup keys) and was sending one of them when it died
    with rt.db.transaction() as s:
        s.add(JobRun(name="collection_reminders", slot=slot, owner="dead-worker"))
        receivables = list(s.scalars(select(Receivable).order_by(Receivable.id)))
        for r in receivables[:8]:
            contract = s.get(Contract, r.contract_id)
            assert contract is not None
            enqueue(s, "zhangsan", Text(f"【{contract.number} 第1期】距可催款还有 3 天"),
                    dedup_key=f"collect:{r.id}:countdown-3@{r.collectible_on.isoformat()}")
    first = outbox_rows(rt)[0]
    wecom.handle(  # WeCom had shown that one before the worker died mid-send
        "message/send", {"access_token": wecom._gettoken({"corpid": CORP_ID, "corpsecret": SECRET})["access_token"]},
        json.dumps({"touser": "zhangsan", "msgtype": "text", "agentid": AGENT_ID,
                    "text": first.body}).encode())
    with rt.db.transaction() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.id == first.id)
                  .values(status="sending", attempts=1, lease_owner="dead-worker",
                          lease_until=utcnow() - timedelta(seconds=5)))

    # another worker firing the same slot does not run it twice
    assert run_job(rt, jobs["collection_reminders"], slot, owner="w2") is None
    # the operator's rerun (salesbot jobs run collection_reminders) completes the work
    summary = run_job(rt, jobs["collection_reminders"], "manual-rerun", owner="w2")
    assert summary == "12 reminders sent"
    assert run_job(rt, jobs["collection_reminders"], "manual-rerun-2", owner="w2") == "0 reminders sent"
    chat.deliver()
    shown = Counter(m.body["content"] for m in wecom.inbox("zhangsan"))
    assert len(shown) == 20 and set(shown.values()) == {1}  # every receivable pushed, each once
    assert count(rt, OutboxMessage) == 20
    assert {r.status for r in outbox_rows(rt)} == {"sent"}
    with rt.db.sessions() as s:
        runs = {(r.slot, r.status) for r in s.scalars(select(JobRun).where(JobRun.name == "collection_reminders"))}
    assert runs == {(slot, "running"), ("manual-rerun", "ok"), ("manual-rerun-2", "ok")}


def test_customer_events_job_killed_half_way_rerun_moves_and_reminds_once(chat: Chat, rt, wecom, company):
    now = utcnow()
    with rt.db.transaction() as s:
        for i in range(6):
            c = Customer(name=f"试用客户{i}", name_key=f"试用客户{i}", owner_userid="zhangsan")
            s.add(c)
            s.flush()
            s.add(Opportunity(customer_id=c.id, owner_userid="zhangsan", amount=Decimal("50000"), stage="demo"))
            s.add(CustomerEvent(customer_id=c.id, type="trial_requested", source="product",
                                external_id=f"product:t{i}", occurred_at=now - timedelta(hours=5)))
            for k in range(3):
                s.add(CustomerEvent(customer_id=c.id, type="login", source="product",
                                    external_id=f"product:l{i}-{k}", occurred_at=now - timedelta(hours=4 - k)))
    from jobs.customer_events import process_event

    with rt.db.sessions() as s:
        event_ids = list(s.scalars(select(CustomerEvent.id).order_by(CustomerEvent.id)))
    for event_id in event_ids[: len(event_ids) // 2]:  # the dead worker got half-way
        process_event(rt, event_id)
    with rt.db.transaction() as s:
        s.add(JobRun(name="customer_events", slot="i1764547200", owner="dead-worker"))
    job = load_jobs()["customer_events"]
    assert run_job(rt, job, "i1764547200", owner="w2") is None
    assert run_job(rt, job, "manual-1", owner="w2") is not None
    assert run_job(rt, job, "manual-2", owner="w2") is not None  # and once more, for good measure
    assert count(rt, CustomerEvent, CustomerEvent.processed_at.is_(None)) == 0
    assert count(rt, RuleFiring) == 6  # each opportunity moved once
    with rt.db.sessions() as s:
        assert set(s.scalars(select(Opportunity.stage))) == {"solution_confirmed"}
    chat.deliver()
    trial = [m for m in wecom.inbox("zhangsan") if "申请了试用" in m.body.get("content", "")]
    moved = [m for m in wecom.inbox("zhangsan") if "方案确认" in m.body.get("content", "")]
    assert len(trial) == 6 and len(moved) == 6  # one reminder and one move notice per customer
    assert len([m for m in wecom.inbox("wangwu") if m.msgtype == "template_card"]) == 6  # the manager's cards


def test_bulk_enqueue_of_keyed_pushes_is_idempotent_like_enqueue(rt, wecom, company):
    """What the chunked jobs use (bot.outbox.enqueue_many): keys already queued — by an earlier, crashed
    run or by ``enqueue`` — are skipped, a key twice in one batch is queued once, a rerun adds nothing."""
    from bot.outbox import enqueue_many

    with rt.db.transaction() as s:
        enqueue(s, "zhangsan", Text("已在队列"), dedup_key="k:0")
    items = [("zhangsan", Text(f"批量 {i}"), f"k:{i}") for i in range(5)] + [("lisi", Text("重复键"), "k:3")]
    with rt.db.transaction() as s:
        assert enqueue_many(s, items) == 4
    with rt.db.transaction() as s:
        assert enqueue_many(s, items) == 0
    assert count(rt, OutboxMessage) == 5
    with rt.db.sessions() as s:
        assert sorted(s.scalars(select(OutboxMessage.dedup_key))) == [f"k:{i}" for i in range(5)]


# ---- 4b. Nobody reruns by hand: the lease lapses and another worker takes over ----------------------


def test_run_of_a_killed_worker_is_taken_over_once_when_its_lease_lapses(chat: Chat, rt, make_runtime,
                                                                         wecom, company):
    from jobs.scheduler import recover_stale_runs

    _reminder_fixture(rt, 10)
    slot = "2026-12-01T01:00Z"
    with rt.db.transaction() as s:  # the worker died 3 minutes ago (lease 60 s) half-way: 4 pushed
        s.add(JobRun(name="collection_reminders", slot=slot, owner="dead-worker",
                     started_at=utcnow() - timedelta(minutes=4), heartbeat_at=utcnow() - timedelta(minutes=3)))
        for r in list(s.scalars(select(Receivable).order_by(Receivable.id)))[:4]:
            contract = s.get(Contract, r.contract_id)
            assert contract is not None
            enqueue(s, "zhangsan", Text(f"【{contract.number} 第1期】距可催款还有 3 天"),
                    dedup_key=f"collect:{r.id}:countdown-3@{r.collectible_on.isoformat()}")
        # a run of another job that is alive (fresh heartbeat) is left alone
        s.add(JobRun(name="cleanup", slot="alive", owner="busy-worker", heartbeat_at=utcnow()))
    sweepers = [make_runtime(), make_runtime()]
    start = threading.Barrier(2)
    taken: dict[int, list[str]] = {}

    def sweep(i: int) -> None:
        start.wait(timeout=10)
        taken[i] = recover_stale_runs(sweepers[i], owner=f"w{i}")

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(len(v) for v in taken.values()) == [0, 1]  # exactly one worker took it over
    assert recover_stale_runs(rt, owner="w3") == []  # and a later sweep finds nothing to do
    with rt.db.sessions() as s:
        runs = {r.slot: r for r in s.scalars(select(JobRun))}
    assert (runs[slot].status, runs[slot].summary, runs[slot].attempts) == ("ok", "6 reminders sent", 2)
    assert runs[slot].owner in ("w0", "w1") and runs[slot].finished_at is not None
    assert (runs["alive"].status, runs["alive"].owner) == ("running", "busy-worker")
    chat.deliver()
    shown = Counter(m.body["content"] for m in wecom.inbox("zhangsan"))
    assert len(shown) == 10 and set(shown.values()) == {1}  # every receivable pushed, each once


def test_a_long_job_keeps_its_lease_alive_and_is_not_taken_over(make_runtime):
    from jobs.registry import Job
    from jobs.scheduler import recover_stale_runs

    a, b = make_runtime(scheduler__lease_s=3), make_runtime(scheduler__lease_s=3)
    release, started = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow(rt: Runtime) -> str:
        runs.append("run")
        started.set()
        release.wait(30)
        return "done"

    job = Job("slow", slow, "a job longer than its lease")
    worker = threading.Thread(target=run_job, args=(a, job, "s1"), kwargs={"owner": "a"})
    worker.start()
    assert started.wait(10)
    threading.Event().wait(4.5)  # longer than the lease: only the heartbeat keeps the run alive
    assert recover_stale_runs(b, owner="b", jobs={"slow": job}) == []
    release.set()
    worker.join(30)
    assert runs == ["run"]
    with a.db.sessions() as s:
        [run] = s.scalars(select(JobRun))
    assert (run.status, run.owner, run.summary, run.attempts) == ("ok", "a", "done", 1)


def test_database_unreachable_when_a_job_fires_is_retried_and_the_slot_runs_once(rt, make_runtime):
    from jobs.registry import Job

    outage = Outage(rt)
    runs: list[str] = []
    job = Job("counting", lambda _rt: runs.append("run") or "ran", "test job")
    outage.start()
    results: list[str | None] = []
    worker = threading.Thread(target=lambda: results.append(run_job(rt, job, "slot-db", owner="w1")))
    worker.start()
    threading.Event().wait(1.5)  # the worker retries while the database is down
    assert runs == [] and outage.refused > 0
    outage.stop()
    worker.join(60)
    assert results == ["ran"] and runs == ["run"]
    assert run_job(make_runtime(), job, "slot-db", owner="w2") is None  # the other worker's firing
    with rt.db.sessions() as s:
        [run] = s.scalars(select(JobRun))
    assert (run.slot, run.status) == ("slot-db", "ok")


def test_database_down_for_the_whole_grace_releases_the_slot_for_a_later_firing(rt, monkeypatch):
    import jobs.scheduler
    from jobs.registry import Job

    monkeypatch.setattr(jobs.scheduler, "GRACE", timedelta(seconds=1))  # the misfire grace, shortened
    outage = Outage(rt)
    runs: list[str] = []
    job = Job("counting", lambda _rt: runs.append("run") or "ran", "test job")
    outage.start()
    try:
        assert run_job(rt, job, "slot-x", owner="w1") is None
    finally:
        outage.stop()
    assert runs == [] and rt.redis.get("job:counting:slot-x") is None  # the lock did not outlive it
    assert run_job(rt, job, "slot-x", owner="w2") == "ran"  # a later firing (the other worker) runs it
    assert runs == ["run"]


def test_a_pooled_connection_the_server_dropped_while_idle_is_replaced_unnoticed(rt, monkeypatch):
    """PostgreSQL restarted (or a proxy cut idle connections): the next transaction still works."""
    from sqlalchemy import create_engine, text

    import storage.db

    if not rt.db.is_postgres:
        pytest.skip("pooled server connections exist only on PostgreSQL (SQLite is a file)")
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    with rt.db.transaction() as s:
        pid = s.scalar(text("SELECT pg_backend_pid()"))
    admin = create_engine(rt.db.engine.url)
    with admin.begin() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    with rt.db.transaction() as s:  # would raise OperationalError on the dead connection
        assert s.scalar(text("SELECT pg_backend_pid()")) != pid
