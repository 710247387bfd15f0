"""The incentive engine over the database: customer health, dual-track scores, bonuses on received
payments (and clawbacks), monthly close, new-hire protection alerts (PRODUCT.md §3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Text
from bot.outbox import enqueue
from domain import bonus as B
from domain.board import Standing
from domain.health import HealthSignals, health_score
from domain.incentives import (
    DealType,
    MonthActivity,
    SignedDeal,
    Targets,
    attainment,
    month_end,
    score_month,
    scoring_period,
)
from domain.newhire import MonthOutcome, alert_due, protected_target, regional_average_targets, tenure_month
from domain.points import PointsEntry, PointsReason
from jobs.registry import job
from storage.incentives import BonusLedgerRow, MonthlyScore, NewHireAlert, PointsLedgerRow, Target
from storage.models import Member
from storage.payments import Contract, PaymentEvent
from storage.sales import Customer, Evidence, Opportunity, StageChange, Visit
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

PROTECTED_MONTHS = 6
DEAL_TYPES = {"new": DealType.NEW, "renewal": DealType.RENEWAL, "upsell": DealType.UPSELL}


def _day_start(d: date, rt: Runtime) -> datetime:
    return datetime.combine(d, datetime.min.time(), rt.config.tz)


# ---- health ---------------------------------------------------------------------------------------

def health_signals(s: Session, customer: Customer, today: date, rt: Runtime) -> HealthSignals:
    """The six signals from product events, licences, receivables and visits (windows: NPS and tickets
    90 days, logins 28 days, features used 30 days, receivables due in the last 365 days): the stage-rule
    job's batched reading, for one customer."""
    from jobs.customer_events import health_signals_many

    return health_signals_many(rt, s, [customer], today)[customer.id]


def refresh_health(rt: Runtime, s: Session, customer: Customer, today: date) -> None:
    result = health_score(health_signals(s, customer, today, rt))
    customer.health_score = result.rounded
    customer.health_band = result.band.value if result.band else None
    customer.health_at = utcnow()


@job("health_scores", "recompute every customer's health score")
def health_scores(rt: Runtime) -> str:
    today = datetime.now(rt.config.tz).date()
    n = 0
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(Customer.id)))
    for start in range(0, len(ids), 500):
        with rt.db.transaction() as s:
            for customer in s.scalars(select(Customer).where(Customer.id.in_(ids[start:start + 500]))):
                refresh_health(rt, s, customer, today)
                n += 1
    return f"{n} customers scored"


# ---- bonuses --------------------------------------------------------------------------------------

def commission_rules(rt: Runtime) -> B.CommissionRules:
    return B.CommissionRules(default_rate=Decimal(str(rt.config.get("payments.commission_rate"))))


def consume_payment_events(rt: Runtime, s: Session) -> int:
    """Credit (or claw back) the bonus of every unconsumed payment event, once; tell the rep at once."""
    done = 0
    for ev in s.scalars(select(PaymentEvent).where(PaymentEvent.consumed_at.is_(None)).order_by(PaymentEvent.id)):
        ev.consumed_at = utcnow()
        contract = s.get(Contract, ev.contract_id)
        customer = s.get(Customer, ev.customer_id)
        if contract is None or customer is None:
            continue
        payment_id = f"alloc:{ev.allocation_id}"
        entries = [B.BonusEntry(r.payment_id, r.userid, r.amount, B.EntryKind(r.kind), r.booked_on)
                   for r in s.scalars(select(BonusLedgerRow).where(BonusLedgerRow.payment_id == payment_id))]
        deal = DEAL_TYPES.get(contract.kind, DealType.NEW)
        entry, text = B.settle_payment_event(ev.kind, B.ReceivedPayment(
            payment_id, ev.rep_userid, customer.name, ev.amount, deal, ev.received_on, contract.product_line,
            customer.health_score), entries, commission_rules(rt))
        if entry is None:
            continue
        try:
            with s.begin_nested():
                s.add(BonusLedgerRow(payment_id=entry.payment_id, userid=entry.rep, amount=entry.amount,
                                     kind=entry.kind.value, booked_on=entry.booked_on))
                s.flush()
        except IntegrityError:
            continue  # credited by a concurrent run
        enqueue(s, entry.rep, Text(text or ""))
        done += 1
    return done


@job("bonus", "credit bonuses for payment events not yet consumed")
def bonus_job(rt: Runtime) -> str:
    with rt.db.transaction() as s:
        n = consume_payment_events(rt, s)
    return f"{n} bonus entries"


def bonus_entries(s: Session, userid: str) -> list[B.BonusEntry]:
    return [B.BonusEntry(r.payment_id, r.userid, r.amount, B.EntryKind(r.kind), r.booked_on)
            for r in s.scalars(select(BonusLedgerRow).where(BonusLedgerRow.userid == userid))]


# ---- points ----------------------------------------------------------------------------------------

def points_entries(s: Session, userid: str | None = None) -> list[PointsEntry]:
    q = select(PointsLedgerRow)
    if userid is not None:
        q = q.where(PointsLedgerRow.userid == userid)
    return [PointsEntry(r.userid, r.delta, PointsReason(r.reason), r.ref, r.note) for r in s.scalars(q)]


# ---- scores ------------------------------------------------------------------------------------------

def targets_of(s: Session, userid: str, month: date) -> Targets:
    row = s.scalar(select(Target).where(Target.userid == userid, Target.month == month.strftime("%Y-%m")))
    return Targets(row.new, row.renewal, row.upsell) if row else Targets()


def activity(rt: Runtime, s: Session, userid: str, month: date, as_of: date | None = None) -> MonthActivity:
    """What the dual-track score reads for one member and month (or month to date)."""
    return month_activities(rt, s, [userid], month, as_of)[userid]


def month_activities(rt: Runtime, s: Session, userids: Sequence[str], month: date,
                     as_of: date | None = None) -> dict[str, MonthActivity]:
    """``activity`` for many members at once: three queries whatever their number, counted in the database
    (pass a few hundred members at a time: they go into IN lists). Quality visits in the period's owned
    weeks; opportunities that entered 需求诊断 in the calendar period and how many of them have a report;
    won deals closed in it."""
    period = scoring_period(month, as_of)
    users = list(dict.fromkeys(userids))
    visits: dict[str, int] = dict.fromkeys(users, 0)
    for rep, n in s.execute(select(Visit.rep_userid, func.count()).where(
            Visit.rep_userid.in_(users), Visit.quality.is_(True),
            Visit.completed_at >= _day_start(period.visits_from, rt),
            Visit.completed_at < _day_start(period.visits_to + timedelta(days=1), rt)).group_by(Visit.rep_userid)):
        visits[rep] = int(n or 0)
    start, end = _day_start(period.days_from, rt), _day_start(period.days_to + timedelta(days=1), rt)
    # per owner: opportunities that entered 需求诊断 in the period, and how many of those have a report
    entered: dict[str, tuple[int, int]] = dict.fromkeys(users, (0, 0))
    for owner, n_entered, n_reported in s.execute(
            select(Opportunity.owner_userid, func.count(StageChange.opportunity_id.distinct()),
                   func.count(Evidence.opportunity_id.distinct()))
            .select_from(StageChange)
            .join(Opportunity, Opportunity.id == StageChange.opportunity_id)
            .outerjoin(Evidence, (Evidence.opportunity_id == StageChange.opportunity_id) & (Evidence.item == "report"))
            .where(Opportunity.owner_userid.in_(users), StageChange.to_stage == "diagnosis",
                   StageChange.at >= start, StageChange.at < end)
            .group_by(Opportunity.owner_userid)):
        entered[owner] = (int(n_entered or 0), int(n_reported or 0))
    deals: dict[str, list[SignedDeal]] = {u: [] for u in users}
    for owner, kind, signed, amount, health in s.execute(
            select(Opportunity.owner_userid, Opportunity.kind, Opportunity.signed_amount, Opportunity.amount,
                   Customer.health_score)
            .join(Customer, Customer.id == Opportunity.customer_id)
            .where(Opportunity.owner_userid.in_(users), Opportunity.stage == "won",
                   Opportunity.closed_at >= start, Opportunity.closed_at < end)):
        deals[owner].append(SignedDeal(DEAL_TYPES.get(kind, DealType.NEW), signed or amount, health))
    return {u: MonthActivity(visits[u], entered[u][0], entered[u][1], tuple(deals[u])) for u in users}


def standing(rt: Runtime, s: Session, member: Member, month: date, as_of: date | None) -> Standing:
    act = activity(rt, s, member.userid, month, as_of)
    targets = targets_of(s, member.userid, month)
    period = scoring_period(month, as_of)
    points = sum(e.delta for e in points_entries(s, member.userid))
    bonus_mtd = B.month_to_date_bonus(bonus_entries(s, member.userid), as_of or month_end(month))
    return Standing(member.userid, member.name, score_month(act, targets, period), attainment(act.deals), targets,
                    points, bonus_mtd)


def team_members(s: Session, member: Member) -> list[Member]:
    """The member's team for ranking: everyone with the same manager (or the manager's reports)."""
    boss = member.manager_userid or member.userid
    return [m for m in s.scalars(select(Member).where(Member.active.is_(True)))
            if "rep" in (m.roles or []) and (m.manager_userid == boss or m.userid == member.userid)]


CLOSE_CHUNK = 2000  # reps per chunk: IN lists of this size; every chunk scans the month's stage changes once


def targets_by_member(s: Session, userids: Sequence[str], month: date) -> dict[str, Targets]:
    """``targets_of`` for many members (members without a target row get empty Targets)."""
    rows = s.scalars(select(Target).where(Target.userid.in_(userids), Target.month == month.strftime("%Y-%m")))
    found = {r.userid: Targets(r.new, r.renewal, r.upsell) for r in rows}
    return {u: found.get(u, Targets()) for u in userids}


@job("incentive_close", "close last month: store every rep's dual-track score")
def incentive_close(rt: Runtime) -> str:
    """Every active rep's score for last month (what ``standing`` scores), stored in monthly_scores.

    Set-based: reps go CLOSE_CHUNK at a time, each chunk read with a handful of queries
    (``month_activities``, ``targets_by_member``, the month's stored rows), not several queries per rep.
    """
    today = datetime.now(rt.config.tz).date()
    month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    key = month.strftime("%Y-%m")
    period = scoring_period(month, None)
    n = 0
    with rt.db.transaction() as s:
        reps = [m.userid for m in s.scalars(select(Member).where(Member.active.is_(True)).order_by(Member.userid))
                if "rep" in (m.roles or [])]
        for first in range(0, len(reps), CLOSE_CHUNK):
            chunk = reps[first:first + CLOSE_CHUNK]
            acts = month_activities(rt, s, chunk, month)
            targets = targets_by_member(s, chunk, month)
            stored = {r.userid: r for r in s.scalars(select(MonthlyScore).where(MonthlyScore.userid.in_(chunk),
                                                                                 MonthlyScore.month == key))}
            for userid in chunk:
                act = acts[userid]
                score = score_month(act, targets[userid], period).rounded()
                attained = attainment(act.deals).total
                row = stored.get(userid)
                if row is None:
                    row = MonthlyScore(userid=userid, month=key, process=score.process, attained=attained)
                    s.add(row)
                row.process, row.result, row.total, row.attained = score.process, score.result, score.total, attained
                n += 1
    return f"{key}: {n} reps scored"


# ---- new-hire protection ------------------------------------------------------------------------------

def newhire_outcomes(rt: Runtime, s: Session, member: Member, months: Iterable[date]) -> list[MonthOutcome]:
    region_targets = {}
    out = []
    for month in months:
        key = (member.region, month)
        if key not in region_targets:
            peers = [m.userid for m in s.scalars(select(Member).where(Member.region == member.region))]
            rows = s.scalars(select(Target).where(Target.userid.in_(peers), Target.month == month.strftime("%Y-%m")))
            region_targets[key] = regional_average_targets([Targets(r.new, r.renewal, r.upsell) for r in rows])
        average = region_targets[key]
        tenure = tenure_month(member.hire_date, month) if member.hire_date else 0
        if average is None or not 1 <= tenure <= PROTECTED_MONTHS:
            continue  # protection covers a new hire's first six months
        attained = attainment(activity(rt, s, member.userid, month).deals).total
        out.append(MonthOutcome(month, attained, protected_target(average.total, tenure)))
    return out


@job("newhire_check", "alert managers about new hires three months below their protected target")
def newhire_check(rt: Runtime) -> str:
    today = datetime.now(rt.config.tz).date()
    last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    months = []
    m = last
    for _ in range(6):
        months.insert(0, m)
        m = (m - timedelta(days=1)).replace(day=1)
    alerts = 0
    with rt.db.transaction() as s:
        for member in s.scalars(select(Member).where(Member.active.is_(True), Member.hire_date.is_not(None))):
            if "rep" not in (member.roles or []) or not member.manager_userid:
                continue
            history = newhire_outcomes(rt, s, member, months)
            alerted = list(s.scalars(select(NewHireAlert.streak_first).where(NewHireAlert.userid == member.userid)))
            streak = alert_due(history, alerted)
            if streak is None:
                continue
            s.add(NewHireAlert(userid=member.userid, streak_first=streak.first))
            latest = history[-1]
            enqueue(s, member.manager_userid, Text(M.NEWHIRE_ALERT.format(
                name=member.name, months=streak.months, first=streak.first.strftime("%Y-%m"),
                last=streak.last.strftime("%Y-%m"), target=f"¥{latest.protected_target:,.0f}",
                attained=f"¥{latest.attained:,.0f}")))
            alerts += 1
    return f"{alerts} alerts"
