"""Credit alerts (PRODUCT.md §2.3): record ratings; when a customer falls below the threshold — only on
the crossing — freeze its unsigned opportunities, send the risk officer a card, tell the owners."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Card, Out, Text, button_card
from bot.outbox import enqueue, enqueue_many
from domain.credit import RatingError, crossed_below, parse_rating
from domain.stages import is_closed
from integrations.credit import Answer, CreditClient, CreditError
from jobs.registry import job
from storage.models import Member
from storage.payments import CreditRating
from storage.sales import Customer, Opportunity
from storage.settings import tunable
from storage.types import utcnow

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


def risk_officers(s: Session) -> list[str]:
    """The active members with the risk role (who get the freeze card)."""
    return [userid for userid, roles in s.execute(select(Member.userid, Member.roles).where(Member.active.is_(True))
                                                  .order_by(Member.userid)) if "risk" in (roles or [])]


def freeze_customer(s: Session, customer: Customer, previous: str | None, rating: str, threshold: str) -> int:
    opps = s.scalars(select(Opportunity).where(Opportunity.customer_id == customer.id).order_by(Opportunity.id))
    n, messages = _freeze(customer.id, customer.name, list(opps), previous, rating, threshold, risk_officers(s))
    for recipient, out in messages:
        enqueue(s, recipient, out)
    return n


def _freeze(customer_id: int, customer_name: str, opps: Sequence[Opportunity], previous: str | None, rating: str,
            threshold: str, risk: Sequence[str]) -> tuple[int, list[tuple[str, Out]]]:
    """Freeze the customer's unsigned opportunities (``opps``: all of them); returns how many were frozen
    and what to send: each owner a message, each risk officer the card."""
    reason = M.FREEZE_REASON.format(previous=previous or "无", rating=rating, threshold=threshold)
    frozen = []
    for opp in opps:
        if is_closed(opp.stage) or opp.frozen:
            continue  # signed (won) or lost deals are not frozen
        opp.frozen, opp.frozen_reason = True, reason
        frozen.append(opp)
    if not frozen:
        return 0, []
    messages: list[tuple[str, Out]] = []
    for owner in sorted({o.owner_userid for o in frozen}):
        messages.append((owner, Text(M.FREEZE_OWNER.format(customer=customer_name, reason=reason,
                                                           n=sum(1 for o in frozen if o.owner_userid == owner)))))
    card = button_card(M.FREEZE_CARD_TITLE, M.FREEZE_CARD_DESC.format(customer=customer_name, rating=rating),
                       [("维持冻结", "keep", 2), ("解冻", "unfreeze", 1)],
                       rows=[("评级变化", f"{previous or '无'} → {rating}"), ("冻结商机", f"{len(frozen)} 个")])
    for userid in risk:
        messages.append((userid, Card("credit_freeze", card, {"customer_id": customer_id,
                                                              "opportunity_ids": [o.id for o in frozen]})))
    return len(frozen), messages


CHUNK = 1000


def latest_ratings(s: Session, customer_ids: Sequence[int]) -> dict[int, str]:
    """``latest_rating`` of many customers at once (those with none are absent); one query over the range
    of their ids (a fixed statement, unlike a thousand-item IN list)."""
    n = func.row_number().over(partition_by=CreditRating.customer_id,
                               order_by=(CreditRating.rated_on.desc(), CreditRating.id.desc()))
    ranked = (select(CreditRating.customer_id, CreditRating.rating, n.label("n"))
              .where(CreditRating.customer_id.between(min(customer_ids), max(customer_ids))).subquery())
    wanted = set(customer_ids)
    return {cid: rating for cid, rating in s.connection().execute(select(ranked.c.customer_id, ranked.c.rating)
                                                                  .where(ranked.c.n == 1)) if cid in wanted}


@job("credit_check", "ask the credit provider for each active customer's rating; freeze on a fall")
def credit_check(rt: Runtime) -> str:
    """Every customer with an open opportunity, a chunk at a time: the chunk's ratings asked of the provider
    (batch requests when configured, else concurrent GETs; the next chunk's requests run while this one
    is written), compared with the stored latest ratings in one query, the changes inserted at once and
    a fall below the threshold frozen (``freeze_customer``), one transaction per chunk. A rerun after a
    crash finds the ratings already stored and does nothing twice."""
    settings = rt.config.section("integrations.credit")
    if not settings.get("enabled") or not settings.get("base_url"):
        return "credit provider not configured"
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(Opportunity.customer_id).where(Opportunity.stage.not_in(("won", "lost")))
                             .distinct().order_by(Opportunity.customer_id)))
    chunks = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
    totals = {"checked": 0, "frozen": 0, "failed": 0}
    risk: list[list[str]] = []  # the risk officers, loaded at the first fall
    with CreditClient(settings) as client:

        def start(chunk: list[int]) -> tuple[list[Any], Any]:
            wanted = set(chunk)
            with rt.db.sessions() as s:
                customers = [row for row in s.connection().execute(
                    select(Customer.id, Customer.credit_code, Customer.name)
                    .where(Customer.id.between(chunk[0], chunk[-1])).order_by(Customer.id)) if row[0] in wanted]
            return customers, client.submit([(code, name) for _, code, name in customers])

        pending = start(chunks[0]) if chunks else None
        for k in range(len(chunks)):
            assert pending is not None
            customers, wait = pending
            answers = wait()
            pending = start(chunks[k + 1]) if k + 1 < len(chunks) else None
            _store_chunk(rt, customers, answers, totals, risk)
    summary = f"{totals['checked']} checked, {totals['frozen']} opportunities frozen, {totals['failed']} failed"
    if totals["failed"] and not totals["checked"]:
        raise RuntimeError(summary)
    return summary


def _store_chunk(rt: Runtime, customers: Sequence[Any], answers: Sequence[Answer], totals: dict[str, int],
                 risk: list[list[str]]) -> None:
    """One transaction: the changed ratings inserted at once; the customers that fell below the threshold
    frozen as ``record_rating`` would (their opportunities loaded in one query, the messages and cards
    queued in one insert)."""
    found: list[tuple[int, str, Any]] = []
    failed = 0
    for (cid, _, _), answer in zip(customers, answers, strict=True):
        if isinstance(answer, CreditError):
            log.warning("credit lookup failed", extra={"customer": cid, "error": str(answer)})
            failed += 1
        elif answer is not None:
            try:
                found.append((cid, _parse(answer.rating), answer))
            except RatingError as exc:
                log.warning("provider sent an unknown rating", extra={"customer": cid, "error": str(exc)})
                failed += 1
    frozen = 0
    if found:
        with rt.db.transaction() as s:
            previous = latest_ratings(s, [cid for cid, _, _ in found])
            changed = [(cid, rating, answer) for cid, rating, answer in found if previous.get(cid) != rating]
            if changed:
                _insert_ratings(s, changed)
                threshold = str(tunable(s, rt.config, "payments.credit_threshold"))
                falls = [(cid, rating) for cid, rating, _ in changed
                         if _crossed_below(previous.get(cid), rating, threshold)]
                if falls:
                    if not risk:
                        risk.append(risk_officers(s))
                    frozen = _freeze_all(s, falls, previous, threshold, {cid: name for cid, _, name in customers},
                                         risk[0])
    totals["checked"] += len(found)
    totals["frozen"] += frozen
    totals["failed"] += failed


def _insert_ratings(s: Session, changed: Sequence[tuple[int, str, Any]]) -> None:
    """The provider's new ratings in one statement (PostgreSQL: over arrays) or one executemany (SQLite)."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "INSERT INTO credit_ratings (customer_id, rating, agency, scale, rated_on, source, created_at) "
            "SELECT t.c, t.r, t.a, t.s, t.d, 'provider', %(now)s "
            "FROM unnest(%(c)b::bigint[], %(r)b::text[], %(a)b::text[], %(s)b::text[], %(d)b::date[]) "
            "AS t(c, r, a, s, d)",
            {"now": utcnow(), "c": [c for c, _, _ in changed], "r": [r for _, r, _ in changed],
             "a": [a.agency for _, _, a in changed], "s": [a.scale for _, _, a in changed],
             "d": [a.rated_on for _, _, a in changed]})
    else:
        s.execute(CreditRating.__table__.insert(), [
            {"customer_id": cid, "rating": rating, "agency": answer.agency, "scale": answer.scale,
             "rated_on": answer.rated_on, "source": "provider", "entered_by": None, "created_at": utcnow()}
            for cid, rating, answer in changed])


def _freeze_all(s: Session, falls: Sequence[tuple[int, str]], previous: dict[int, str], threshold: str,
                names: dict[int, str], risk: Sequence[str]) -> int:
    opps: dict[int, list[Opportunity]] = {cid: [] for cid, _ in falls}
    for opp in s.scalars(select(Opportunity).where(Opportunity.customer_id.in_(list(opps)))
                         .order_by(Opportunity.customer_id, Opportunity.id)):
        opps[opp.customer_id].append(opp)
    frozen = 0
    items: list[tuple[str, Out, str | None]] = []
    for cid, rating in falls:
        n, messages = _freeze(cid, names[cid], opps[cid], previous.get(cid), rating, threshold, risk)
        frozen += n
        items += [(recipient, out, None) for recipient, out in messages]
    enqueue_many(s, items)
    return frozen


# the provider's spellings and the threshold crossings repeat: decide each once
_parse = lru_cache(maxsize=256)(parse_rating)
_crossed_below = lru_cache(maxsize=4096)(crossed_below)


def today(rt: Runtime) -> date:
    return datetime.now(rt.config.tz).date()
