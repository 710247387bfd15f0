"""Card clicks: routed by the card's kind to a registered action; only the addressee may click."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from bot import messages as M
from bot.context import Ctx
from bot.out import CardUpdate
from storage.models import Card
from storage.types import utcnow


@dataclass(frozen=True)
class Click:
    card: Card
    key: str  # the button's key, or the submit key of a vote / multiple card
    selected: dict[str, list[str]]


CardAction = Callable[[Ctx, Click], None]
CARD_ACTIONS: dict[str, CardAction] = {}


def card_action(kind: str) -> Callable[[CardAction], CardAction]:
    def register(fn: CardAction) -> CardAction:
        CARD_ACTIONS[kind] = fn
        return fn
    return register


def handle_click(ctx: Ctx) -> None:
    msg = ctx.msg
    card = ctx.session.scalar(select(Card).where(Card.task_id == (msg.task_id or "")).with_for_update())
    if card is None:
        ctx.reply(M.CARD_UNKNOWN)
        return
    if card.addressee != ctx.userid:
        ctx.audit("card_click_refused", card.task_id, kind=card.kind, addressee=card.addressee,
                  key=msg.event_key or "")
        ctx.reply(M.CARD_NOT_YOURS.format(addressee=card.addressee))
        return
    if card.status != "open":
        from handlers.common import member_name

        ctx.reply(M.CARD_ALREADY.format(who=member_name(ctx.session, card.decided_by),
                                        when=_local(ctx, card.decided_at)))
        return
    action = CARD_ACTIONS.get(card.kind)
    if action is None:
        ctx.reply(M.CARD_UNKNOWN)
        return
    card.response_code = msg.response_code or card.response_code
    action(ctx, Click(card, msg.event_key or "", msg.selected_items))


def decide(ctx: Ctx, card: Card, decision: str, button_text: str) -> None:
    """Record the decision on the card and replace its buttons with ``button_text``."""
    card.status = "done"
    card.decision = decision
    card.decided_by = ctx.userid
    card.decided_at = utcnow()
    ctx.reply(CardUpdate(button_text))


def _local(ctx: Ctx, when: object) -> str:
    from datetime import datetime

    if isinstance(when, datetime):
        return when.astimezone(ctx.rt.config.tz).strftime("%m-%d %H:%M")
    return ""
