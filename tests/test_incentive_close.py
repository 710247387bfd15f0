"""The month close (incentive_close) scores every rep with a few queries per few hundred reps: the stored
figures of a known month, worked by hand, and the same figures whether reps are read one at a time or
together (nothing of one rep leaks into another's)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from jobs import incentives
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.incentives import MonthlyScore, Target
from storage.models import Member
from storage.pipeline import record_move
from storage.sales import Customer, Evidence, Opportunity, Visit
from tests.harness import Clock

SH = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00").replace(tzinfo=SH)


def seed_november(rt) -> None:  # noqa: ANN001
    """张三's November 2026 (owned weeks 11-02 … 11-29, four of them), with what must not count around it."""
    with rt.db.transaction() as s:
        cust = {}
        for key, owner, health in (("a", "zhangsan", None), ("r", "zhangsan", Decimal("59.994")),
                                   ("u", "zhangsan", None), ("l", "lisi", Decimal("50"))):
            c = Customer(name=f"收盘{key}有限公司", name_key=f"收盘{key}", owner_userid=owner, health_score=health)
            s.add(c)
            s.flush()
            cust[key] = c.id

        def visit(day: str, quality: bool = True, done: bool = True, rep: str = "zhangsan", hour: int = 10) -> None:
            s.add(Visit(customer_id=cust["a"], rep_userid=rep, quality=quality, status="done" if done else "draft",
                        created_at=at(day, hour), completed_at=at(day, hour) if done else None))

        for i in range(20):  # 20 quality visits in the owned weeks: 20 / 4 weeks / 8 = 0.625
            visit((date(2026, 11, 2) + timedelta(days=i)).isoformat())
        for day in ("2026-11-01", "2026-11-01", "2026-11-01", "2026-11-30", "2026-11-30"):
            visit(day)  # Sunday 11-01 is October's week, Monday 11-30 December's
        visit("2026-11-29", hour=23)  # the last owned day, late evening in Shanghai: counts (21)
        for _ in range(5):
            visit("2026-11-10", quality=False)
        visit("2026-11-11", done=False)
        for _ in range(3):
            visit("2026-11-12", rep="lisi")

        def opp(owner: str, customer: str, kind: str = "new", amount: str = "10000", signed: str | None = None,
                stage: str = "lead") -> Opportunity:
            o = Opportunity(customer_id=cust[customer], owner_userid=owner, amount=Decimal(amount), kind=kind,
                            stage=stage, stage_entered_at=at("2026-09-01"),
                            signed_amount=Decimal(signed) if signed is not None else None)
            s.add(o)
            s.flush()
            return o

        # 需求诊断: four of 张三's opportunities entered in November (one twice), one with a report
        d1, d2, d3, d4 = opp("zhangsan", "a"), opp("zhangsan", "a"), opp("zhangsan", "a"), opp("zhangsan", "a")
        record_move(s, d1, "diagnosis", at("2026-11-03"), actor="zhangsan")
        record_move(s, d2, "diagnosis", at("2026-11-04"), actor="zhangsan")
        record_move(s, d2, "demo", at("2026-11-05"), actor="zhangsan")
        record_move(s, d2, "diagnosis", at("2026-11-06"), actor="zhangsan")
        record_move(s, d3, "diagnosis", at("2026-11-30", 23, 59), actor="zhangsan")
        record_move(s, d4, "diagnosis", at("2026-11-25"), actor="zhangsan")
        s.add(Evidence(opportunity_id=d1.id, item="report", text="诊断报告", by_userid="zhangsan"))
        s.add(Evidence(opportunity_id=d1.id, item="report", text="补充报告", by_userid="zhangsan"))
        s.add(Evidence(opportunity_id=d2.id, item="budget", text="预算已明确", by_userid="zhangsan"))
        early = opp("zhangsan", "a")  # entered on October's last evening: not November's
        record_move(s, early, "diagnosis", at("2026-10-31", 23, 30), actor="zhangsan")
        s.add(Evidence(opportunity_id=early.id, item="report", text="诊断报告", by_userid="zhangsan"))
        theirs = opp("lisi", "l")  # 李四's, with a report
        record_move(s, theirs, "diagnosis", at("2026-11-10"), actor="lisi")
        s.add(Evidence(opportunity_id=theirs.id, item="report", text="诊断报告", by_userid="lisi"))

        # won deals: new 50,000 (signed under the amount); a renewal signed 0 → its amount 30,000 × 0.7
        # (health 59.994 shows 59.99); upsell 10,000 (no health); outside the month or lost: nothing
        record_move(s, opp("zhangsan", "a", "new", "60000", "50000", "negotiation"), "won", at("2026-11-20"))
        record_move(s, opp("zhangsan", "r", "renewal", "30000", "0", "negotiation"), "won", at("2026-11-21"))
        record_move(s, opp("zhangsan", "u", "upsell", "10000", None, "negotiation"), "won", at("2026-11-30", 23))
        record_move(s, opp("zhangsan", "a", "new", "99000", "99000", "negotiation"), "won", at("2026-12-01", 0, 30))
        record_move(s, opp("zhangsan", "a", "new", "77000", "77000", "negotiation"), "lost", at("2026-11-15"))
        record_move(s, opp("lisi", "l", "renewal", "40000", "40000", "negotiation"), "won", at("2026-11-22"))

        s.add(Target(userid="zhangsan", month="2026-11", new=Decimal(100000), renewal=Decimal(50000),
                     upsell=Decimal(50000), set_by="admin"))
        s.add(Target(userid="zhangsan", month="2026-10", new=Decimal(1), renewal=Decimal(1), upsell=Decimal(1),
                     set_by="admin"))
        s.add(Target(userid="lisi", month="2026-11", new=Decimal(0), renewal=Decimal(100000), upsell=Decimal(0),
                     set_by="admin"))
        # a stale row from an earlier close is updated, not duplicated
        s.add(MonthlyScore(userid="lisi", month="2026-11", process=Decimal(1), result=Decimal(1), total=Decimal(1),
                           attained=Decimal(1)))
        s.add(Member(userid="gone", name="离职", roles=["rep"], manager_userid="wangwu", region="华东", active=False))


def close(rt, monkeypatch) -> dict[str, MonthlyScore]:  # noqa: ANN001
    Clock(monkeypatch, rt).set("2026-12-01")
    assert run_job(rt, load_jobs()["incentive_close"], f"close-{uuid.uuid4().hex}") == "2026-11: 3 reps scored"
    with rt.db.sessions() as s:
        rows = list(s.scalars(select(MonthlyScore).where(MonthlyScore.month == "2026-11")))
    assert len(rows) == len({r.userid for r in rows})
    return {r.userid: r for r in rows}


def test_close_stores_the_hand_worked_november(rt, company, monkeypatch):
    seed_november(rt)
    rows = close(rt, monkeypatch)
    assert set(rows) == {"zhangsan", "lisi", "zhaoliu"}  # active reps only
    z = rows["zhangsan"]
    # process: 50 × min(1, 21 / 4 / 8) + 50 × 1/4 = 32.8125 + 12.5 = 45.3125
    # result: (0.5 × 50,000 + 0.3 × 21,000 + 0.2 × 10,000) / 75,000 × 100 = 44.4
    # total: 0.6 × 45.3125 + 0.4 × 44.4 = 27.1875 + 17.76 = 44.9475 → 44.95
    assert (z.process, z.result, z.total, z.attained) == (Decimal("45.31"), Decimal("44.40"), Decimal("44.95"),
                                                          Decimal("81000.00"))
    li = rows["lisi"]  # 3 quality visits, 1 entered with a report, a 40,000 renewal at health 50 (× 0.7)
    # process 50 × 3/32 + 50 × 1 = 54.6875; result 0.3 × 28,000 / 30,000 × 100 = 28; total 32.8125 + 11.2
    assert (li.process, li.result, li.total, li.attained) == (Decimal("54.69"), Decimal("28.00"), Decimal("44.01"),
                                                              Decimal("28000.00"))
    zl = rows["zhaoliu"]  # nothing, no target: scored 0, no result
    assert (zl.process, zl.result, zl.total, zl.attained) == (Decimal("0.00"), None, None, Decimal("0.00"))


def test_reps_read_together_score_as_read_one_at_a_time(rt, company, monkeypatch):
    seed_november(rt)
    month = date(2026, 11, 1)
    reps = ["zhangsan", "lisi", "zhaoliu", "nobody"]
    with rt.db.sessions() as s:
        together = incentives.month_activities(rt, s, reps, month)
        alone = {u: incentives.month_activities(rt, s, [u], month)[u] for u in reps}
        to_date = incentives.month_activities(rt, s, reps, month, date(2026, 11, 8))
    assert together == alone
    assert (together["zhangsan"].quality_visits, together["zhangsan"].diagnosis_entered,
            together["zhangsan"].diagnosis_reports, len(together["zhangsan"].deals)) == (21, 4, 1, 3)
    assert (together["lisi"].quality_visits, together["lisi"].diagnosis_entered,
            together["lisi"].diagnosis_reports, len(together["lisi"].deals)) == (3, 1, 1, 1)
    assert to_date["zhangsan"].quality_visits == 7 and to_date["zhangsan"].diagnosis_entered == 2
    assert together["nobody"] == incentives.MonthActivity(0, 0, 0, ())
    # chunks of one rep give the same stored figures as one chunk of all
    first = {u: (r.process, r.result, r.total, r.attained) for u, r in close(rt, monkeypatch).items()}
    monkeypatch.setattr(incentives, "CLOSE_CHUNK", 1)
    again = {u: (r.process, r.result, r.total, r.attained) for u, r in close(rt, monkeypatch).items()}
    assert first == again
