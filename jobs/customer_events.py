"""What a customer event sets off: follow-up reminders to the owner and automatic stage upgrades.

Clicks and product events are stored first (the tracked-link redirect and the webhook answer at
once); ``process_event`` then runs in the background, and the ``customer_events`` job catches any
event left unprocessed (a crash, a restart) and re-evaluates the upgrade rules periodically.
Each reminder is sent at most once per customer, item and day (outbox dedup key); each rule move at
most once per opportunity, rule and target (unique rule_firings row).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Card, Text, button_card
from bot.outbox import enqueue
from domain import rules as R
from domain.followup import click_reminder, product_event_reminder
from domain.stages import is_closed, stage_name
from jobs.registry import job
from storage.behaviour import CustomerEvent, LinkItem, RuleFiring, UpgradeRule
from storage.models import Member
from storage.pipeline import record_move
from storage.sales import Customer, Opportunity
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

COUNTED = ("link_preview",)  # event types that never count in rules


def ensure_default_rule(s: Session) -> None:
    """The built-in rule exists until an admin deletes it (then it stays deleted)."""
    if s.scalar(select(UpgradeRule.id).where(UpgradeRule.builtin == "default")) is not None:
        return
    rule = R.default_rule()
    try:
        with s.begin_nested():
            s.add(UpgradeRule(text=R.rule_text(rule), target=rule.target, created_by="system", builtin="default"))
            s.flush()
    except IntegrityError:
        pass  # a concurrent first use seeded it


def active_rules(s: Session) -> list[tuple[UpgradeRule, R.Rule]]:
    ensure_default_rule(s)
    out = []
    for row in s.scalars(select(UpgradeRule).where(UpgradeRule.active.is_(True)).order_by(UpgradeRule.id)):
        try:
            out.append((row, R.parse_rule(row.text)))
        except R.RuleError:
            log.error("stored rule no longer parses", extra={"rule_id": row.id})
    return out


def process_event(rt: Runtime, event_id: int) -> None:
    """Remind and upgrade for one stored event; does nothing when it was already processed."""
    with rt.db.transaction() as s:
        ev = s.scalar(select(CustomerEvent).where(CustomerEvent.id == event_id).with_for_update())
        if ev is None or ev.processed_at is not None:
            return
        ev.processed_at = utcnow()
        customer = s.get(Customer, ev.customer_id)
        if customer is None:
            return
        _remind(rt, s, customer, ev)
        evaluate_customer(rt, s, customer)
        if ev.source == "product":
            from jobs.incentives import refresh_health

            licensed = (ev.data or {}).get("licensed_features")
            if isinstance(licensed, int) and not isinstance(licensed, bool) and licensed > 0:
                customer.licensed_features = licensed
            refresh_health(rt, s, customer, utcnow().astimezone(rt.config.tz).date())


def _remind(rt: Runtime, s: Session, customer: Customer, ev: CustomerEvent) -> None:
    tz = rt.config.tz
    reminder = None
    if ev.type == "link_click" and ev.item_id is not None:
        item = s.get(LinkItem, ev.item_id)
        if item is not None:
            reminder = click_reminder(customer_id=str(customer.id), customer_name=customer.name,
                                      item_id=str(item.id), item_name=item.name, category=ev.category,
                                      clicked_at=ev.occurred_at, tz=tz)
    elif ev.source == "product":
        reminder = product_event_reminder(customer_id=str(customer.id), customer_name=customer.name,
                                          event_type=ev.type, data=ev.data, occurred_at=ev.occurred_at, tz=tz)
    if reminder is not None:
        enqueue(s, customer.owner_userid, Text(reminder.message), dedup_key=reminder.dedup_key)


def evaluate_customer(rt: Runtime, s: Session, customer: Customer) -> int:
    """Apply the upgrade rules to the customer's open opportunities; returns how many moved."""
    opps = [o for o in s.scalars(select(Opportunity).where(Opportunity.customer_id == customer.id))
            if not is_closed(o.stage)]
    if not opps:
        return 0
    rules = active_rules(s)
    events = [R.CustomerEvent(type=t, occurred_at=at, category=c) for t, at, c in s.execute(
        select(CustomerEvent.type, CustomerEvent.occurred_at, CustomerEvent.category)
        .where(CustomerEvent.customer_id == customer.id, CustomerEvent.type.not_in(COUNTED)))]
    now = utcnow()
    moved = 0
    for opp in opps:
        fired = {(f.rule_id, f.to_stage) for f in s.scalars(select(RuleFiring)
                                                             .where(RuleFiring.opportunity_id == opp.id))}
        candidates = [(row, rule) for row, rule in rules if (row.id, rule.target) not in fired]
        chosen = R.select_upgrade([rule for _, rule in candidates], events, now, current=opp.stage,
                                  frozen=opp.frozen)
        if chosen is None:
            continue
        row = next(r for r, rule in candidates if rule is chosen)
        if _fire(rt, s, customer, opp, row, chosen):
            moved += 1
    return moved


def _fire(rt: Runtime, s: Session, customer: Customer, opp: Opportunity, row: UpgradeRule, rule: R.Rule) -> bool:
    from_stage = opp.stage
    try:
        with s.begin_nested():
            s.add(RuleFiring(opportunity_id=opp.id, rule_id=row.id, to_stage=rule.target, from_stage=from_stage))
            s.flush()
    except IntegrityError:
        return False  # another process made this move already
    record_move(s, opp, rule.target, utcnow(), rule=row.text, reason="客户行为触发自动跃迁")
    owner = s.scalar(select(Member).where(Member.userid == opp.owner_userid))
    text = M.UPGRADE_OWNER.format(customer=customer.name, id=opp.id, from_stage=stage_name(from_stage),
                                  to_stage=stage_name(rule.target), rule=row.text)
    enqueue(s, opp.owner_userid, Text(text))
    if owner is not None and owner.manager_userid:
        card = button_card(M.UPGRADE_CARD_TITLE, M.UPGRADE_CARD_DESC.format(customer=customer.name,
                                                                             owner=owner.name),
                           [("知道了", "ack", 1), ("退回原阶段", "revert", 2)],
                           rows=[("商机", f"#{opp.id} {customer.name}"),
                                 ("阶段", f"{stage_name(from_stage)} → {stage_name(rule.target)}"),
                                 ("规则", row.text[:60])])
        enqueue(s, owner.manager_userid, Card("stage_upgrade", card, {"opportunity_id": opp.id,
                                                                       "from_stage": from_stage,
                                                                       "to_stage": rule.target}))
    return True


@job("customer_events", "process customer events left unprocessed and re-evaluate upgrade rules")
def customer_events_job(rt: Runtime) -> str:
    with rt.db.sessions() as s:
        pending = list(s.scalars(select(CustomerEvent.id).where(CustomerEvent.processed_at.is_(None))
                                 .order_by(CustomerEvent.id).limit(10000)))
    for event_id in pending:
        process_event(rt, event_id)
    # rules can also become true with time (windows) or after an admin adds one: re-check customers
    # with recent events and open opportunities
    since = utcnow() - timedelta(days=90)
    with rt.db.sessions() as s:
        customer_ids = list(s.scalars(
            select(CustomerEvent.customer_id).where(CustomerEvent.occurred_at >= since).distinct()
            .order_by(CustomerEvent.customer_id)))
    moved = evaluate_customers(rt, customer_ids)
    return f"{len(pending)} events processed, {moved} opportunities upgraded"


EVALUATE_CHUNK = 500


def evaluate_customers(rt: Runtime, customer_ids: list[int]) -> int:
    """``evaluate_customer`` for many customers, loaded set-based: a chunk of customers at a time, one
    query each for their open opportunities, their events and the rules' earlier firings (issue 9: the job
    re-checks every customer with a recent event every few minutes). Same decisions, same ``_fire``."""
    moved = 0
    for start in range(0, len(customer_ids), EVALUATE_CHUNK):
        chunk = customer_ids[start:start + EVALUATE_CHUNK]
        with rt.db.transaction() as s:
            rules = active_rules(s)
            if not rules:
                return moved
            opps = [o for o in s.scalars(select(Opportunity).where(Opportunity.customer_id.in_(chunk))
                                         .order_by(Opportunity.id))
                    if not is_closed(o.stage) and not o.frozen
                    and any(R.decide_upgrade(o.stage, rule.target, frozen=False).move for _, rule in rules)]
            if not opps:
                continue
            events: dict[int, list[R.CustomerEvent]] = {}
            for cid, t, at, c in s.execute(
                    select(CustomerEvent.customer_id, CustomerEvent.type, CustomerEvent.occurred_at,
                           CustomerEvent.category)
                    .where(CustomerEvent.customer_id.in_({o.customer_id for o in opps}),
                           CustomerEvent.type.not_in(COUNTED))):
                events.setdefault(cid, []).append(R.CustomerEvent(type=t, occurred_at=at, category=c))
            fired: dict[int, set[tuple[int, str]]] = {}
            for oid, rule_id, to_stage in s.execute(
                    select(RuleFiring.opportunity_id, RuleFiring.rule_id, RuleFiring.to_stage)
                    .where(RuleFiring.opportunity_id.in_([o.id for o in opps]))):
                fired.setdefault(oid, set()).add((rule_id, to_stage))
            now = utcnow()
            for opp in opps:
                candidates = [(row, rule) for row, rule in rules
                              if (row.id, rule.target) not in fired.get(opp.id, set())]
                chosen = R.select_upgrade([rule for _, rule in candidates], events.get(opp.customer_id, []), now,
                                          current=opp.stage, frozen=opp.frozen)
                if chosen is None:
                    continue
                row = next(r for r, rule in candidates if rule is chosen)
                customer = s.get(Customer, opp.customer_id)
                if customer is not None and _fire(rt, s, customer, opp, row, chosen):
                    moved += 1
    return moved
