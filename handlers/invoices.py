"""发货 → an invoice request card to finance (已开票 / 退回) → the collection countdown (PRODUCT.md §2.5)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot import dialogs
from bot import messages as M
from bot.cards import Click, card_action, decide
from bot.context import Ctx
from bot.out import Card, Text, button_card
from bot.outbox import enqueue
from bot.router import command
from domain.invoicing import due_date, reminders_due
from domain.money import format_yuan
from handlers.common import find_customers, scope
from storage.models import Member
from storage.payments import Contract, Receivable
from storage.sales import Customer

SALES = ("rep", "manager")
_SEQ_RE = re.compile(r"^第?(\d{1,2})期?$")


def _contracts_of_customer(ctx: Ctx, query: str, owners: set[str] | None) -> str | None:
    """发货 <客户> instead of a contract number: the customer's contracts with what is left to invoice."""
    customers = [c for c in find_customers(ctx.session, query) if owners is None or c.owner_userid in owners]
    if len(customers) != 1:
        return None
    customer = customers[0]
    open_seqs: dict[str, list[int]] = {}
    for number, seq in ctx.session.execute(
            select(Contract.number, Receivable.seq).join(Receivable, Receivable.contract_id == Contract.id)
            .where(Contract.customer_id == customer.id, Receivable.invoice_requested_at.is_(None))
            .order_by(Contract.id, Receivable.seq)):
        open_seqs.setdefault(number, []).append(seq)
    if not open_seqs:
        return M.SHIP_NO_CONTRACT.format(customer=customer.name)
    lines = [M.SHIP_CONTRACT_LINE.format(number=n, seqs="、".join(f"第{s}期" for s in seqs))
             for n, seqs in open_seqs.items()]
    return "\n".join([M.SHIP_PICK_CONTRACT.format(customer=customer.name), *lines,
                      M.SHIP_PICK_EXAMPLE.format(number=next(iter(open_seqs)))])


def subject(contract: Contract, r: Receivable) -> str:
    return f"{contract.number} 第{r.seq}期"


@command("发货", roles=SALES, example="发货 HT2026001 第1期", summary="已发货，请财务开票")
def shipped(ctx: Ctx, args: str) -> None:
    words = args.split()
    if not words:
        ctx.reply(M.SHIP_USAGE)
        return
    contract = ctx.session.scalar(select(Contract).where(Contract.number == words[0].upper()))
    owners = scope(ctx)
    if contract is None:
        ctx.reply(_contracts_of_customer(ctx, words[0], owners) or
                  M.CONTRACT_NOT_FOUND.format(number=words[0]) + M.SHIP_USAGE)
        return
    if owners is not None and contract.owner_userid not in owners:
        ctx.reply(M.CONTRACT_NOT_YOURS.format(number=contract.number))
        return
    open_rows = [r for r in ctx.session.scalars(select(Receivable).where(Receivable.contract_id == contract.id)
                                                .order_by(Receivable.seq)) if r.invoiced_on is None]
    if len(words) > 1:
        m = _SEQ_RE.match(words[1])
        open_rows = [r for r in open_rows if m and r.seq == int(m.group(1))]
    if not open_rows:
        ctx.reply(M.SHIP_NOTHING.format(number=contract.number))
        return
    r = open_rows[0]
    if r.invoice_requested_at is not None:
        ctx.reply(M.SHIP_ALREADY.format(subject=subject(contract, r)))
        return
    r.invoice_requested_at = ctx.now
    customer = ctx.session.get(Customer, contract.customer_id)
    finance = [m.userid for m in ctx.session.scalars(select(Member).where(Member.active.is_(True)))
               if "finance" in (m.roles or [])]
    if not finance:
        ctx.reply(M.SHIP_NO_FINANCE)
        return
    for userid in finance:
        card = button_card(M.INVOICE_CARD_TITLE, M.INVOICE_CARD_DESC.format(rep=ctx.member.name,
                                                                            customer=customer.name if customer else ""),
                           [("已开票", "invoiced", 1), ("退回", "return", 2)],
                           rows=[("合同", subject(contract, r)), ("金额", format_yuan(r.amount)),
                                 ("账期", f"{contract.payment_term_days} 天")])
        ctx.notify(userid, Card("invoice_request", card, {"receivable_id": r.id, "rep": ctx.userid}))
    ctx.audit("request_invoice", f"receivable:{r.id}", subject=subject(contract, r))
    ctx.reply(M.SHIP_SENT.format(subject=subject(contract, r)))


@card_action("invoice_request")
def invoice_card_clicked(ctx: Ctx, click: Click) -> None:
    r = ctx.session.get(Receivable, click.card.subject["receivable_id"])
    contract = ctx.session.get(Contract, r.contract_id) if r is not None else None
    if r is None or contract is None:
        decide(ctx, click.card, "stale", "已失效")
        return
    if r.invoiced_on is not None:  # another finance member was first
        decide(ctx, click.card, "done_by_other", "已开票")
        return
    if click.key == "return":
        r.invoice_requested_at = None
        ctx.audit("return_invoice", f"receivable:{r.id}")
        ctx.notify(click.card.subject["rep"], M.INVOICE_RETURNED.format(subject=subject(contract, r),
                                                                        finance=ctx.member.name))
        decide(ctx, click.card, "returned", "已退回")
        return
    today = ctx.now.date()
    r.invoiced_on = today
    r.collectible_on = due_date(today, contract.payment_term_days)
    ctx.audit("confirm_invoice", f"receivable:{r.id}", invoiced_on=today.isoformat())
    for rem in reminders_due(invoiced_on=today, due_on=r.collectible_on, today=today, sent_keys=(),
                             subject=subject(contract, r)):
        enqueue(ctx.session, contract.owner_userid, Text(rem.text), dedup_key=f"collect:{r.id}:{rem.key}")
    decide(ctx, click.card, "invoiced", "已开票")
    dialogs.start(ctx, "invoice_no", {"receivable_id": r.id})
    ctx.reply(M.INVOICE_ASK_NUMBER.format(subject=subject(contract, r)))


def _invoice_no(ctx: Ctx, data: dict[str, Any]) -> str:
    r = ctx.session.get(Receivable, data["receivable_id"])
    text = ctx.msg.text
    if r is None or text in M.WORD_NONE or text in ("没有", "跳过"):
        ctx.reply(M.INVOICE_NO_SKIPPED)
        return dialogs.END
    r.invoice_no = text[:64]
    ctx.audit("invoice_number", f"receivable:{r.id}", invoice_no=r.invoice_no)
    ctx.reply(M.INVOICE_NO_SAVED.format(no=r.invoice_no))
    return dialogs.END


dialogs.dialog(dialogs.Dialog(name="invoice_no", title="发票号", first="no", states={"no": _invoice_no},
                              timeout_s=3600, on_leave=lambda ctx, data: M.LEFT_INVOICE))
