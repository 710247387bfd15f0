"""信用 <客户> <评级> (risk officer) and the freeze card (维持冻结 / 解冻): only risk lifts a freeze."""

from __future__ import annotations

from sqlalchemy import select

from bot import messages as M
from bot.cards import Click, card_action, decide
from bot.context import Ctx
from bot.router import command
from domain.credit import RatingError
from handlers.common import find_customers
from jobs.credit_check import record_rating
from storage.sales import Customer, Opportunity

RISK = ("risk",)


def _customer(ctx: Ctx, query: str) -> Customer | None:
    found = find_customers(ctx.session, query)
    if len(found) == 1:
        return found[0]
    ctx.reply(M.CUSTOMER_NOT_FOUND_PLAIN.format(query=query) if not found else M.CUSTOMER_CHOOSE.format(
        query=query, n=len(found)) + " " + "、".join(c.name for c in found[:5]))
    return None


@command("信用", roles=RISK, example="信用 杭州云栖 BB+", summary="录入客户信用评级（低于阈值自动冻结未签约商机）")
def rating(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 2:
        ctx.reply(M.RATING_USAGE)
        return
    customer = _customer(ctx, " ".join(words[:-1]))
    if customer is None:
        return
    try:
        frozen = record_rating(ctx.rt, ctx.session, customer, words[-1], agency=ctx.member.name, scale="S&P",
                               rated_on=ctx.now.date(), source="manual", by=ctx.userid)
    except RatingError as exc:
        ctx.reply(str(exc))
        return
    ctx.audit("set_rating", f"customer:{customer.id}", rating=words[-1].upper(), frozen=frozen)
    ctx.reply(M.RATING_SET.format(customer=customer.name, rating=words[-1].upper())
              + (M.RATING_FROZE.format(n=frozen) if frozen else ""))


@command("解冻", roles=RISK, example="解冻 杭州云栖", summary="解冻客户的商机")
def unfreeze_command(ctx: Ctx, args: str) -> None:
    if "risk" not in (ctx.member.roles or []):  # not even admins: only the risk officer lifts a freeze
        ctx.reply(M.ONLY_RISK)
        return
    customer = _customer(ctx, args.strip())
    if customer is not None:
        n = _unfreeze(ctx, customer.id)
        ctx.reply(M.UNFROZEN.format(customer=customer.name, n=n) if n else M.NOTHING_FROZEN.format(customer=customer.name))


def _unfreeze(ctx: Ctx, customer_id: int) -> int:
    opps = list(ctx.session.scalars(select(Opportunity).where(Opportunity.customer_id == customer_id,
                                                              Opportunity.frozen.is_(True))))
    customer = ctx.session.get(Customer, customer_id)
    for o in opps:
        o.frozen, o.frozen_reason = False, None
    for owner in sorted({o.owner_userid for o in opps}):
        ctx.notify(owner, M.UNFROZEN_OWNER.format(customer=customer.name if customer else "", risk=ctx.member.name))
    if opps:
        ctx.audit("unfreeze", f"customer:{customer_id}", opportunities=[o.id for o in opps])
    return len(opps)


@card_action("credit_freeze")
def freeze_card_clicked(ctx: Ctx, click: Click) -> None:
    if not ctx.has_role("risk"):  # the card reached a risk officer; roles may have changed since
        ctx.reply(M.ONLY_RISK)
        return
    if click.key == "unfreeze":
        n = _unfreeze(ctx, click.card.subject["customer_id"])
        decide(ctx, click.card, "unfrozen", "已解冻")
        ctx.reply(M.UNFROZEN.format(customer="", n=n).replace("「」", ""))
    else:
        ctx.audit("keep_frozen", f"customer:{click.card.subject['customer_id']}")
        decide(ctx, click.card, "kept", "维持冻结")
