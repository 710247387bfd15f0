"""合同 / 回款承诺 / 回款预测: contracts with instalments, graded promises, the cash forecast."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import dialogs
from bot import messages as M
from bot.cards import Click, card_action, decide
from bot.context import Ctx
from bot.out import Card, button_card
from bot.router import command
from domain.dates import resolve_relative_date
from domain.forecast import View, forecast_by_month, forecast_by_week
from domain.money import AmountError, format_yuan, parse_amount
from domain.promises import Grade
from domain.promises import Promise as DomainPromise
from handlers.common import member_name, resolve_customer, scope, small_int
from handlers.customers import profile_section
from handlers.media import attachment_from_message
from handlers.uploads import upload_link
from storage.models import Member
from storage.payments import Contract, Promise, Receivable
from storage.sales import Customer, Opportunity

SALES = ("rep", "manager")
KINDS = {"新签": "new", "续费": "renewal", "增购": "upsell"}
_INSTALMENT_RE = re.compile(r"^(\S+?)[@＠](\S+)$")
_TERM_RE = re.compile(r"^(\d{1,3})天?$")
_SEQ_RE = re.compile(r"^第?(\d{1,2})期$")


def when(ctx: Ctx, text: str) -> date | None:
    """A date as typed: 2026-12-20, 12月20日, and relative forms when the parser knows them."""
    return resolve_relative_date(text, ctx.now.date())


# ---- 合同 ---------------------------------------------------------------------------------------

@command("合同", roles=SALES, example="合同 杭州云栖 HT2026001 15万 分期 10万@2026-12-10 5万@2027-01-10 账期 30天",
         summary="登记合同与分期")
def contract(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 3:
        ctx.reply(M.CONTRACT_USAGE)
        return
    term, kind, instalments_text = 30, None, []
    if "账期" in words:
        i = words.index("账期")
        m = _TERM_RE.match(words[i + 1]) if i + 1 < len(words) else None
        if m is None:
            ctx.reply(M.CONTRACT_USAGE)
            return
        term = int(m.group(1))
        del words[i:i + 2]
    for word in list(words):
        if word in KINDS:
            kind = KINDS[word]
            words.remove(word)
    if "分期" in words:
        i = words.index("分期")
        instalments_text = words[i + 1:]
        words = words[:i]
    if len(words) < 3:
        ctx.reply(M.CONTRACT_USAGE)
        return
    number, amount_text = words[-2].upper(), words[-1]
    try:
        amount = parse_amount(amount_text)
    except AmountError as exc:
        ctx.reply(M.AMOUNT_INVALID.format(text=amount_text, reason=exc))
        return
    plan: list[tuple[Decimal, date]] = []
    for piece in instalments_text:
        m = _INSTALMENT_RE.match(piece)
        day = when(ctx, m.group(2)) if m else None
        try:
            part = parse_amount(m.group(1)) if m else None
        except AmountError as exc:
            ctx.reply(M.AMOUNT_INVALID.format(text=m.group(1) if m else piece, reason=exc))
            return
        if part is None or day is None:
            ctx.reply(M.CONTRACT_INSTALMENT_BAD.format(text=piece))
            return
        plan.append((part, day))
    if plan and sum(p for p, _ in plan) != amount:
        ctx.reply(M.CONTRACT_INSTALMENT_SUM.format(total=format_yuan(sum(p for p, _ in plan)),
                                                   amount=format_yuan(amount)))
        return
    if not plan:
        plan = [(amount, ctx.now.date() + timedelta(days=term))]
    if ctx.session.scalar(select(Contract).where(Contract.number == number)) is not None:
        ctx.reply(M.CONTRACT_EXISTS.format(number=number))
        return
    customer = resolve_customer(ctx, " ".join(words[:-2]), redo=f"合同 {{customer}} {args.split(maxsplit=1)[1] if ' ' in args else ''}")
    if customer is None:
        return
    opp = ctx.session.scalar(select(Opportunity).where(Opportunity.customer_id == customer.id)
                             .order_by(Opportunity.stage == "won", Opportunity.id.desc()))
    row = Contract(number=number, customer_id=customer.id, owner_userid=customer.owner_userid, amount=amount,
                   payment_term_days=term, kind=kind or (opp.kind if opp else "new"),
                   product_line=opp.product_line if opp else None, opportunity_id=opp.id if opp else None,
                   signed_on=ctx.now.date())
    ctx.session.add(row)
    ctx.session.flush()
    for seq, (part, day) in enumerate(sorted(plan, key=lambda p: p[1]), 1):
        ctx.session.add(Receivable(contract_id=row.id, seq=seq, amount=part, outstanding=part, due_on=day))
    ctx.audit("create_contract", f"contract:{row.id}", number=number, amount=str(amount), term=term)
    lines = [M.CONTRACT_CREATED.format(number=number, customer=customer.name, amount=format_yuan(amount), term=term)]
    lines += [f"  第{i}期 {format_yuan(p)}，{d.isoformat()} 到期" for i, (p, d) in enumerate(sorted(plan, key=lambda x: x[1]), 1)]
    ctx.reply("\n".join(lines))


# ---- 回款承诺 ----------------------------------------------------------------------------------

def find_contract(ctx: Ctx, text: str) -> Contract | None:
    return ctx.session.scalar(select(Contract).where(Contract.number == text.strip().upper()))


def frozen_reason(s: Session, customer_id: int) -> str | None:
    opp = s.scalar(select(Opportunity).where(Opportunity.customer_id == customer_id, Opportunity.frozen.is_(True)))
    return (opp.frozen_reason or "客户信用预警") if opp is not None else None


@command("回款承诺", roles=SALES, example="回款承诺 HT2026001 5万 2026-12-20 第2期", summary="登记客户的回款承诺")
def promise(ctx: Ctx, args: str) -> None:
    words = args.split()
    seq = None
    if words and _SEQ_RE.match(words[-1]):
        seq = int(_SEQ_RE.match(words[-1]).group(1))  # type: ignore[union-attr]
        words = words[:-1]
    if len(words) < 3:
        ctx.reply(M.PROMISE_USAGE)
        return
    target, amount_text, day_text = " ".join(words[:-2]), words[-2], words[-1]
    try:
        amount = parse_amount(amount_text)
    except AmountError as exc:
        ctx.reply(M.AMOUNT_INVALID.format(text=amount_text, reason=exc))
        return
    day = when(ctx, day_text)
    if day is None:
        ctx.reply(M.DATE_INVALID.format(text=day_text))
        return
    if day < ctx.now.date():  # a promise is about money still to come: a past day is a typo
        ctx.reply(M.PROMISE_DATE_PAST.format(day=day.isoformat(), today=ctx.now.date().isoformat()))
        return
    contract_row = find_contract(ctx, target)
    if contract_row is not None:
        customer = ctx.session.get(Customer, contract_row.customer_id)
        owners = scope(ctx)
        if customer is None or (owners is not None and customer.owner_userid not in owners):
            ctx.reply(M.CUSTOMER_NOT_YOURS.format(query=target))
            return
    else:
        customer = resolve_customer(ctx, target, redo=f"回款承诺 {{customer}} {amount_text} {day_text}"
                                                       + (f" 第{seq}期" if seq else ""))
        if customer is None:
            return
    reason = frozen_reason(ctx.session, customer.id)
    if reason:
        ctx.reply(M.PROMISE_FROZEN.format(customer=customer.name, reason=reason))
        return
    receivable = _instalment(ctx, customer, contract_row, seq, amount)
    if isinstance(receivable, str):
        ctx.reply(receivable)
        return
    row = Promise(customer_id=customer.id, contract_id=contract_row.id if contract_row else
                  (receivable.contract_id if receivable else None), receivable_id=receivable.id if receivable else None,
                  rep_userid=ctx.userid, amount=amount, promised_on=day,
                  approval="pending" if receivable else "none")
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit("create_promise", f"promise:{row.id}", amount=str(amount), promised_on=day.isoformat())
    lines = [M.PROMISE_CREATED.format(id=row.id, customer=customer.name, amount=format_yuan(amount),
                                      day=day.isoformat())]
    if receivable is not None:
        manager = ctx.session.scalar(select(Member.manager_userid).where(Member.userid == customer.owner_userid))
        if manager:
            _approval_card(ctx, row, customer, receivable, manager)
            lines.append(M.PROMISE_B_PENDING.format(seq=receivable.seq, manager=member_name(ctx.session, manager)))
        else:
            row.approval = "none"
            lines.append(M.PROMISE_NO_MANAGER)
    else:
        lines.append(M.PROMISE_C)
    lines.append(M.PROMISE_ASK_LETTER)
    dialogs.start(ctx, "promise_letter", {"promise_id": row.id})
    ctx.reply("\n".join(lines))


def _instalment(ctx: Ctx, customer: Customer, contract_row: Contract | None, seq: int | None,
                amount: Decimal) -> Receivable | None | str:
    """The instalment a promise points at: 第N期 of the contract, or the one open instalment of that amount."""
    contracts = [contract_row] if contract_row else list(ctx.session.scalars(
        select(Contract).where(Contract.customer_id == customer.id)))
    if not contracts:
        return None
    open_rows = [r for r in ctx.session.scalars(select(Receivable).where(
        Receivable.contract_id.in_([c.id for c in contracts])).order_by(Receivable.due_on)) if r.outstanding > 0]
    if seq is not None:
        if len(contracts) != 1:
            return M.PROMISE_SEQ_NEEDS_CONTRACT
        found = [r for r in open_rows if r.seq == seq]
        return found[0] if found else M.PROMISE_SEQ_UNKNOWN.format(seq=seq, number=contracts[0].number)
    same = [r for r in open_rows if r.outstanding == amount]
    return same[0] if len(same) == 1 else None


def _approval_card(ctx: Ctx, row: Promise, customer: Customer, receivable: Receivable, manager: str) -> None:
    number = ctx.session.get(Contract, receivable.contract_id).number  # type: ignore[union-attr]
    card = button_card(M.PROMISE_CARD_TITLE, M.PROMISE_CARD_DESC.format(rep=ctx.member.name, customer=customer.name),
                       [("批准", "approve", 1), ("驳回", "reject", 2)],
                       rows=[("金额", format_yuan(row.amount)), ("承诺日期", row.promised_on.isoformat()),
                             ("合同分期", f"{number} 第{receivable.seq}期（未收 {format_yuan(receivable.outstanding)}）")])
    ctx.notify(manager, Card("promise_approval", card, {"promise_id": row.id}))


@card_action("promise_approval")
def promise_card_clicked(ctx: Ctx, click: Click) -> None:
    row = ctx.session.get(Promise, click.card.subject["promise_id"])
    if row is None:
        decide(ctx, click.card, "stale", "已失效")
        return
    approved = click.key == "approve"
    row.approval = "approved" if approved else "rejected"
    ctx.audit("approve_promise" if approved else "reject_promise", f"promise:{row.id}")
    customer = ctx.session.get(Customer, row.customer_id)
    ctx.notify(row.rep_userid, (M.PROMISE_APPROVED if approved else M.PROMISE_REJECTED).format(
        id=row.id, customer=customer.name if customer else "", manager=ctx.member.name))
    decide(ctx, click.card, row.approval, "已批准" if approved else "已驳回")


def _letter(ctx: Ctx, data: dict[str, Any]) -> str:
    row = ctx.session.get(Promise, data["promise_id"])
    if row is None:
        return dialogs.END
    msg = ctx.msg
    if msg.msg_type == "image":
        att = attachment_from_message(ctx, customer_id=row.customer_id, tag="payment_letter")
        row.letter_attachment_id = att.id
        ctx.audit("promise_letter", f"promise:{row.id}", attachment=att.id)
        ctx.reply(M.PROMISE_A.format(id=row.id))
        return dialogs.END
    if msg.text in ("上传", "文件", "上传文件"):
        ctx.reply(M.UPLOAD_LINK.format(url=upload_link(ctx, {"kind": "promise", "promise_id": row.id})))
        return dialogs.END
    if msg.text in M.WORD_NONE or msg.text in ("没有", "暂无"):
        ctx.reply(M.PROMISE_NO_LETTER.format(id=row.id))
        return dialogs.END
    ctx.reply(M.PROMISE_ASK_LETTER)
    return "letter"


@command("承诺函", roles=SALES, example="承诺函 #12", summary="补传回款承诺的盖章承诺函（升为 A 级）")
def add_letter(ctx: Ctx, args: str) -> None:
    """The stamped letter that came after the promise: the same question as when it was made."""
    ref = small_int(args.strip().removeprefix("#"))
    if ref is None:
        ctx.reply(M.LETTER_USAGE)
        return
    row = ctx.session.get(Promise, ref)
    customer = ctx.session.get(Customer, row.customer_id) if row is not None else None
    owners = scope(ctx)
    if row is None or customer is None or (owners is not None and customer.owner_userid not in owners):
        ctx.reply(M.LETTER_PROMISE_NOT_FOUND.format(ref=f"#{ref}"))
        return
    ctx.about_customer(customer.id)
    if row.letter_attachment_id is not None:
        ctx.reply(M.LETTER_ALREADY.format(id=row.id))
        return
    if row.kept is not None:
        ctx.reply(M.LETTER_PROMISE_DONE.format(id=row.id))
        return
    dialogs.start(ctx, "promise_letter", {"promise_id": row.id})
    ctx.reply(M.LETTER_FOR.format(id=row.id, customer=customer.name, amount=format_yuan(row.amount),
                                  day=row.promised_on.isoformat()) + "\n" + M.PROMISE_ASK_LETTER)


dialogs.dialog(dialogs.Dialog(name="promise_letter", title="回款承诺函", first="letter", states={"letter": _letter},
                              timeout_s=3600, on_leave=lambda ctx, data: M.LEFT_PROMISE.format(id=data["promise_id"])))


# ---- 回款预测 ----------------------------------------------------------------------------------

def domain_promise(p: Promise) -> DomainPromise:
    return DomainPromise(id=p.id, customer_id=p.customer_id, rep_id=p.rep_userid, amount=p.amount,
                         promised_on=p.promised_on, has_stamped_letter=p.letter_attachment_id is not None,
                         receivable_id=p.receivable_id, manager_approved=p.approval == "approved")


def open_promises(s: Session, owners: set[str] | None, since: date) -> list[DomainPromise]:
    q = select(Promise).where(Promise.kept.is_(None), Promise.promised_on >= since)
    if owners is not None:
        q = q.join(Customer, Customer.id == Promise.customer_id).where(Customer.owner_userid.in_(owners))
    return [domain_promise(p) for p in s.scalars(q)]


@command("回款预测", roles=("finance", "rep", "manager"), example="回款预测", summary="查看回款预测（财务只看 A 级和已批准的 B 级）")
def forecast(ctx: Ctx, args: str) -> None:
    today = ctx.now.date()
    if args.strip().startswith("准确率"):
        _accuracy(ctx, args.strip()[3:].strip() or None)
        return
    since = today.replace(day=1)
    finance = ctx.has_role("finance") and not (set(ctx.member.roles or []) & {"rep", "manager"})
    if finance or args.strip() == "财务":
        promises = open_promises(ctx.session, None, since)
        view = View.FINANCE
        lines = [M.FORECAST_FINANCE_HEADER]
    else:
        promises = open_promises(ctx.session, scope(ctx), since)
        view = View.SALES
        lines = [M.FORECAST_SALES_HEADER]
    months = forecast_by_month(promises, view)
    if not months:
        # finance's view leaves out C and unapproved B: say how much, so an empty answer is not read as none
        ctx.reply(M.FORECAST_FINANCE_EMPTY.format(n=len(promises), amount=format_yuan(sum(p.amount for p in promises)))
                  if promises else M.FORECAST_EMPTY)
        return
    for row in months[:4]:
        lines.append(_period_line(row.period, row.totals, view))
    weeks = [w for w in forecast_by_week(promises, view) if w.ends_on >= today][:6]
    if weeks:
        lines.append(M.FORECAST_WEEKS)
        lines += [_period_line(f"{w.starts_on:%m-%d}周", w.totals, view) for w in weeks]
    ctx.reply("\n".join(lines))


def _period_line(period: str, totals: Any, view: View) -> str:
    if view is View.FINANCE:
        return M.FORECAST_FINANCE_LINE.format(period=period, total=format_yuan(totals.finance),
                                              a=format_yuan(totals.a), b=format_yuan(totals.b))
    return M.FORECAST_SALES_LINE.format(period=period, total=format_yuan(totals.total), a=format_yuan(totals.a),
                                        b=format_yuan(totals.b), c=format_yuan(totals.c))


GRADE_NAMES = {Grade.A: "A（盖章承诺函）", Grade.B: "B（分期+主管批准）", Grade.C: "C（口头）"}


def _accuracy(ctx: Ctx, month: str | None) -> None:
    """回款预测 准确率 [YYYY-MM]: the month's F (snapshot), R and 1 − |F − R| / R; last month by default."""
    from jobs.forecast_snapshot import accuracy_of
    from storage.payments import ForecastSnapshotRow

    if month is None:
        first = ctx.now.date().replace(day=1)
        month = (first - timedelta(days=1)).strftime("%Y-%m")
    row = ctx.session.get(ForecastSnapshotRow, month)
    if row is None:
        ctx.reply(M.ACCURACY_NONE.format(month=month))
        return
    f, r, acc = accuracy_of(ctx.session, row)
    ctx.reply(M.ACCURACY_REPORT.format(month=month, f=f, r=r, accuracy=acc))


@profile_section("应收与回款承诺")
def payments_section(ctx: Ctx, customer: Customer) -> list[str]:
    lines = []
    today = ctx.now.date()
    for contract in ctx.session.scalars(select(Contract).where(Contract.customer_id == customer.id)):
        for r in ctx.session.scalars(select(Receivable).where(Receivable.contract_id == contract.id)
                                     .order_by(Receivable.seq)):
            due = r.collectible_on or r.due_on
            state = (M.PROFILE_PAID if r.outstanding == 0 else
                     M.PROFILE_OVERDUE.format(days=(today - due).days) if due < today else
                     M.PROFILE_DUE.format(day=due.isoformat()))
            lines.append(f"  · {contract.number} 第{r.seq}期 {format_yuan(r.amount)}，未收 {format_yuan(r.outstanding)}，{state}")
    for p in ctx.session.scalars(select(Promise).where(Promise.customer_id == customer.id, Promise.kept.is_(None))
                                 .order_by(Promise.promised_on)):
        grade = domain_promise(p).grade
        lines.append(f"  · 承诺 #{p.id} {p.promised_on.isoformat()} {format_yuan(p.amount)}（{GRADE_NAMES[grade]}）")
    return lines
