"""新客户 / 新商机 / 联系人 / 客户: customers, opportunities and the customer profile."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import func, select

from bot import messages as M
from bot.context import Ctx
from bot.router import command
from domain.credit_code import CreditCodeError, normalise_credit_code
from domain.master_data import MIN_CONTAINED_CHARS, CustomerIdentity, duplicate_candidates
from domain.money import AmountError, format_yuan, parse_amount
from domain.names import normalise_company_name
from domain.stages import stage_name
from handlers.common import find_customers, gate_config, member_name, resolve_customer
from handlers.stages import resolve_stage_or_reply
from storage.sales import Attachment, Contact, Customer, Opportunity, StageChange, Visit

SALES = ("rep", "manager")
KINDS = {"新签": "new", "续费": "renewal", "增购": "upsell"}
KIND_NAMES = {v: k for k, v in KINDS.items()}
_OPTION_RE = re.compile(r"\s(信用代码|代码|行业|区域|电话)\s+")

# Later features add sections to the profile: (title, render(ctx, customer) -> lines).
ProfileSection = Callable[[Ctx, Customer], list[str]]
PROFILE_SECTIONS: list[tuple[str, ProfileSection]] = []


def profile_section(title: str) -> Callable[[ProfileSection], ProfileSection]:
    def register(fn: ProfileSection) -> ProfileSection:
        PROFILE_SECTIONS.append((title, fn))
        return fn
    return register


def _split_options(args: str) -> tuple[str, dict[str, str]]:
    parts = _OPTION_RE.split(" " + args.strip())
    name = parts[0].strip()
    opts = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if "代码" in opts:
        opts.setdefault("信用代码", opts.pop("代码"))
    return name, opts


@command("新客户", roles=SALES, example="新客户 杭州云栖科技有限公司 信用代码 91330100716105852F 行业 软件 区域 华东",
         summary="新建客户档案")
def new_customer(ctx: Ctx, args: str) -> None:
    name, opts = _split_options(args)
    if not name:
        ctx.reply(M.NEW_CUSTOMER_USAGE)
        return
    code = None
    if opts.get("信用代码"):
        try:
            code = normalise_credit_code(opts["信用代码"])
        except CreditCodeError as exc:
            ctx.reply(M.CREDIT_CODE_INVALID.format(reason=exc))
            return
        taken = ctx.session.scalar(select(Customer).where(Customer.credit_code == code))
        if taken is not None:
            ctx.reply(M.CREDIT_CODE_TAKEN.format(code=code, name=taken.name,
                                                 owner=member_name(ctx.session, taken.owner_userid)))
            return
    key = normalise_company_name(name)
    same = ctx.session.scalar(select(Customer).where(Customer.name_key == key))
    if same is not None and (code is None or same.credit_code is None):
        ctx.reply(M.CUSTOMER_NAME_TAKEN.format(name=same.name, owner=member_name(ctx.session, same.owner_userid)))
        return
    similar = _similar_customers(ctx, name, key, code)
    customer = Customer(name=name, name_key=key, credit_code=code, industry=opts.get("行业"),
                        region=opts.get("区域") or ctx.member.region, phone=opts.get("电话"),
                        owner_userid=ctx.userid, created_by=ctx.userid)
    ctx.session.add(customer)
    ctx.session.flush()
    ctx.audit("create_customer", f"customer:{customer.id}", name=name, credit_code=code)
    extra = "".join(f"｜{k} {v}" for k, v in (("信用代码", code), ("行业", customer.industry),
                                              ("区域", customer.region)) if v)
    ctx.reply(M.CUSTOMER_CREATED.format(name=name, extra=extra, owner=ctx.member.name, short=name[:6]) + "".join(
        M.CUSTOMER_SIMILAR.format(name=c.name, owner=member_name(ctx.session, c.owner_userid)) for c in similar))


def _similar_customers(ctx: Ctx, name: str, key: str, code: str | None) -> list[Customer]:
    """Customers that 查重 would pair with the one being created (one name inside the other, by the same
    rules), at most three: created anyway, with a warning, since a short name may be a different company."""
    candidates = {c.id: c for c in find_customers(ctx.session, key[:MIN_CONTAINED_CHARS])}
    pairs = duplicate_candidates([CustomerIdentity(0, name, code),
                                  *(CustomerIdentity(c.id, c.name, c.credit_code) for c in candidates.values())])
    return [candidates[p.second.id] for p in pairs if p.first.id == 0][:3]


@command("新商机", roles=SALES, example="新商机 杭州云栖 15万 需求诊断", summary="为客户新建商机")
def new_opportunity(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 2:
        ctx.reply(M.OPP_USAGE)
        return
    kind = "new"
    if words[-1] in KINDS:
        kind = KINDS[words.pop()]
    stage_key = "lead"
    amount_at = len(words) - 1
    if len(words) >= 3:
        maybe_stage = resolve_stage_or_reply(ctx, words[-1], quiet=True)
        if maybe_stage is not None:
            stage_key = maybe_stage
            amount_at = len(words) - 2
    query = " ".join(words[:amount_at])
    try:
        amount = parse_amount(words[amount_at])
    except AmountError as exc:
        ctx.reply(M.AMOUNT_INVALID.format(text=words[amount_at], reason=exc))
        return
    customer = resolve_customer(ctx, query, redo=f"新商机 {{customer}} {' '.join(words[amount_at:])}"
                                                  f" {KIND_NAMES[kind]}")
    if customer is None:
        return
    notes = []
    if gate_config(ctx.session).required(stage_key) or stage_key in ("won", "lost"):
        notes.append(M.OPP_STAGE_NEEDS_GATE.format(stage=stage_name(stage_key), customer=customer.name))
        target_hint = stage_key
        stage_key = "lead"
    else:
        target_hint = None
    opp = Opportunity(customer_id=customer.id, owner_userid=customer.owner_userid, amount=amount, kind=kind,
                      stage=stage_key, stage_entered_at=ctx.now)
    ctx.session.add(opp)
    ctx.session.flush()
    ctx.session.add(StageChange(opportunity_id=opp.id, from_stage=None, to_stage=stage_key, at=ctx.now,
                                actor=ctx.userid, reason="新建商机"))
    ctx.audit("create_opportunity", f"opportunity:{opp.id}", customer=customer.name, amount=str(amount),
              stage=stage_key, kind=kind, asked_stage=target_hint)
    ctx.reply("\n".join([M.OPP_CREATED.format(customer=customer.name, id=opp.id, amount=format_yuan(amount),
                                              stage=stage_name(stage_key), kind=KIND_NAMES[kind]), *notes]))


@command("联系人", roles=SALES, example="联系人 杭州云栖 王总 CTO 13800000000", summary="添加客户联系人")
def add_contact(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 2:
        ctx.reply(M.CONTACT_USAGE)
        return
    customer = resolve_customer(ctx, words[0], redo=f"联系人 {{customer}} {' '.join(words[1:])}")
    if customer is None:
        return
    name, rest = words[1], words[2:]
    phone = next((w for w in rest if re.fullmatch(r"[\d\-+]{6,20}", w)), None)
    title = " ".join(w for w in rest if w != phone) or None
    ctx.session.add(Contact(customer_id=customer.id, name=name, title=title, phone=phone))
    ctx.audit("add_contact", f"customer:{customer.id}", name=name, title=title)
    extra = "".join(f"｜{v}" for v in (title, phone) if v)
    ctx.reply(M.CONTACT_ADDED.format(customer=customer.name, name=name, extra=extra))


@command("客户", roles=SALES, example="客户 杭州云栖", summary="查看客户档案")
def show_customer(ctx: Ctx, args: str) -> None:
    customer = resolve_customer(ctx, args, redo="客户 {customer}")
    if customer is None:
        return
    ctx.reply("\n".join(profile_lines(ctx, customer)))


def profile_lines(ctx: Ctx, c: Customer) -> list[str]:
    s = ctx.session
    tz = ctx.rt.config.tz

    def line(label: str, value: object) -> str:
        return M.PROFILE_LINE.format(label=label, value=value if value not in (None, "") else M.PROFILE_NONE)

    lines = [M.PROFILE_HEADER.format(name=c.name, code=f"（{c.credit_code}）" if c.credit_code else "")]
    lines.append(line("负责人", member_name(s, c.owner_userid)))
    lines.append(line("行业 / 区域", f"{c.industry or '-'} / {c.region or '-'}"))
    opps = list(s.scalars(select(Opportunity).where(Opportunity.customer_id == c.id).order_by(Opportunity.id)))
    if opps:
        for o in opps:
            flags = "（已冻结）" if o.frozen else ""
            pending = f"，待补证据推进到{stage_name(o.pending_stage)}" if o.pending_stage else ""
            lines.append(line(f"商机 #{o.id}", f"{stage_name(o.stage)}{flags}｜{format_yuan(o.amount)}｜"
                                               f"{KIND_NAMES.get(o.kind, o.kind)}{pending}"))
    else:
        lines.append(line("商机", None))
    last = c.last_contact_at
    lines.append(line("最近联系", last.astimezone(tz).strftime("%Y-%m-%d") if last else None))
    visits = list(s.scalars(select(Visit).where(Visit.customer_id == c.id, Visit.status == "done")
                            .order_by(Visit.created_at.desc())))
    quality = sum(1 for v in visits if v.quality)
    lines.append(line("拜访", f"{len(visits)} 次（高质量 {quality} 次）" if visits else None))
    for v in visits[:3]:
        summary = (v.pain_point or "语音痛点")[:24]
        lines.append(f"  · {v.created_at.astimezone(tz).strftime('%m-%d')} {member_name(s, v.rep_userid)}："
                     f"{summary}｜预算 {v.budget or '-'}｜下一步 {(v.next_step or '-')[:20]}")
    contacts = list(s.scalars(select(Contact).where(Contact.customer_id == c.id)))
    lines.append(line("联系人", "、".join(f"{x.name}{'（' + x.title + '）' if x.title else ''}" for x in contacts)))
    n_att = s.scalar(select(func.count()).select_from(Attachment).where(Attachment.customer_id == c.id)) or 0
    lines.append(line("附件", f"{n_att} 个" if n_att else None))
    for title, render in PROFILE_SECTIONS:
        section = render(ctx, c)
        if section:
            lines.append(f"— {title} —")
            lines.extend(section)
    return lines
