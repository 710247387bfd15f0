"""Countdown and overdue pushes (PRODUCT.md §2.5) decided chunk by chunk exactly as domain/invoicing.py
plans them, a rerun after a crash, and the bulk enqueue they use."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

import jobs.collection_reminders
from bot.out import Card, Text
from bot.outbox import enqueue_many, enqueue_texts
from domain.invoicing import reminders_due
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.models import Card as CardRow
from storage.models import OutboxMessage
from storage.payments import Contract, Receivable
from storage.sales import Customer


class Killed(Exception):
    """The worker process dies."""


def run(rt) -> str | None:
    return run_job(rt, load_jobs()["collection_reminders"], f"collection_reminders-{uuid.uuid4().hex}")


def outbox(rt) -> list[OutboxMessage]:
    with rt.db.sessions() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture
def instalments(rt, company) -> list[tuple[int, str, date, date]]:
    """Eleven invoiced instalments due around today, one paid and one not invoiced (no pushes for those);
    returns (receivable id, owner, invoiced on, collectible on) of those that get pushes."""
    today = datetime.now(rt.config.tz).date()
    out = []
    with rt.db.transaction() as s:
        c = Customer(name="杭州云栖科技有限公司", name_key="杭州云栖科技", owner_userid="zhangsan")
        s.add(c)
        s.flush()
        k = Contract(number="HT2026100", customer_id=c.id, owner_userid="zhangsan", amount=Decimal("130000"))
        s.add(k)
        s.flush()
        for seq, (invoiced, due) in enumerate([(-30, 0), (-5, 7), (-5, 3), (-5, 1), (-10, 2), (-40, -3), (-40, -7),
                                               (-60, -20), (0, 30), (0, 0), (-2, 5)], start=1):
            r = Receivable(contract_id=k.id, seq=seq, amount=Decimal("10000"), outstanding=Decimal("10000"),
                           due_on=today + timedelta(days=due), invoiced_on=today + timedelta(days=invoiced),
                           collectible_on=today + timedelta(days=due))
            s.add(r)
            s.flush()
            out.append((r.id, "zhangsan", r.invoiced_on, r.collectible_on))
        s.add(Receivable(contract_id=k.id, seq=12, amount=Decimal("10000"), outstanding=Decimal("0"),
                         due_on=today, invoiced_on=today - timedelta(days=30), collectible_on=today))
        s.add(Receivable(contract_id=k.id, seq=13, amount=Decimal("10000"), outstanding=Decimal("10000"),
                         due_on=today))
    return out


def test_countdown_pushes_in_chunks_are_exactly_the_planned_ones(rt, instalments, monkeypatch):
    monkeypatch.setattr(jobs.collection_reminders, "CHUNK", 3)
    today = datetime.now(rt.config.tz).date()
    expected = set()
    with rt.db.sessions() as s:
        seqs = {r.id: r.seq for r in s.scalars(select(Receivable))}
    for rid, owner, invoiced_on, due_on in instalments:
        for rem in reminders_due(invoiced_on=invoiced_on, due_on=due_on, today=today, sent_keys=(),
                                 subject=f"HT2026100 第{seqs[rid]}期"):
            expected.add((owner, rem.text, f"collect:{rid}:{rem.key}"))
    assert len(expected) == 11
    assert run(rt) == "11 reminders sent"
    got = {(m.recipient, m.body["content"], m.dedup_key) for m in outbox(rt)}
    assert got == expected
    texts = {m.body["content"] for m in outbox(rt)}
    assert {"【HT2026100 第2期】距可催款还有 7 天", "【HT2026100 第3期】距可催款还有 3 天",
            "【HT2026100 第4期】距可催款还有 1 天", "【HT2026100 第1期】今日可催款",
            "【HT2026100 第6期】已逾期 3 天，请尽快催款", "【HT2026100 第9期】已开票，距可催款还有 30 天",
            "【HT2026100 第10期】已开票，今日可催款"} <= texts
    assert [m.dedup_key for m in outbox(rt)] == sorted((m.dedup_key for m in outbox(rt)),
                                                       key=lambda k: int(k.split(":")[1]))  # in instalment order
    assert run(rt) == "0 reminders sent"


def test_countdown_rerun_after_a_crash_in_a_later_chunk_sends_only_the_rest(rt, instalments, monkeypatch):
    monkeypatch.setattr(jobs.collection_reminders, "CHUNK", 4)
    calls = {"n": 0}

    def dying(session: Any, items: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return enqueue_texts(session, items)

    monkeypatch.setattr(jobs.collection_reminders, "enqueue_texts", dying)
    with pytest.raises(Killed):
        jobs.collection_reminders.collection_reminders(rt)
    assert len(outbox(rt)) == 4  # the first chunk committed, the second rolled back
    assert run(rt) == "7 reminders sent"
    assert run(rt) == "0 reminders sent"
    keys = [m.dedup_key for m in outbox(rt)]
    assert len(keys) == len(set(keys)) == 11


def test_bulk_enqueue_keeps_the_order_and_takes_unkeyed_items_and_cards(rt, company):
    card = {"card_type": "button_interaction", "main_title": {"title": "t", "desc": "d"},
            "button_list": [{"text": "好", "key": "ok", "style": 1}]}
    items: list[Any] = [("zhangsan", Text("一"), None), ("zhoujiu", Card("credit_freeze", card, {"n": 1}), None),
                        ("zhangsan", Text("二"), "k:1"), ("zhangsan", Text("二again"), "k:1"),
                        ("zhangsan", Text("三"), None)]
    with rt.db.transaction() as s:
        assert enqueue_many(s, items) == 4
    with rt.db.transaction() as s:
        assert enqueue_many(s, items) == 3  # the keyed one is not queued twice; unkeyed ones are
    rows = outbox(rt)
    assert [m.body.get("content") for m in rows if m.recipient == "zhangsan"] == ["一", "二", "三", "一", "三"]
    with rt.db.sessions() as s:
        cards = list(s.scalars(select(CardRow)))
    assert len(cards) == 2 and {c.status for c in cards} == {"open"}
    assert {m.card_task_id for m in rows if m.msgtype == "template_card"} == {c.task_id for c in cards}
    assert all(m.body["task_id"] == m.card_task_id for m in rows if m.msgtype == "template_card")


def test_bulk_text_enqueue_skips_queued_and_repeated_keys_and_writes_what_enqueue_writes(rt, company):
    from bot.outbox import enqueue

    with rt.db.transaction() as s:
        enqueue(s, "zhangsan", Text("已在队列"), dedup_key="t:0")
        enqueue(s, "lisi", Text("参照 \"引号\" 与换行\n第二行"), dedup_key="ref")
    items = [("zhangsan", f"批量 {i}", f"t:{i}") for i in range(4)] + [("lisi", "重复键", "t:2"),
                                                                        ("lisi", "参照 \"引号\" 与换行\n第二行", "new")]
    with rt.db.transaction() as s:
        assert enqueue_texts(s, items) == 4
    with rt.db.transaction() as s:
        assert enqueue_texts(s, items) == 0
    rows = {m.dedup_key: m for m in outbox(rt)}
    assert sorted(rows) == ["new", "ref", "t:0", "t:1", "t:2", "t:3"]
    assert rows["t:2"].recipient == "zhangsan" and rows["t:2"].body == {"content": "批量 2"}
    ref, new = rows["ref"], rows["new"]
    for col in ("recipient", "msgtype", "body", "status", "attempts", "card_task_id", "lease_owner"):
        assert getattr(new, col) == getattr(ref, col), col
    assert new.next_attempt_at.tzinfo is not None and abs((new.created_at - ref.created_at).total_seconds()) < 60
    assert [m.dedup_key for m in outbox(rt)][-4:] == ["t:1", "t:2", "t:3", "new"]  # in items order
    with rt.db.engine.connect() as conn:  # stored as the ORM stores them (SQLite: the same text format)
        raw = dict(conn.execute(text("SELECT dedup_key, created_at FROM outbox WHERE dedup_key IN ('ref', 'new')")).all())
    assert type(raw["new"]) is type(raw["ref"]) and len(str(raw["new"])) == len(str(raw["ref"]))
    with rt.db.transaction() as s:  # a text too long for one message is split as enqueue would
        assert enqueue_texts(s, [("zhangsan", "长" * 1000, "long")]) == 1
    assert [m.dedup_key for m in outbox(rt)][-2:] == ["long", "long#1"]
