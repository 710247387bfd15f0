"""Issue 9: the customer_events job works in chunks (events and customers many at a time, writes in bulk).
These check that batching changes no decision: several events of one customer in one chunk, a rule firing
once across runs, a crash after the first chunk, the SQL counting against the domain's, the batched health
signals against the one-customer ones."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

import jobs.customer_events as CE
from domain import rules as R
from jobs.incentives import health_signals
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.behaviour import CustomerEvent, LinkItem, RuleFiring, UpgradeRule
from storage.models import Card, OutboxMessage
from storage.payments import Contract, Receivable
from storage.sales import Customer, Opportunity, StageChange
from storage.types import utcnow


def count(rt, model, *where) -> int:
    with rt.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def outbox_texts(rt, recipient: str) -> list[str]:
    with rt.db.sessions() as s:
        return [m.body.get("content", "") for m in s.scalars(select(OutboxMessage)
                                                             .where(OutboxMessage.recipient == recipient)
                                                             .order_by(OutboxMessage.id))]


def trial_customers(rt, n: int, *, logins: int = 3, stage: str = "demo") -> list[int]:
    """n customers, each with one opportunity in ``stage``, a trial request and ``logins`` logins after it,
    none processed yet."""
    now = utcnow()
    ids = []
    with rt.db.transaction() as s:
        for i in range(n):
            c = Customer(name=f"批量客户{i}", name_key=f"批量客户{i}", owner_userid="zhangsan")
            s.add(c)
            s.flush()
            ids.append(c.id)
            s.add(Opportunity(customer_id=c.id, owner_userid="zhangsan", amount=Decimal("10000"), stage=stage))
            s.add(CustomerEvent(customer_id=c.id, type="trial_requested", source="product",
                                external_id=f"product:bt{i}", occurred_at=now - timedelta(hours=5)))
            for k in range(logins):
                s.add(CustomerEvent(customer_id=c.id, type="login", source="product",
                                    external_id=f"product:bl{i}-{k}", occurred_at=now - timedelta(hours=4 - k)))
    return ids


def test_two_events_of_one_customer_in_one_chunk_move_once_and_remind_once(rt, company):
    trial_customers(rt, 1)
    now = utcnow()
    with rt.db.transaction() as s:
        item = LinkItem(name="报价单", url="https://example.com/p", category="pricing", created_by="admin")
        s.add(item)
        s.flush()
        cid = s.scalar(select(Customer.id))
        for k in range(2):  # two clicks on the same pricing item the same day: one reminder
            s.add(CustomerEvent(customer_id=cid, type="link_click", category="pricing", item_id=item.id,
                                source="link", occurred_at=now - timedelta(minutes=10 - k)))
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(CustomerEvent.id).order_by(CustomerEvent.id)))
    assert CE.process_events(rt, ids) == (6, 1)
    assert CE.process_events(rt, ids) == (0, 0)  # already processed
    assert count(rt, RuleFiring) == 1 and count(rt, StageChange) == 1
    with rt.db.sessions() as s:
        assert s.scalar(select(Opportunity.stage)) == "solution_confirmed"
    texts = outbox_texts(rt, "zhangsan")
    # in event order: the trial reminder, then (at the customer's first event) the move, then the pricing click
    assert len(texts) == 3
    assert "申请了试用" in texts[0] and "方案确认" in texts[1] and "报价单" in texts[2]
    assert count(rt, OutboxMessage, OutboxMessage.recipient == "wangwu") == 1  # the manager's card
    assert count(rt, Card) == 1


def test_a_rule_fires_once_across_runs(rt, company):
    trial_customers(rt, 3)
    job = load_jobs()["customer_events"]
    assert run_job(rt, job, "r1") == "12 events processed, 3 opportunities upgraded"
    before = (count(rt, StageChange), count(rt, OutboxMessage), count(rt, Card))
    assert run_job(rt, job, "r2") == "0 events processed, 0 opportunities upgraded"
    assert (count(rt, StageChange), count(rt, OutboxMessage), count(rt, Card)) == before
    assert count(rt, RuleFiring) == 3
    # a rule added later fires for the same opportunities once, further on
    with rt.db.transaction() as s:
        s.add(UpgradeRule(text="登录>=2 则 报价谈判", target="negotiation", created_by="admin"))
    assert run_job(rt, job, "r3") == "0 events processed, 3 opportunities upgraded"
    assert run_job(rt, job, "r4") == "0 events processed, 0 opportunities upgraded"
    with rt.db.sessions() as s:
        assert set(s.scalars(select(Opportunity.stage))) == {"negotiation"}
    assert count(rt, RuleFiring) == 6


def test_a_crash_after_the_first_chunk_and_a_rerun_move_and_notify_once(rt, company, monkeypatch):
    trial_customers(rt, 5)
    monkeypatch.setattr(CE, "PENDING_CHUNK", 8)  # two customers' events per chunk
    calls = {"n": 0}
    real = CE.enqueue_notices

    def crash_on_second_chunk(s, items):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(s, items)

    monkeypatch.setattr(CE, "enqueue_notices", crash_on_second_chunk)
    job = load_jobs()["customer_events"]
    assert run_job(rt, job, "crash") is None  # failed
    assert count(rt, RuleFiring) == 2 and count(rt, CustomerEvent, CustomerEvent.processed_at.is_(None)) == 12
    monkeypatch.setattr(CE, "enqueue_notices", real)
    assert run_job(rt, job, "rerun") == "12 events processed, 3 opportunities upgraded"
    assert run_job(rt, job, "again") == "0 events processed, 0 opportunities upgraded"
    assert count(rt, RuleFiring) == 5 and count(rt, StageChange) == 5
    texts = outbox_texts(rt, "zhangsan")
    assert sum("申请了试用" in t for t in texts) == 5 and sum("方案确认" in t for t in texts) == 5
    assert count(rt, OutboxMessage, OutboxMessage.recipient == "wangwu") == 5 and count(rt, Card) == 5


def test_a_move_made_by_someone_else_meanwhile_is_not_made_again(rt, company):
    trial_customers(rt, 2)
    now = utcnow()
    with rt.db.transaction() as s:
        rules = CE.active_rules(s)
        moves = CE.decide_moves(s, rules, list(s.scalars(select(Customer.id))), now)
    assert len(moves) == 2
    with rt.db.transaction() as s:  # a concurrent run made the first move
        assert len(CE.apply_moves(rt, s, moves[:1], now)) == 1
    with rt.db.transaction() as s:  # and a rep moved the second one by hand
        s.get(Opportunity, moves[1].opportunity_id).stage = "negotiation"
    with rt.db.transaction() as s:
        assert CE.apply_moves(rt, s, moves, now) == []
    assert count(rt, RuleFiring) == 1 and count(rt, StageChange) == 1


def test_a_move_decided_ahead_of_its_chunk_is_checked_again_when_its_chunk_is_made(rt, company, monkeypatch):
    ids = trial_customers(rt, 3)
    monkeypatch.setattr(CE, "EVALUATE_CHUNK", 1)
    real, decided = CE._decide_chunk, []

    def decide(rt_, chunk):
        out = real(rt_, chunk)
        decided.append(list(chunk))
        if list(chunk) == [ids[1]]:  # decided while the first chunk is being made; a manager freezes it meanwhile
            with rt.db.transaction() as s:
                s.execute(update(Opportunity).where(Opportunity.customer_id == ids[1]).values(frozen=True))
        return out

    monkeypatch.setattr(CE, "_decide_chunk", decide)
    assert CE.evaluate_customers(rt, ids) == 2
    assert decided == [[ids[0]], [ids[1]], [ids[2]]]
    with rt.db.sessions() as s:
        stages = dict(s.execute(select(Opportunity.customer_id, Opportunity.stage)).all())
    assert stages == {ids[0]: "solution_confirmed", ids[1]: "demo", ids[2]: "solution_confirmed"}
    assert count(rt, RuleFiring) == 2 and count(rt, StageChange) == 2 and count(rt, Card) == 2


KINDS = [R.EventKind("login"), R.EventKind("trial_requested"), R.EventKind("link_click"),
         R.EventKind("link_click", "competitor"), R.EventKind("link_click", "pricing"), R.EventKind("feature_used")]


def test_sql_counting_agrees_with_the_domain_on_random_histories(rt, company):
    rng = random.Random(9)
    now = utcnow()
    conditions = list(dict.fromkeys(
        R.Condition(rng.choice(KINDS), rng.choice([">=", ">", "<=", "<", "="]), rng.randint(0, 3),
                    rng.choice([None, 1, 3, 30]), rng.choice([None, None, *KINDS]))
        for _ in range(40)))
    histories: dict[int, list[R.CustomerEvent]] = {}
    with rt.db.transaction() as s:
        for i in range(30):
            c = Customer(name=f"随机{i}", name_key=f"随机{i}", owner_userid="zhangsan")
            s.add(c)
            s.flush()
            histories[c.id] = []
            for _ in range(rng.randint(0, 12)):
                kind = rng.choice([*KINDS, R.EventKind("link_preview"), R.EventKind("LOGIN")])
                category = kind.category or (rng.choice(["competitor", "pricing", "case"])
                                             if kind.type == "link_click" else None)
                at = now + timedelta(hours=rng.choice([-24 * 40, -24 * 5, -30, -2, -1, 3]),
                                     seconds=rng.randint(0, 59))
                s.add(CustomerEvent(customer_id=c.id, type=kind.type, category=category, source="product",
                                    occurred_at=at))
                if kind.type != "link_preview":
                    histories[c.id].append(R.CustomerEvent(type=kind.type, occurred_at=at, category=category))
        counted = CE.condition_counts(s, conditions, list(histories), now)
    for cid, events in histories.items():
        for cond in conditions:
            assert counted[cid][cond] == R.count_events(cond, events, now), (cid, cond)


def test_batched_health_signals_are_the_one_customer_signals(rt, company):
    today = utcnow().astimezone(rt.config.tz).date()
    now = utcnow()
    with rt.db.transaction() as s:
        customers = []
        for i in range(4):
            c = Customer(name=f"健康{i}", name_key=f"健康{i}", owner_userid="zhangsan",
                         licensed_features=(None if i == 0 else 5), last_contact_at=now - timedelta(days=3 * i))
            s.add(c)
            s.flush()
            customers.append(c)
            for k in range(i * 3):
                s.add(CustomerEvent(customer_id=c.id, type="login", source="product",
                                    occurred_at=now - timedelta(days=k * 4)))
                s.add(CustomerEvent(customer_id=c.id, type="nps", source="product", data={"score": (k * 3) % 11},
                                    occurred_at=now - timedelta(days=k * 20)))
                s.add(CustomerEvent(customer_id=c.id, type="feature_used", source="product",
                                    data={"feature": f"f{k % 3}"}, occurred_at=now - timedelta(days=k * 9)))
                s.add(CustomerEvent(customer_id=c.id, type="ticket_opened", source="product",
                                    occurred_at=now - timedelta(days=k * 30)))
            if i:
                k = Contract(number=f"HK{i}", customer_id=c.id, owner_userid="zhangsan", amount=Decimal("100"))
                s.add(k)
                s.flush()
                s.add(Receivable(contract_id=k.id, seq=1, amount=Decimal("100"), outstanding=Decimal("0"),
                                 due_on=today - timedelta(days=10 * i), paid_on=today - timedelta(days=12 * i)))
    with rt.db.sessions() as s:
        customers = list(s.scalars(select(Customer).order_by(Customer.id)))
        many = CE.health_signals_many(rt, s, customers, today)
        for c in customers:
            one = health_signals(s, c, today, rt)
            assert many[c.id] == replace(one, nps_answers=one.nps_answers and sorted(  # neither orders the answers
                one.nps_answers, key=list(many[c.id].nps_answers or []).index))


@pytest.mark.parametrize("stage", ["lead", "won"])
def test_closed_or_first_stage_opportunities_follow_the_forward_only_rule(rt, company, stage):
    trial_customers(rt, 1, stage=stage)
    run_job(rt, load_jobs()["customer_events"], "s1")
    with rt.db.sessions() as s:
        assert s.scalar(select(Opportunity.stage)) == ("solution_confirmed" if stage == "lead" else "won")
