"""The finance card for a bank line that matched nothing: confirm one candidate, or ignore."""

from __future__ import annotations

from bot import messages as M
from bot.cards import Click, card_action, decide
from bot.context import Ctx
from jobs.bank import apply
from storage.payments import BankLine, Receivable


@card_action("bank_unmatched")
def bank_card_clicked(ctx: Ctx, click: Click) -> None:
    line = ctx.session.get(BankLine, click.card.subject["bank_line_id"])
    if line is None or line.status not in ("unmatched", "new"):
        decide(ctx, click.card, "stale", "已处理")
        return
    if click.key == "ignore":
        line.status = "ignored"
        ctx.audit("ignore_bank_line", f"bank_line:{line.id}")
        decide(ctx, click.card, "ignored", "已忽略")
        return
    rid = int(click.key.split(":", 1)[1])
    r = ctx.session.get(Receivable, rid)
    if r is None or r.outstanding <= 0:
        ctx.reply(M.BANK_CANDIDATE_GONE)
        return
    apply(ctx.session, line, [(rid, line.amount)])
    line.match_step = 4
    from jobs.incentives import consume_payment_events

    consume_payment_events(ctx.rt, ctx.session)
    ctx.audit("confirm_bank_line", f"bank_line:{line.id}", receivable=rid)
    decide(ctx, click.card, f"confirmed:{rid}", "已确认")
