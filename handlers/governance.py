"""查重 / 合并 (customer master data) and 体检 (the 12-item sales-process health check)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot import messages as M
from bot.context import Ctx
from bot.out import Image
from bot.router import command
from domain.healthcheck import HealthCheckInputs, health_check, render_health_check
from domain.healthcheck_chart import render_radar_png
from domain.master_data import (
    CustomerIdentity,
    CustomerRecord,
    MergeRefused,
    duplicate_candidates,
    plan_merge,
    record_count_mismatches,
    render_duplicates,
    render_merge_plan,
)
from domain.names import normalise_company_name
from domain.stress_test import ExpectedPayment, run_stress_test
from handlers.common import find_customers, member_name, scope, sla_days
from handlers.payments import domain_promise
from storage.incentives import CollaborationRequest
from storage.models import Base, Member, OutboxMessage
from storage.payments import Contract, ForecastSnapshotRow, Promise, Receivable
from storage.sales import Customer, Opportunity, StageChange, Visit

ADMIN = ("admin",)
FIELDS = ("name", "credit_code", "phone", "owner", "industry", "region")
PERIOD_DAYS = 28


# ---- 查重 / 合并 -------------------------------------------------------------------------------

@command("查重", roles=ADMIN, example="查重", summary="列出疑似重复的客户")
def duplicates(ctx: Ctx, args: str) -> None:
    ids = [CustomerIdentity(c.id, c.name, c.credit_code) for c in ctx.session.scalars(select(Customer))]
    pairs = duplicate_candidates(ids)
    text = render_duplicates(pairs)
    ctx.reply(text + ("\n" + M.MERGE_HINT if pairs else ""))


def _one(ctx: Ctx, ref: str) -> Customer | None:
    found = find_customers(ctx.session, ref)
    exact = [c for c in found if c.name == ref or f"#{c.id}" == ref]
    found = exact or found
    if len(found) != 1:
        ctx.reply(M.MERGE_WHICH.format(ref=ref, n=len(found)))
        return None
    return found[0]


def _record(s: Session, c: Customer) -> CustomerRecord:
    source = f"{member_name(s, c.created_by or c.owner_userid)} {c.created_at:%Y-%m-%d} 录入"
    values = {"name": c.name, "credit_code": c.credit_code, "phone": c.phone, "industry": c.industry,
              "region": c.region, "owner": c.owner_userid}
    return CustomerRecord(c.id, {k: (v, source) for k, v in values.items() if v}, c.created_at)


def linked_tables() -> list[tuple[str, object]]:
    """Every table with a customer_id column: what a merge moves."""
    return [(t.name, t.c.customer_id) for t in Base.metadata.sorted_tables
            if "customer_id" in t.c and t.name != "customers"]


def _counts(s: Session, customer_id: int) -> dict[str, int]:
    return {name: int(s.scalar(select(func.count()).where(col == customer_id)) or 0)  # type: ignore[arg-type]
            for name, col in linked_tables()}


@command("合并", roles=ADMIN, example="合并 #12 #15 预览", summary="合并两个重复客户（加「预览」只看不写）")
def merge(ctx: Ctx, args: str) -> None:
    words = args.split()
    preview = bool(words) and words[-1] == "预览"
    if preview:
        words = words[:-1]
    if len(words) != 2:
        ctx.reply(M.MERGE_USAGE)
        return
    a = _one(ctx, words[0])
    b = _one(ctx, words[1]) if a is not None else None
    if a is None or b is None:
        return
    try:
        plan = plan_merge(_record(ctx.session, a), _record(ctx.session, b))
    except MergeRefused as exc:
        ctx.reply(str(exc))
        return
    kept = ctx.session.get(Customer, plan.kept_id)
    removed = ctx.session.get(Customer, plan.removed_id)
    assert kept is not None and removed is not None
    before_kept, before_removed = _counts(ctx.session, kept.id), _counts(ctx.session, removed.id)
    moving = "、".join(f"{t} {n}" for t, n in before_removed.items() if n) or "无"
    text = render_merge_plan(plan) + "\n" + M.MERGE_MOVES.format(records=moving)
    if preview:
        ctx.reply(M.MERGE_PREVIEW + "\n" + text)
        return
    for name, col in linked_tables():
        table = Base.metadata.tables[name]
        ctx.session.execute(update(table).where(col == removed.id).values(customer_id=kept.id))  # type: ignore[arg-type]
    for field in plan.filled:
        value = plan.merged[field][0]
        if field == "owner":
            kept.owner_userid = value
        elif field == "credit_code":
            removed.credit_code = None
            ctx.session.flush()
            kept.credit_code = value
        elif hasattr(kept, field):
            setattr(kept, field, value)
    kept.name_key = normalise_company_name(kept.name)
    ctx.session.flush()
    after = _counts(ctx.session, kept.id)
    mismatches = record_count_mismatches(before_kept, before_removed, after)
    if mismatches:
        raise RuntimeError(f"merge would lose records: {mismatches}")  # rolls back; the admin gets an apology
    ctx.audit("merge_customers", f"customer:{kept.id}", removed=removed.id, removed_name=removed.name,
              conflicts=[{"field": c.field, "kept": c.kept_value, "kept_source": c.kept_source,
                          "other": c.other_value, "other_source": c.other_source} for c in plan.conflicts],
              moved={t: n for t, n in before_removed.items() if n})
    ctx.session.delete(removed)
    ctx.reply(M.MERGE_DONE + "\n" + text)


# ---- 体检 ---------------------------------------------------------------------------------------

def _inputs(ctx: Ctx, reps: set[str] | None, today: date) -> HealthCheckInputs:
    s, tz = ctx.session, ctx.rt.config.tz
    start = datetime.combine(today - timedelta(days=PERIOD_DAYS), time.min, tz)

    def owned(q, column):  # type: ignore[no-untyped-def]
        return q if reps is None else q.where(column.in_(reps))

    count = lambda q: int(s.scalar(q) or 0)  # noqa: E731
    visits = owned(select(func.count()).select_from(Visit).where(Visit.created_at >= start), Visit.rep_userid)
    quality = owned(select(func.count()).select_from(Visit).where(Visit.created_at >= start,
                                                                  Visit.quality.is_(True)), Visit.rep_userid)
    active_reps = len(reps) if reps is not None else count(select(func.count()).select_from(Member))
    # stays in a stage that ended in the period, against the stage's SLA
    slas = sla_days(s)
    changes = s.execute(owned(select(StageChange.opportunity_id, StageChange.to_stage, StageChange.at)
                              .join(Opportunity, Opportunity.id == StageChange.opportunity_id),
                              Opportunity.owner_userid).order_by(StageChange.opportunity_id, StageChange.at)).all()
    intervals = within = 0
    for (opp, stage, entered), nxt in zip(changes, changes[1:], strict=False):
        if nxt[0] == opp and nxt[2] >= start and stage in slas:
            intervals += 1
            within += (nxt[2] - entered) <= timedelta(days=slas[stage])
    won = count(owned(select(func.count()).select_from(Opportunity).where(Opportunity.stage == "won",
                                                                          Opportunity.closed_at >= start),
                      Opportunity.owner_userid))
    lost = count(owned(select(func.count()).select_from(Opportunity).where(Opportunity.stage == "lost",
                                                                           Opportunity.closed_at >= start),
                       Opportunity.owner_userid))
    promises = list(s.scalars(owned(select(Promise).where(Promise.created_at >= start), Promise.rep_userid)))
    c_grade = sum(1 for p in promises if domain_promise(p).grade.value == "C")
    snapshot = s.scalar(select(ForecastSnapshotRow).where(ForecastSnapshotRow.accuracy_reported.is_(True))
                        .order_by(ForecastSnapshotRow.month.desc()))
    accuracy = None
    if snapshot is not None:
        from jobs.forecast_snapshot import accuracy_of

        accuracy = Decimal(accuracy_of(s, snapshot)[2].rstrip("%")) / 100
    open_promises = [p for p in s.scalars(owned(select(Promise).where(Promise.kept.is_(None)), Promise.rep_userid))]
    concentration = None
    if open_promises:
        report = run_stress_test([ExpectedPayment.from_promise(domain_promise(p), rep_name=p.rep_userid,
                                                               customer_below_threshold=False)
                                  for p in open_promises], today)
        total = sum((c.total for c in report.concentrations), Decimal(0))
        at_end = sum((c.month_end_amount for c in report.concentrations), Decimal(0))
        concentration = at_end / total if total else None
    receivables = s.execute(owned(select(Receivable.outstanding, Receivable.due_on, Receivable.collectible_on)
                                  .join(Contract, Contract.id == Receivable.contract_id), Contract.owner_userid)).all()
    outstanding = sum((r[0] for r in receivables), Decimal(0))
    overdue = sum((r[0] for r in receivables if (r[2] or r[1]) < today), Decimal(0))
    collab = list(s.scalars(owned(select(CollaborationRequest).where(CollaborationRequest.created_at >= start),
                                  CollaborationRequest.rep_userid)))
    customers = list(s.scalars(owned(select(Customer), Customer.owner_userid)))
    active_ids = set(s.scalars(select(Opportunity.customer_id).where(Opportunity.stage.not_in(("won", "lost")))))
    active = [c for c in customers if c.id in active_ids]
    pairs = duplicate_candidates([CustomerIdentity(c.id, c.name, c.credit_code) for c in customers])
    in_pairs = {p.first.id for p in pairs} | {p.second.id for p in pairs}
    followups = [r for r in s.scalars(owned(select(OutboxMessage).where(OutboxMessage.dedup_key.like("followup:%"),
                                                                         OutboxMessage.created_at >= start),
                                            OutboxMessage.recipient))]
    on_time = 0
    for row in followups:
        customer_id = int((row.dedup_key or "followup:0").split(":")[1] or 0)
        contact = s.scalar(select(Visit.id).where(Visit.customer_id == customer_id, Visit.created_at >= row.created_at,
                                                  Visit.created_at <= row.created_at + timedelta(hours=48)).limit(1))
        on_time += contact is not None
    return HealthCheckInputs(
        visits_logged=count(visits), visits_complete=count(quality), quality_visits=count(quality),
        active_reps=active_reps or None, weeks=Decimal(PERIOD_DAYS) / 7,
        stage_intervals=intervals, stage_intervals_within_sla=within,
        opportunities_won=won, opportunities_lost=lost, promises=len(promises), c_grade_promises=c_grade,
        forecast_accuracy=accuracy, month_end_concentration=concentration,
        receivables_outstanding=outstanding, receivables_overdue=overdue,
        collaboration_requests=len(collab), collaboration_confirmed=sum(1 for r in collab if r.status == "confirmed"),
        active_customers=len(active), customers_with_health_score=sum(1 for c in active if c.health_score is not None),
        customers=len(customers), customers_in_duplicate_pairs=len(in_pairs),
        followup_reminders=len(followups), followups_on_time=on_time)


@command("体检", roles=("manager",), example="体检", summary="销售过程健康度测评（12 项，雷达图）")
def health_check_command(ctx: Ctx, args: str) -> None:
    owners = scope(ctx)
    reps = None if owners is None else {u for u in owners if u != ctx.userid} or owners
    check = health_check(_inputs(ctx, reps, ctx.now.date()))
    ctx.reply(Image(render_radar_png(check, title=M.HEALTH_CHECK_TITLE.format(name=ctx.member.name)), "health.png"))
    ctx.reply(render_health_check(check))

