"""The transactional outbox: written with the change it announces, delivered at least once, paced per
member, retried with backoff, never shown twice, each row delivered by one worker.

WeCom is faked at the HTTP layer (``wecom`` fixture); failures are injected in front of it with
``Faults`` (see test_wecom_client.py).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from bot.emulator.state import WeComState
from bot.out import Card, Image, Markdown, Text, button_card
from bot.outbox import Deliverer, enqueue, enqueue_card_update
from bot.runtime import Runtime
from storage.models import Card as CardRow
from storage.models import OutboxMessage
from storage.types import utcnow
from tests.test_wecom_client import Faults

MEMBERS = {"zhangsan": "张三", "lisi": "李四", "wangwu": "王五"}


@pytest.fixture
def members(wecom: WeComState) -> dict[str, str]:
    for userid, name in MEMBERS.items():
        wecom.add_member(userid, name)
    return MEMBERS


def send(rt: Runtime, recipient: str, *outs, **kw) -> list[int]:
    with rt.db.transaction() as s:
        ids = []
        for out in outs:
            ids += [r.id for r in enqueue(s, recipient, out, **kw)]
    return ids


def rows(rt: Runtime) -> list[OutboxMessage]:
    with rt.db.sessions() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def row(rt: Runtime, row_id: int) -> OutboxMessage:
    with rt.db.sessions() as s:
        r = s.get(OutboxMessage, row_id)
        assert r is not None
        return r


def make_due(rt: Runtime) -> None:
    """Skip the wait: every pending row becomes due now."""
    with rt.db.transaction() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                  .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def drain(d: Deliverer, rt: Runtime, passes: int = 50) -> int:
    """Deliver until nothing is pending, making backed-off rows due between passes."""
    total = 0
    for _ in range(passes):
        total += d.run_once()
        if not any(r.status in ("pending", "sending") for r in rows(rt)):
            return total
        make_due(rt)
    raise AssertionError("outbox did not drain")


def texts(state: WeComState, userid: str) -> list[str]:
    return [m.body["content"] for m in state.inbox(userid) if m.msgtype in ("text", "markdown")]


def timeout_after_accepting(real, api, query, body, files):
    real(api, query, body, files)  # WeCom shows the message …
    raise requests.exceptions.ReadTimeout("read timed out")  # … but the answer never arrives


def timeout_before_arriving(real, api, query, body, files):
    raise requests.exceptions.ConnectTimeout("connect timed out")


# ---- written with the change ---------------------------------------------------------------------


def test_enqueued_message_is_delivered(rt, wecom, members):
    [row_id] = send(rt, "zhangsan", Text("你好"))
    assert Deliverer(rt).run_once() == 1
    assert texts(wecom, "zhangsan") == ["你好"]
    r = row(rt, row_id)
    assert r.status == "sent" and r.attempts == 1 and r.sent_at is not None
    assert r.wecom_msgid == wecom.inbox("zhangsan")[0].msgid


def test_a_rolled_back_transaction_sends_nothing(rt, wecom, members):
    with pytest.raises(RuntimeError), rt.db.transaction() as s:
        enqueue(s, "zhangsan", Text("客户已签约"))
        raise RuntimeError("the change failed")
    assert rows(rt) == []
    assert Deliverer(rt).run_once() == 0
    assert wecom.count("message/send") == 0
    assert wecom.inbox("zhangsan") == []


def test_the_same_text_in_two_rows_is_shown_twice(rt, wecom, members):
    """Idempotent by outbox row, not by content: a deliberate repeat is not swallowed."""
    send(rt, "zhangsan", Text("已记录。"))
    send(rt, "zhangsan", Text("已记录。"))
    assert Deliverer(rt).run_once() == 2
    assert texts(wecom, "zhangsan") == ["已记录。", "已记录。"]


def test_dedup_key_makes_a_rerun_send_nothing_new(rt, wecom, members):
    assert send(rt, "zhangsan", Text("周报已生成"), dedup_key="weekly:2026-10:zhangsan")
    assert send(rt, "zhangsan", Text("周报已生成"), dedup_key="weekly:2026-10:zhangsan") == []
    drain(Deliverer(rt), rt)
    assert texts(wecom, "zhangsan") == ["周报已生成"]


def test_concurrent_enqueue_with_the_same_dedup_key_keeps_both_transactions(make_runtime, wecom, members):
    """Two processes enqueue the same key at once: one row, and the second's own change still commits."""
    a, b = make_runtime(), make_runtime()
    errors: list[BaseException] = []
    got: list[int] = []

    def second() -> None:
        try:
            with b.db.transaction() as s:
                got.append(len(enqueue(s, "zhangsan", Text("提醒"), dedup_key="remind:1")))
                enqueue(s, "lisi", Text("其他通知"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with a.db.transaction() as s:
        enqueue(s, "zhangsan", Text("提醒"), dedup_key="remind:1")
        t = threading.Thread(target=second)
        t.start()
        t.join(0.5)  # let the second transaction reach (and wait on) the same key
    t.join(30)
    assert errors == []
    assert got == [0]
    assert sorted(r.recipient for r in rows(a)) == ["lisi", "zhangsan"]


# ---- failures, retries, backoff ------------------------------------------------------------------


def test_rate_limited_45009_stays_pending_with_backoff_then_arrives_once(make_runtime, wecom, members):
    rt = make_runtime(outbox__backoff_base_s=60)
    faults = Faults(wecom)
    faults.answer("message/send", {"errcode": 45009, "errmsg": "api freq out of limit"})
    [row_id] = send(rt, "zhangsan", Text("回款到账"))
    before = utcnow()
    d = Deliverer(rt)
    assert d.run_once() == 0
    r = row(rt, row_id)
    assert r.status == "pending" and r.attempts == 1 and "45009" in (r.last_error or "")
    assert r.next_attempt_at > before + timedelta(seconds=30)  # backed off, not retried at once
    assert d.run_once() == 0  # not due yet
    assert faults.requests.count("message/send") == 1
    make_due(rt)
    assert d.run_once() == 1
    assert row(rt, row_id).status == "sent"
    assert texts(wecom, "zhangsan") == ["回款到账"]


def test_backoff_grows_with_each_attempt(make_runtime, wecom, members):
    rt = make_runtime(outbox__backoff_base_s=10, outbox__backoff_max_s=1000)
    Faults(wecom).answer("message/send", {"errcode": -1, "errmsg": "system busy"}, times=3)
    [row_id] = send(rt, "zhangsan", Text("x"))
    d = Deliverer(rt)
    delays = []
    for _ in range(3):
        t0 = utcnow()
        d.run_once()
        delays.append((row(rt, row_id).next_attempt_at - t0).total_seconds())
        make_due(rt)
    assert delays[0] < delays[1] < delays[2]
    assert d.run_once() == 1


def test_timeout_after_wecom_accepted_is_retried_and_shown_once(rt, wecom, members):
    faults = Faults(wecom)
    faults.add("message/send", timeout_after_accepting)
    [row_id] = send(rt, "zhangsan", Text("合同已审批"))
    d = Deliverer(rt)
    assert d.run_once() == 0
    assert row(rt, row_id).status == "pending"
    make_due(rt)
    assert d.run_once() == 1
    assert faults.requests.count("message/send") == 2  # it really was sent twice …
    assert texts(wecom, "zhangsan") == ["合同已审批"]  # … and shown once
    [first, retry] = [json.loads(c[1]["body"]) for c in wecom.calls if c[0] == "message/send"]
    assert not first.get("enable_duplicate_check")
    assert retry["enable_duplicate_check"] == 1 and retry["duplicate_check_interval"] >= 60
    assert row(rt, row_id).status == "sent"


def test_timeout_before_wecom_got_it_is_retried_and_arrives(rt, wecom, members):
    Faults(wecom).add("message/send", timeout_before_arriving)
    send(rt, "zhangsan", Text("第一条"))
    drain(Deliverer(rt), rt)
    assert texts(wecom, "zhangsan") == ["第一条"]


def test_a_worker_dying_mid_send_leaves_the_row_to_another_worker_shown_once(make_runtime, wecom, members):
    class WorkerDied(BaseException):
        pass

    def die(real, api, query, body, files):
        real(api, query, body, files)
        raise WorkerDied

    a, b = make_runtime(), make_runtime()
    Faults(wecom).add("message/send", die)
    [row_id] = send(a, "zhangsan", Text("拜访提醒"))
    with pytest.raises(WorkerDied):
        Deliverer(a, owner="a").run_once()
    r = row(a, row_id)
    assert r.status == "sending" and r.lease_owner == "a"
    assert Deliverer(b, owner="b").run_once() == 0  # the lease still holds
    with a.db.transaction() as s:  # … until it runs out
        s.execute(update(OutboxMessage).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert Deliverer(b, owner="b").run_once() == 1
    assert texts(wecom, "zhangsan") == ["拜访提醒"]
    r = row(a, row_id)
    assert r.status == "sent" and r.attempts == 2


def test_unknown_member_81013_fails_permanently_without_retrying(rt, wecom, members):
    [row_id] = send(rt, "nobody", Text("你是谁"))
    d = Deliverer(rt)
    d.run_once()
    r = row(rt, row_id)
    assert r.status == "failed" and "81013" in (r.last_error or "")
    make_due(rt)
    for _ in range(3):
        d.run_once()
    assert wecom.count("message/send") == 1


def test_a_row_failing_max_attempts_times_is_dead(make_runtime, wecom, members):
    rt = make_runtime(outbox__max_attempts=3)
    faults = Faults(wecom)
    faults.answer("message/send", {"errcode": 45009, "errmsg": "api freq out of limit"}, times=100)
    [row_id] = send(rt, "zhangsan", Text("发不出去"))
    d = Deliverer(rt)
    for _ in range(6):
        d.run_once()
        make_due(rt)
    r = row(rt, row_id)
    assert r.status == "dead" and r.attempts == 3
    assert faults.requests.count("message/send") == 3


def test_one_failing_member_does_not_stop_the_others(rt, wecom, members):
    send(rt, "nobody", Text("a"))
    send(rt, "zhangsan", Text("b"))
    send(rt, "lisi", Text("c"))
    assert Deliverer(rt).run_once() == 2
    assert texts(wecom, "zhangsan") == ["b"] and texts(wecom, "lisi") == ["c"]


# ---- several workers -----------------------------------------------------------------------------


def test_two_workers_deliver_every_row_exactly_once(make_runtime, wecom, members):
    a, b = make_runtime(outbox__batch_size=7), make_runtime(outbox__batch_size=7)
    recipients = [f"rep{i:02d}" for i in range(20)]
    for userid in recipients:
        wecom.add_member(userid, userid)
    with a.db.transaction() as s:
        for i in range(200):
            enqueue(s, recipients[i % 20], Text(f"通知 #{i}"))
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    delivered = {"a": 0, "b": 0}

    def work(name: str, rt: Runtime) -> None:
        try:
            d = Deliverer(rt, owner=name)
            start.wait(timeout=10)
            for _ in range(500):
                delivered[name] += d.run_once()
                with rt.db.sessions() as s:
                    left = s.scalar(select(OutboxMessage.id).where(OutboxMessage.status.in_(["pending", "sending"]))
                                    .limit(1))
                if left is None:
                    return
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=("a", a)), threading.Thread(target=work, args=("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    shown = Counter(m.body["content"] for m in wecom.messages)
    assert shown == Counter({f"通知 #{i}": 1 for i in range(200)})
    assert wecom.count("message/send") == 200  # no row was even sent twice
    assert delivered["a"] + delivered["b"] == 200
    assert {r.status for r in rows(a)} == {"sent"}
    # each member got their messages in the order they were written
    for userid in recipients:
        got = [int(c.split("#")[1]) for c in texts(wecom, userid)]
        assert got == sorted(got)


# ---- pacing --------------------------------------------------------------------------------------


def frozen_clock(offset_s: float = 20.0) -> list[float]:
    """A settable clock in the middle of a minute window (the pacing window is the wall-clock minute)."""
    return [(time.time() // 3600) * 3600 + 600 + offset_s]


def test_per_member_pacing_30_a_minute_rest_postponed_others_not_held(rt, wecom, members):
    clock = frozen_clock()
    d = Deliverer(rt, clock=lambda: clock[0])
    send(rt, "zhangsan", *[Text(f"张三 {i}") for i in range(35)])
    send(rt, "lisi", *[Text(f"李四 {i}") for i in range(3)])
    before = utcnow()
    while d.run_once():
        pass
    assert len(texts(wecom, "zhangsan")) == 30
    assert texts(wecom, "lisi") == [f"李四 {i}" for i in range(3)]  # not held back by 张三's queue
    waiting = [r for r in rows(rt) if r.status != "sent"]
    assert len(waiting) == 5
    assert all(r.status == "pending" and r.next_attempt_at > before and r.attempts == 0 for r in waiting)
    # the next minute: the rest go, in order, none lost, none twice
    clock[0] += 60
    make_due(rt)
    while d.run_once():
        pass
    assert texts(wecom, "zhangsan") == [f"张三 {i}" for i in range(35)]
    assert {r.status for r in rows(rt)} == {"sent"}


def test_pacing_is_shared_by_all_workers(make_runtime, wecom, members):
    clock = frozen_clock()
    a, b = make_runtime(), make_runtime()
    send(a, "zhangsan", *[Text(f"A{i}") for i in range(20)])
    Deliverer(a, clock=lambda: clock[0]).run_once()
    send(b, "zhangsan", *[Text(f"B{i}") for i in range(20)])
    Deliverer(b, clock=lambda: clock[0]).run_once()
    assert len(wecom.inbox("zhangsan")) == 30


def test_per_member_hourly_limit(rt, wecom, members):
    clock = frozen_clock()
    d = Deliverer(rt, clock=lambda: clock[0])
    d.per_hour = 40
    send(rt, "zhangsan", *[Text(f"{i}") for i in range(50)])
    for _ in range(3):  # three minutes of delivery
        make_due(rt)
        while d.run_once():
            pass
        clock[0] += 60
    assert len(wecom.inbox("zhangsan")) == 40
    waiting = [r for r in rows(rt) if r.status == "pending"]
    assert len(waiting) == 10
    assert all(r.next_attempt_at > utcnow() + timedelta(minutes=5) for r in waiting)  # the next hour


# ---- long text -----------------------------------------------------------------------------------


def long_chinese_text() -> str:
    lines = [f"第{i}条：客户“华东精密”本周拜访两次，商机推进到报价阶段，回款计划已确认。" for i in range(80)]
    lines[10] = "长行" + "销售日报" * 700  # one line longer than a whole message
    return "\n".join(lines)


def assert_pieces_cover(original: str, pieces: list[str]) -> None:
    """Pieces appear in order and, joined, are the original up to newlines at the cuts."""
    pos = 0
    for piece in pieces:
        assert piece
        at = original.find(piece, pos)
        assert at >= 0, "piece out of order or altered"
        assert original[pos:at].strip("\n") == "", f"text lost between pieces: {original[pos:at]!r}"
        pos = at + len(piece)
    assert original[pos:].strip("\n") == ""


@pytest.mark.parametrize("kind", [Text, Markdown])
def test_long_text_is_split_at_2048_bytes_in_order(rt, wecom, members, kind):
    original = long_chinese_text()
    assert len(original.encode("utf-8")) > 3 * 2048
    ids = send(rt, "zhangsan", kind(original))
    assert len(ids) >= 4
    for r in rows(rt):
        content = r.body["content"]
        assert len(content.encode("utf-8")) <= 2048
    drain(Deliverer(rt), rt)
    shown = texts(wecom, "zhangsan")
    assert len(shown) == len(ids)
    for piece in shown:
        assert len(piece.encode("utf-8")) <= 2048
        piece.encode("utf-8").decode("utf-8")  # whole characters only
        assert "\ufffd" not in piece
    assert_pieces_cover(original, shown)


def test_pieces_of_a_long_text_keep_their_order_when_one_must_be_retried(rt, wecom, members):
    original = long_chinese_text()
    Faults(wecom).answer("message/send", {"errcode": 45009, "errmsg": "api freq out of limit"})
    ids = send(rt, "zhangsan", Text(original))
    send(rt, "zhangsan", Text("之后的一条"))
    drain(Deliverer(rt), rt)
    shown = texts(wecom, "zhangsan")
    assert len(shown) == len(ids) + 1
    assert_pieces_cover(original, shown[:-1])
    assert shown[-1] == "之后的一条"


# ---- cards ---------------------------------------------------------------------------------------


def approval_card() -> Card:
    return Card("expense", button_card("报销审批", "张三 ¥300", [("批准", "approve:1", 1), ("驳回", "reject:1", 2)]),
                subject={"expense_id": 1})


def card_row(rt: Runtime, task_id: str) -> CardRow:
    with rt.db.sessions() as s:
        c = s.scalar(select(CardRow).where(CardRow.task_id == task_id))
        assert c is not None
        return c


def test_card_is_recorded_delivered_and_its_response_code_stored(rt, wecom, members):
    [row_id] = send(rt, "wangwu", approval_card())
    task_id = row(rt, row_id).card_task_id
    assert task_id and row(rt, row_id).body["task_id"] == task_id
    c = card_row(rt, task_id)
    assert c.kind == "expense" and c.addressee == "wangwu" and c.card_type == "button_interaction"
    assert c.subject == {"expense_id": 1} and c.response_code is None
    assert Deliverer(rt).run_once() == 1
    [shown] = wecom.inbox("wangwu")
    assert shown.msgtype == "template_card" and shown.task_id == task_id
    assert card_row(rt, task_id).response_code == shown.response_code
    assert row(rt, row_id).response_code == shown.response_code


def test_card_update_reaches_wecom_and_the_button_shows_the_new_name(rt, wecom, members):
    [row_id] = send(rt, "wangwu", approval_card())
    d = Deliverer(rt)
    d.run_once()
    c = card_row(rt, row(rt, row_id).card_task_id or "")
    with rt.db.transaction() as s:
        enqueue_card_update(s, c, c.response_code or "", "已批准")
    assert d.run_once() == 1
    assert wecom.count("message/update_template_card") == 1
    [shown] = wecom.inbox("wangwu")
    assert shown.card_state == {"replace_name": "已批准", "updated_at": shown.card_state["updated_at"]}
    assert {r.status for r in rows(rt)} == {"sent"}


def test_card_timeout_after_wecom_accepted_is_not_failed_and_shown_once(rt, wecom, members):
    Faults(wecom).add("message/send", timeout_after_accepting)
    [row_id] = send(rt, "wangwu", approval_card())
    drain(Deliverer(rt), rt)
    assert len(wecom.inbox("wangwu")) == 1
    assert row(rt, row_id).status == "sent"


def test_card_update_timeout_after_wecom_accepted_is_not_failed(rt, wecom, members):
    send(rt, "wangwu", approval_card())
    d = Deliverer(rt)
    d.run_once()
    c = card_row(rt, wecom.inbox("wangwu")[0].task_id or "")
    Faults(wecom).add("message/update_template_card", timeout_after_accepting)
    with rt.db.transaction() as s:
        enqueue_card_update(s, c, c.response_code or "", "已驳回")
    drain(d, rt)
    assert wecom.inbox("wangwu")[0].card_state["replace_name"] == "已驳回"
    assert {r.status for r in rows(rt)} == {"sent"}


def test_a_card_with_a_reused_task_id_fails_on_first_try(rt, wecom, members):
    card = approval_card()
    send(rt, "wangwu", Card(card.kind, dict(card.card, task_id="fixed-task-1")))
    d = Deliverer(rt)
    d.run_once()
    with wecom.lock:  # WeCom already knows this task id (e.g. from another app instance)
        wecom.task_ids.add("fixed-task-2")
    [row_id] = send(rt, "lisi", Card(card.kind, dict(card.card, task_id="fixed-task-2")))
    d.run_once()
    r = row(rt, row_id)
    assert r.status == "failed" and "42014" in (r.last_error or "")


# ---- images --------------------------------------------------------------------------------------

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


def test_image_is_uploaded_then_sent_with_its_media_id(rt, wecom, members):
    [row_id] = send(rt, "zhangsan", Image(PNG, filename="funnel.png"))
    queued = row(rt, row_id)
    assert queued.media == PNG and queued.body == {"filename": "funnel.png"}  # the bytes as they are, no base64
    assert Deliverer(rt).run_once() == 1
    apis = [name for name, _ in wecom.calls if name != "gettoken"]
    assert apis == ["media/upload", "message/send"]
    [shown] = wecom.inbox("zhangsan")
    assert shown.msgtype == "image"
    filename, data, _ = wecom.media[shown.body["media_id"]]
    assert data == PNG and filename == "funnel.png"
    sent = row(rt, row_id)
    assert sent.status == "sent" and sent.media is None  # WeCom has it: the bytes are not kept


def test_an_image_queued_as_base64_before_the_media_column_is_still_sent(rt, wecom, members):
    [row_id] = send(rt, "zhangsan", Text("占位"))
    with rt.db.transaction() as s:  # a row as queued before migration 0006: the PNG as base64 in its body
        s.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
            msgtype="image", body={"png_b64": base64.b64encode(PNG).decode(), "filename": "old.png"}, media=None))
    assert Deliverer(rt).run_once() == 1
    [shown] = wecom.inbox("zhangsan")
    assert shown.msgtype == "image" and wecom.media[shown.body["media_id"]][:2] == ("old.png", PNG)


def test_image_send_retried_after_a_timeout_reuses_the_upload_and_shows_once(rt, wecom, members):
    Faults(wecom).add("message/send", timeout_after_accepting)
    send(rt, "zhangsan", Image(PNG))
    drain(Deliverer(rt), rt)
    assert wecom.count("media/upload") == 1
    assert len(wecom.inbox("zhangsan")) == 1
