"""目标 / 协同 / 积分 / 兑换 / 兑换项 / 我的看板 / 团队看板 / 功能数 / 冲销, and health on the profile."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import messages as M
from bot.cards import Click, card_action, decide
from bot.context import Ctx
from bot.out import Card, Image, button_card
from bot.router import command
from domain.board import render_rep_board, render_team_board, rep_board, team_board
from domain.board_chart import render_bars_png
from domain.health import BAND_LABELS, Band
from domain.incentives import DEAL_TYPE_LABELS
from domain.money import AmountError, format_yuan, parse_amount
from domain.points import confirmation_credit, redeem
from handlers.admin import find_member
from handlers.common import member_name, resolve_customer, small_int
from handlers.customers import profile_section
from jobs.incentives import consume_payment_events, points_entries, standing, team_members
from storage.incentives import CollaborationRequest, PointsLedgerRow, RedemptionItem, Target
from storage.models import Member
from storage.payments import Allocation, BankLine, Contract, PaymentEvent, Receivable
from storage.sales import Customer
from storage.types import utcnow

SALES = ("rep", "manager")
_MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")
_TRACKS = {"新签": "new", "续费": "renewal", "增购": "upsell"}


@command("目标", roles=("admin",), example="目标 lisi 2026-11 新签 100000 续费 50000 增购 50000", summary="设置月度目标")
def set_target(ctx: Ctx, args: str) -> None:
    words = args.split()
    tracks = words[2::2]
    # any of the three tracks, in any order; a track not named keeps this month's target (none yet: 0)
    if len(words) < 4 or len(words) % 2 or not set(tracks) <= set(_TRACKS) or len(set(tracks)) != len(tracks):
        ctx.reply(M.TARGET_USAGE)
        return
    member = find_member(ctx, words[0])
    if member is None:
        return
    m = _MONTH_RE.match(words[1])
    if m is None or not 1 <= int(m.group(2)) <= 12:
        ctx.reply(M.TARGET_USAGE)
        return
    month = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"
    try:
        given = {_TRACKS[t]: parse_amount(w, allow_zero=True) for t, w in zip(tracks, words[3::2], strict=True)}
    except AmountError as exc:
        ctx.reply(str(exc))
        return
    row = ctx.session.scalar(select(Target).where(Target.userid == member.userid, Target.month == month))
    kept = {k: getattr(row, k) if row is not None else Decimal(0) for k in _TRACKS.values()}
    new, renewal, upsell = ({**kept, **given}[k] for k in ("new", "renewal", "upsell"))
    if row is None:
        row = Target(userid=member.userid, month=month, new=new, renewal=renewal, upsell=upsell, set_by=ctx.userid)
        ctx.session.add(row)
    else:
        row.new, row.renewal, row.upsell, row.set_by = new, renewal, upsell, ctx.userid
    ctx.audit("set_target", member.userid, month=month, new=str(new), renewal=str(renewal), upsell=str(upsell))
    ctx.reply(M.TARGET_SET.format(name=member.name, month=month, new=format_yuan(new), renewal=format_yuan(renewal),
                                  upsell=format_yuan(upsell)))


# ---- collaboration ------------------------------------------------------------------------------

@command("协同", roles=SALES, example="协同 杭州云栖 需要客户成功协助上线培训", summary="请客户成功协同（确认后 +2 积分）")
def collaborate(ctx: Ctx, args: str) -> None:
    words = args.split(maxsplit=1)
    if len(words) < 2:
        ctx.reply(M.COLLAB_USAGE)
        return
    customer = resolve_customer(ctx, words[0], redo="协同 {customer} " + words[1])
    if customer is None:
        return
    csms = [m for m in ctx.session.scalars(select(Member).where(Member.active.is_(True))) if "csm" in (m.roles or [])]
    local = [m for m in csms if m.region and m.region == (customer.region or ctx.member.region)]
    csm = (local or csms or [None])[0]
    if csm is None:
        ctx.reply(M.COLLAB_NO_CSM)
        return
    req = CollaborationRequest(customer_id=customer.id, rep_userid=ctx.userid, need=words[1][:500])
    ctx.session.add(req)
    ctx.session.flush()
    card = button_card(M.COLLAB_CARD_TITLE, M.COLLAB_CARD_DESC.format(rep=ctx.member.name, customer=customer.name),
                       [("确认", "confirm", 1), ("婉拒", "decline", 2)], rows=[("需求", words[1][:60])])
    ctx.notify(csm.userid, Card("collaboration", card, {"request_id": req.id}))
    ctx.reply(M.COLLAB_SENT.format(csm=csm.name))


@card_action("collaboration")
def collaboration_clicked(ctx: Ctx, click: Click) -> None:
    req = ctx.session.get(CollaborationRequest, click.card.subject["request_id"])
    if req is None:
        decide(ctx, click.card, "stale", "已失效")
        return
    customer = ctx.session.get(Customer, req.customer_id)
    if click.key == "decline":
        req.status, req.decided_by = "declined", ctx.userid
        ctx.notify(req.rep_userid, M.COLLAB_DECLINED.format(csm=ctx.member.name, customer=customer.name if customer else ""))
        decide(ctx, click.card, "declined", "已婉拒")
        return
    req.status, req.decided_by = "confirmed", ctx.userid
    entry = confirmation_credit(points_entries(ctx.session, req.rep_userid), f"collab:{req.id}", req.rep_userid,
                                note=customer.name if customer else "")
    if entry is not None:
        try:
            with ctx.session.begin_nested():
                ctx.session.add(PointsLedgerRow(userid=entry.member, delta=entry.delta, reason=entry.reason.value,
                                                ref=entry.ref, note=entry.note))
                ctx.session.flush()
        except IntegrityError:
            entry = None  # a concurrent click credited it
    if entry is not None:
        balance = sum(e.delta for e in points_entries(ctx.session, req.rep_userid))
        ctx.notify(req.rep_userid, M.COLLAB_CONFIRMED.format(csm=ctx.member.name, customer=customer.name if customer
                                                             else "", points=entry.delta, balance=balance))
    decide(ctx, click.card, "confirmed", "已确认")


@command("积分", roles=SALES, example="积分", summary="查看协作积分和明细")
def points(ctx: Ctx, args: str) -> None:
    rows = list(ctx.session.scalars(select(PointsLedgerRow).where(PointsLedgerRow.userid == ctx.userid)
                                    .order_by(PointsLedgerRow.id.desc())))
    if not rows:
        ctx.reply(M.POINTS_NONE)
        return
    lines = [M.POINTS_HEADER.format(balance=sum(r.delta for r in rows))]
    lines += [f"  {r.at.astimezone(ctx.rt.config.tz):%m-%d} {r.delta:+d} {M.POINTS_REASONS.get(r.reason, r.reason)}"
              f"{'（' + r.note + '）' if r.note else ''}" for r in rows[:10]]
    ctx.reply("\n".join(lines))


@command("兑换项 新增", "兑换项 列表", "兑换项", roles=None, example="兑换项 新增 咖啡券 10", summary="兑换目录（新增仅管理员）",
         for_others=("查看兑换目录", "兑换项 列表"))
def catalogue(ctx: Ctx, args: str) -> None:
    if ctx.msg.text.startswith("兑换项 新增"):
        if not ctx.has_role("admin"):
            ctx.reply(M.ROLE_REQUIRED.format(command="兑换项 新增", roles="管理员", mine=ctx.roles_text))
            return
        words = args.split()
        cost = small_int(words[1]) if len(words) == 2 else None
        if cost is None or not 0 < cost <= 1_000_000:
            ctx.reply(M.CATALOGUE_USAGE)
            return
        if ctx.session.scalar(select(RedemptionItem).where(RedemptionItem.name == words[0])):
            ctx.reply(M.CATALOGUE_EXISTS.format(name=words[0]))
            return
        ctx.session.add(RedemptionItem(name=words[0], points=cost, created_by=ctx.userid))
        ctx.audit("add_redemption_item", words[0], points=cost)
        ctx.reply(M.CATALOGUE_ADDED.format(name=words[0], points=cost))
        return
    items = list(ctx.session.scalars(select(RedemptionItem).order_by(RedemptionItem.points)))
    ctx.reply("\n".join([M.CATALOGUE_HEADER] + [f"• {i.name}：{i.points} 分" for i in items]) if items
              else M.CATALOGUE_EMPTY)


@command("兑换", roles=SALES, example="兑换 咖啡券", summary="用协作积分兑换")
def redeem_points(ctx: Ctx, args: str) -> None:
    catalogue_map = {i.name: i.points for i in ctx.session.scalars(select(RedemptionItem))}
    if not args.strip():  # 兑换 alone: what there is, and how to ask for it
        items = "、".join(f"{name}（{points} 分）" for name, points in sorted(catalogue_map.items(), key=lambda x: x[1]))
        ctx.reply(M.REDEEM_USAGE.format(items=items, example=min(catalogue_map, key=catalogue_map.__getitem__))
                  if catalogue_map else M.REDEEM_CATALOGUE_EMPTY)
        return
    ref = f"msg:{ctx.msg.msg_id or ctx.msg.callback_key}"
    result = redeem(points_entries(ctx.session, ctx.userid), ctx.userid, args, catalogue_map, ref)
    if result.refusal:
        ctx.reply(result.refusal)
        return
    if result.entry is None:
        return
    e = result.entry
    ctx.session.add(PointsLedgerRow(userid=e.member, delta=e.delta, reason=e.reason.value, ref=e.ref, note=e.note))
    ctx.session.flush()
    ctx.audit("redeem", ctx.userid, item=e.note, points=e.delta)
    balance = sum(x.delta for x in points_entries(ctx.session, ctx.userid))
    ctx.reply(M.REDEEMED.format(item=e.note, points=-e.delta, balance=balance))


# ---- boards ---------------------------------------------------------------------------------------

def _month(ctx: Ctx) -> tuple[date, date]:
    today = ctx.now.date()
    return today.replace(day=1), today


@command("我的看板", roles=("rep",), example="我的看板", summary="积分、团队排名、KPI 进度、本月奖金")
def my_board(ctx: Ctx, args: str) -> None:
    if "rep" not in (ctx.member.roles or []):
        ctx.reply(M.BOARD_REPS_ONLY)
        return
    month, today = _month(ctx)
    team = team_members(ctx.session, ctx.member)
    standings = [standing(ctx.rt, ctx.session, m, month, today) for m in team]
    board = rep_board(standings, ctx.userid, month, today)
    labels = [DEAL_TYPE_LABELS[t.deal_type] for t in board.tracks]
    values = [float(t.percent or 0) for t in board.tracks]
    ctx.reply(render_rep_board(board))
    ctx.reply(Image(render_bars_png(M.BOARD_CHART_TITLE.format(name=ctx.member.name), labels, values), "board.png"))


@command("团队看板", roles=("manager",), example="团队看板", summary="团队成员的双轨得分、奖金和积分")
def team_board_command(ctx: Ctx, args: str) -> None:
    month, today = _month(ctx)
    reps = [m for m in ctx.session.scalars(select(Member).where(Member.active.is_(True), Member.manager_userid == ctx.userid))
            if "rep" in (m.roles or [])]
    if not reps:
        ctx.reply(M.FUNNEL_NO_TEAM)
        return
    board = team_board([standing(ctx.rt, ctx.session, m, month, today) for m in reps], month, today)
    ctx.reply(render_team_board(board))
    ctx.reply(Image(render_bars_png(M.TEAM_CHART_TITLE, [r.name for r in board.rows],
                                    [float(r.score.total or 0) for r in board.rows], unit="分", goal=None), "team.png"))


# ---- licences, reversals, health on the profile ----------------------------------------------------

@command("功能数", roles=("csm", "admin"), example="功能数 杭州云栖 20", summary="设置客户购买的功能数（健康分用）")
def licensed_features(ctx: Ctx, args: str) -> None:
    words = args.split()
    count = small_int(words[-1]) if len(words) >= 2 else None
    if count is None or count > 100_000:
        ctx.reply(M.LICENSES_USAGE)
        return
    found = [c for c in ctx.session.scalars(select(Customer).where(Customer.name.contains(" ".join(words[:-1]))))]
    if len(found) != 1:
        ctx.reply(M.CUSTOMER_NOT_FOUND_PLAIN.format(query=" ".join(words[:-1])))
        return
    found[0].licensed_features = count
    ctx.audit("set_licensed_features", f"customer:{found[0].id}", n=count)
    ctx.reply(M.LICENSES_SET.format(customer=found[0].name, n=count))


@command("冲销", roles=("finance",), example="冲销 6222-001 T20261209001", summary="撤销一笔已匹配的到账（奖金同步扣回）")
def reverse_payment(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) != 2:
        ctx.reply(M.REVERSE_USAGE)
        return
    line = ctx.session.scalar(select(BankLine).where(BankLine.account == words[0], BankLine.transaction_id == words[1]))
    if line is None or line.status != "matched":
        ctx.reply(M.REVERSE_NOT_FOUND.format(account=words[0], txn=words[1]))
        return
    total = 0
    for alloc in ctx.session.scalars(select(Allocation).where(Allocation.bank_line_id == line.id,
                                                              Allocation.reversed_at.is_(None))):
        alloc.reversed_at = utcnow()
        r = ctx.session.get(Receivable, alloc.receivable_id, with_for_update=True, populate_existing=True)  # locked
        contract = ctx.session.get(Contract, r.contract_id) if r else None
        if r is None or contract is None:
            continue
        r.outstanding, r.paid_on = r.outstanding + alloc.amount, None
        ctx.session.add(PaymentEvent(kind="reversed", allocation_id=alloc.id, rep_userid=contract.owner_userid,
                                     customer_id=contract.customer_id, contract_id=contract.id, amount=alloc.amount,
                                     received_on=ctx.now.date()))
        total += 1
    line.status = "reversed"
    ctx.session.flush()
    consume_payment_events(ctx.rt, ctx.session)
    ctx.audit("reverse_bank_line", f"bank_line:{line.id}", allocations=total)
    ctx.reply(M.REVERSED.format(account=line.account, txn=line.transaction_id, amount=format_yuan(line.amount)))


@profile_section("客户健康分")
def health_section(ctx: Ctx, customer: Customer) -> list[str]:
    if customer.health_score is None:
        return [M.HEALTH_NONE]
    band = BAND_LABELS.get(Band(customer.health_band), "") if customer.health_band else ""
    return [M.HEALTH_LINE.format(score=customer.health_score, band=band,
                                 owner=member_name(ctx.session, customer.owner_userid))]
