"""The funnel heatmap's dwell sums from the database (storage.funnel_queries.stage_dwell_sums) are the floats
domain.funnel sums from the stays one by one: same cells, same counts, bit for bit, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text

from domain.funnel import dwell_sums, funnel_heatmap, heatmap_of_sums, week_bounds
from storage.funnel_queries import lz4_for_this_transaction, stage_dwell_sums, stage_intervals
from storage.sales import Customer, Opportunity, StageChange

START, END = week_bounds(date(2026, 3, 4))
REPS = ["zhangsan", "lisi", "zhaoliu"]
STAGES = ["demo", "diagnosis", "negotiation", "solution_confirmed"]  # those with an SLA
ALL_STAGES = ["lead", *STAGES, "won", "lost"]


def opportunity(s, owner: str, changes: list[tuple[str, timedelta]]) -> None:
    """An opportunity of ``owner`` that entered each stage at START + offset, in the order given."""
    c = Customer(name=f"客户{random.random()}", name_key="k", owner_userid=owner)
    s.add(c)
    s.flush()
    o = Opportunity(customer_id=c.id, owner_userid=owner, amount=Decimal("1000.00"), stage=changes[-1][0])
    s.add(o)
    s.flush()
    for stage, offset in changes:
        s.add(StageChange(opportunity_id=o.id, to_stage=stage, at=START + offset, actor=owner))
    s.flush()


def both(rt, reps: list[str], stages: list[str] = STAGES):
    with rt.db.sessions() as s:
        from_db = stage_dwell_sums(s, reps, START, stages)
        by_stay = dwell_sums(stage_intervals(s, reps, START, END, stages), reps, START, stages)
    return from_db, by_stay


def test_sums_are_added_in_the_order_of_opportunity_and_time(rt, company) -> None:
    # 0.1 + 0.2 + 0.3 days, added in that order, is 0.6000000000000001; in another order it is 0.6
    with rt.db.transaction() as s:
        for days in (0.1, 0.2, 0.3):
            opportunity(s, "zhangsan", [("diagnosis", timedelta(days=1)), ("demo", timedelta(days=1 + days))])
    from_db, by_stay = both(rt, ["zhangsan"])
    assert from_db == by_stay
    assert from_db[("zhangsan", "diagnosis")] == (0.1 + 0.2 + 0.3, 3) != (0.3 + 0.2 + 0.1, 3)


def test_the_boundaries_of_the_week(rt, company) -> None:
    us = timedelta(microseconds=1)
    with rt.db.transaction() as s:
        opportunity(s, "lisi", [("diagnosis", -timedelta(days=3)), ("demo", -us)])  # left just before: not counted
        opportunity(s, "lisi", [("diagnosis", -timedelta(days=3)), ("demo", timedelta(0))])  # left at start
        opportunity(s, "lisi", [("diagnosis", timedelta(days=7) - us)])  # entered just before the end, open
        opportunity(s, "lisi", [("negotiation", timedelta(days=1)), ("won", timedelta(days=7))])  # left at the end
        opportunity(s, "lisi", [("negotiation", timedelta(days=7))])  # entered at the end: not counted
        opportunity(s, "lisi", [("solution_confirmed", timedelta(days=2)),  # two changes at the same time
                                ("negotiation", timedelta(days=2)), ("lost", timedelta(days=3, microseconds=7))])
    from_db, by_stay = both(rt, ["lisi"])
    assert from_db == by_stay
    assert from_db[("lisi", "diagnosis")][1] == 2 and from_db[("lisi", "demo")][1] == 2
    assert from_db[("lisi", "negotiation")][1] == 2


def test_random_histories_give_the_same_floats_and_the_same_heatmap(rt, company) -> None:
    rng = random.Random(20260304)
    with rt.db.transaction() as s:
        for _ in range(120):
            at = timedelta(days=rng.uniform(-40, 9), microseconds=rng.randrange(1_000_000))
            changes = []
            for _ in range(rng.randint(1, 6)):
                changes.append((rng.choice(ALL_STAGES), at))
                if rng.random() < 0.9:  # else the next change comes at the same moment
                    at += timedelta(seconds=rng.uniform(0, 12 * 86_400), microseconds=rng.randrange(1_000_000))
            opportunity(s, rng.choice([*REPS, "wangwu"]), changes)
    from_db, by_stay = both(rt, REPS)
    assert from_db == by_stay and len(from_db) > 8
    names = {"zhangsan": "张三", "lisi": "李四", "zhaoliu": "赵六"}
    with rt.db.sessions() as s:
        stays = stage_intervals(s, REPS, START, END, STAGES)
    assert heatmap_of_sums(from_db, REPS, START, rep_names=names) == funnel_heatmap(stays, REPS, START, rep_names=names)
    # a stage given custom SLA days is summed like the others; reps or stages not asked for are not
    from_db, by_stay = both(rt, ["lisi"], ["demo", "lead"])
    assert from_db == by_stay and {stage for _, stage in from_db} <= {"demo", "lead"}
    assert both(rt, []) == ({}, {})


def test_lz4_for_the_images_lasts_one_transaction(rt) -> None:
    with rt.db.transaction() as s:
        lz4_for_this_transaction(s)  # nothing on SQLite
        if rt.db.is_postgres:
            methods = s.scalar(text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"))
            expected = "lz4" if "lz4" in methods else "pglz"
            assert s.scalar(text("SHOW default_toast_compression")) == expected
    if rt.db.is_postgres:
        with rt.db.sessions() as s:
            assert s.scalar(text("SHOW default_toast_compression")) == "pglz"


def test_the_weekly_job_queues_every_team_batch_by_batch_in_order(rt, company, monkeypatch) -> None:
    import jobs.funnel_heatmap as FH
    from domain.funnel import previous_week
    from jobs.registry import load_jobs
    from jobs.scheduler import run_job
    from storage.models import Member, OutboxMessage

    monkeypatch.setattr(FH, "BATCH", 2)
    with rt.db.transaction() as s:
        for i in range(4):
            s.add(Member(userid=f"boss{i}", name=f"主管{i}", roles=["manager"]))
            s.flush()
            s.add(Member(userid=f"rep{i}", name=f"代表{i}", roles=["rep"], manager_userid=f"boss{i}"))
            s.flush()
            opportunity(s, f"rep{i}", [("demo", -timedelta(days=20 + i))])
    assert run_job(rt, load_jobs()["funnel_heatmap"], "w1") == "heatmaps sent to 5 managers"
    day = previous_week(datetime.now(rt.config.tz), rt.config.tz)[0].date().isoformat()
    with rt.db.sessions() as s:
        rows = [(m.recipient, m.msgtype, m.dedup_key) for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    pairs = [rows[i:i + 2] for i in range(0, len(rows), 2)]  # each manager's image, then its text
    assert [[(u, "image", f"funnel:{u}:{day}"), (u, "text", f"funnel:{u}:{day}:text")] for (u, _, _), _ in pairs] == pairs
    assert [u for (u, _, _), _ in pairs] == ["boss0", "boss1", "boss2", "boss3", "wangwu"]  # by userid, every week
    # on PostgreSQL each batch's teams are summed by a query of their own: every manager still gets the chart
    # and the text of their own team, as one manager's heatmap alone gives them
    start = previous_week(datetime.now(rt.config.tz), rt.config.tz)[0]
    with rt.db.sessions() as s:
        queued = {(m.recipient, m.msgtype): m for m in s.scalars(select(OutboxMessage))}
        for boss in ["boss0", "boss1", "boss2", "boss3", "wangwu"]:
            heatmap, png = FH.team_heatmap(s, boss, start)
            assert queued[(boss, "text")].body["content"] == FH.funnel_text(heatmap)
            assert queued[(boss, "image")].media == png and queued[(boss, "image")].body == {"filename": "funnel.png"}
    assert run_job(rt, load_jobs()["funnel_heatmap"], "w2") == "heatmaps sent to 0 managers"
