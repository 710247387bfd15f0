"""Credit alerts (PRODUCT.md §2.3): record ratings; when a customer falls below the threshold — only on
the crossing — freeze its unsigned opportunities, send the risk officer a card, tell the owners."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Card, Text, button_card
from bot.outbox import enqueue
from domain.credit import RatingError, crossed_below, parse_rating
from domain.stages import is_closed
from integrations.credit import CreditError, fetch_rating
from jobs.registry import job
from storage.models import Member
from storage.payments import CreditRating
from storage.sales import Customer, Opportunity
from storage.settings import tunable

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def latest_rating(s: Session, customer_id: int) -> str | None:
    return s.scalar(select(CreditRating.rating).where(CreditRating.customer_id == customer_id)
                    .order_by(CreditRating.rated_on.desc(), CreditRating.id.desc()).limit(1))


def record_rating(rt: Runtime, s: Session, customer: Customer, rating: str, *, agency: str, scale: str,
                  rated_on: date, source: str, by: str | None) -> int:
    """Store a rating (when it changed) and freeze on a fall below the threshold; returns opportunities frozen."""
    rating = parse_rating(rating)
    previous = latest_rating(s, customer.id)
    if previous == rating:
        return 0
    s.add(CreditRating(customer_id=customer.id, rating=rating, agency=agency, scale=scale, rated_on=rated_on,
                       source=source, entered_by=by))
    threshold = str(tunable(s, rt.config, "payments.credit_threshold"))
    if not crossed_below(previous, rating, threshold):
        return 0
    return freeze_customer(s, customer, previous, rating, threshold)


def freeze_customer(s: Session, customer: Customer, previous: str | None, rating: str, threshold: str) -> int:
    reason = M.FREEZE_REASON.format(previous=previous or "无", rating=rating, threshold=threshold)
    frozen = []
    for opp in s.scalars(select(Opportunity).where(Opportunity.customer_id == customer.id)):
        if is_closed(opp.stage) or opp.frozen:
            continue  # signed (won) or lost deals are not frozen
        opp.frozen, opp.frozen_reason = True, reason
        frozen.append(opp)
    if not frozen:
        return 0
    owners = sorted({o.owner_userid for o in frozen})
    for owner in owners:
        enqueue(s, owner, Text(M.FREEZE_OWNER.format(customer=customer.name, reason=reason,
                                                    n=sum(1 for o in frozen if o.owner_userid == owner))))
    card = button_card(M.FREEZE_CARD_TITLE, M.FREEZE_CARD_DESC.format(customer=customer.name, rating=rating),
                       [("维持冻结", "keep", 2), ("解冻", "unfreeze", 1)],
                       rows=[("评级变化", f"{previous or '无'} → {rating}"), ("冻结商机", f"{len(frozen)} 个")])
    for m in s.scalars(select(Member).where(Member.active.is_(True))):
        if "risk" in (m.roles or []):
            enqueue(s, m.userid, Card("credit_freeze", card, {"customer_id": customer.id,
                                                               "opportunity_ids": [o.id for o in frozen]}))
    return len(frozen)


@job("credit_check", "ask the credit provider for each active customer's rating; freeze on a fall")
def credit_check(rt: Runtime) -> str:
    settings = rt.config.section("integrations.credit")
    if not settings.get("enabled") or not settings.get("base_url"):
        return "credit provider not configured"
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(Opportunity.customer_id).where(Opportunity.stage.not_in(("won", "lost")))
                             .distinct()))
    checked = frozen = failed = 0
    for cid in ids:
        with rt.db.sessions() as s:
            customer = s.get(Customer, cid)
            code, name = (customer.credit_code, customer.name) if customer else (None, "")
        if customer is None:
            continue
        try:
            found = fetch_rating(settings, code, name)
        except CreditError as exc:
            log.warning("credit lookup failed", extra={"customer": cid, "error": str(exc)})
            failed += 1
            continue
        if found is None:
            continue
        with rt.db.transaction() as s:
            customer = s.get(Customer, cid)
            assert customer is not None
            try:
                frozen += record_rating(rt, s, customer, found.rating, agency=found.agency, scale=found.scale,
                                        rated_on=found.rated_on, source="provider", by=None)
            except RatingError as exc:
                log.warning("provider sent an unknown rating", extra={"customer": cid, "error": str(exc)})
                failed += 1
                continue
        checked += 1
    summary = f"{checked} checked, {frozen} opportunities frozen, {failed} failed"
    if failed and not checked:
        raise RuntimeError(summary)
    return summary


def today(rt: Runtime) -> date:
    return datetime.now(rt.config.tz).date()
