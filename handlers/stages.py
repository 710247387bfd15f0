"""阶段 列表 / 必填 / 时限 / 模板 检查 (admin) and 推进 with its evidence dialog (reps, managers)."""

from __future__ import annotations

import re
from typing import Any

from bot import dialogs
from bot import messages as M
from bot.context import Ctx
from bot.router import command
from domain.gates import (
    FILE,
    IMAGE,
    TEXT,
    VOICE,
    missing_text,
    parse_requirement,
    text_satisfies,
    unsafe_items,
)
from domain.money import AmountError, parse_amount
from domain.stages import DEFAULT_PIPELINE, resolve_stage, stage_name
from handlers.common import gate_config, open_opportunities, resolve_customer, scope, sla_days, small_int
from handlers.media import attachment_from_message
from handlers.pipeline import add_evidence, attempt_move, complete_pending, missing_for
from handlers.uploads import upload_link
from storage.sales import Customer, Opportunity
from storage.settings import get_setting, set_setting

ADMIN = ("admin",)
SALES = ("rep", "manager")
_OPP_REF = re.compile(r"^#(\d+)$")


def resolve_stage_or_reply(ctx: Ctx, text: str, quiet: bool = False) -> str | None:
    stage = resolve_stage(text)
    if stage is None and not quiet:
        ctx.reply(M.STAGE_UNKNOWN.format(text=text, stages="、".join(s.name for s in DEFAULT_PIPELINE)))
    return stage.key if stage else None


# ---- admin: stages, gates, SLAs, template check --------------------------------------------------

@command("阶段 列表", "阶段", roles=None, example="阶段 列表", summary="查看销售阶段、时限和必填项")
def list_stages(ctx: Ctx, args: str) -> None:
    config = gate_config(ctx.session)
    sla = sla_days(ctx.session)
    lines = [M.STAGES_HEADER]
    for i, stage in enumerate(DEFAULT_PIPELINE, 1):
        items = "、".join(f"{it.name}（{'/'.join(it.modes)}）" for it in config.required(stage.key)) or "无"
        days = f"{sla[stage.key]} 天" if stage.key in sla else "—"
        lines.append(M.STAGE_LINE.format(i=i, name=stage.name, sla=days, items=items))
    ctx.reply("\n".join(lines))


@command("必填", roles=ADMIN, example="必填 方案确认 竞品对比表 预算", summary="设置阶段必填项")
def set_gate(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 2:
        ctx.reply(M.GATE_USAGE)
        return
    stage = resolve_stage_or_reply(ctx, words[0])
    if stage is None:
        return
    gates = {k: list(v) for k, v in gate_config(ctx.session).gates.items()}
    modes: dict[str, Any] = dict(get_setting(ctx.session, "gate_modes", {}) or {})
    if words[1:] == ["无"]:
        gates[stage] = []
        set_setting(ctx.session, "stage_gates", gates, ctx.userid)
        ctx.audit("set_gate", stage, items=[])
        ctx.reply(M.GATE_CLEARED.format(stage=stage_name(stage)))
        return
    keys, overrides, error = parse_requirement(words[1:])
    if error:
        ctx.reply(error + "\n" + M.GATE_USAGE)
        return
    before = gates.get(stage, [])
    gates[stage] = keys
    modes.update({k: list(v) for k, v in overrides.items()})
    set_setting(ctx.session, "stage_gates", gates, ctx.userid)
    set_setting(ctx.session, "gate_modes", modes, ctx.userid)
    ctx.audit("set_gate", stage, before=before, after=keys, modes={k: list(v) for k, v in overrides.items()})
    config = gate_config(ctx.session)
    shown = "、".join(f"{config.item(k).name}（{'/'.join(config.item(k).modes)}）" for k in keys)
    reply = M.GATE_SET.format(stage=stage_name(stage), items=shown)
    if any(not config.item(k).plain_text_ok for k in keys):
        reply += "\n" + _template_report(ctx)
    ctx.reply(reply)


@command("时限", roles=ADMIN, example="时限 方案演示 10", summary="设置阶段停留时限（天）")
def set_sla(ctx: Ctx, args: str) -> None:
    words = args.split()
    days = small_int(words[1].rstrip("天")) if len(words) == 2 else None
    if days is None or not 0 < days <= 3650:
        ctx.reply(M.SLA_USAGE)
        return
    stage = resolve_stage_or_reply(ctx, words[0])
    if stage is None:
        return
    custom = dict(get_setting(ctx.session, "stage_sla", {}) or {})
    before = custom.get(stage)
    custom[stage] = days
    set_setting(ctx.session, "stage_sla", custom, ctx.userid)
    ctx.audit("set_sla", stage, before=before, after=days)
    ctx.reply(M.SLA_SET.format(stage=stage_name(stage), days=days))


@command("模板 检查", "模板检查", roles=ADMIN, example="模板 检查", summary="检查必填项是否在所有手机上都能填写")
def template_check(ctx: Ctx, args: str) -> None:
    ctx.reply(_template_report(ctx))


def _template_report(ctx: Ctx) -> str:
    config = gate_config(ctx.session)
    problems = unsafe_items(config)
    if not problems:
        n = sum(len(v) for v in config.gates.values())
        return M.TEMPLATE_OK.format(n=n)
    lines = [M.TEMPLATE_PROBLEMS.format(n=len(problems))]
    for p in problems:
        where = "拜访记录" if p.stage == "visit" else f"进入「{stage_name(p.stage)}」"
        lines.append(M.TEMPLATE_PROBLEM_LINE.format(where=where, item=p.item.name, reason=p.reason,
                                                    stage=stage_name(p.stage) if p.stage != "visit" else "",
                                                    modes="/".join(p.item.modes)))
    return "\n".join(lines)


# ---- 推进 ------------------------------------------------------------------------------------

@command("推进", roles=SALES, example="推进 杭州云栖 方案确认", summary="推进商机阶段")
def move(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 2:
        ctx.reply(M.MOVE_USAGE)
        return
    target = resolve_stage_or_reply(ctx, words[-1])
    if target is None:
        return
    opp_ref = _OPP_REF.match(words[-2]) if len(words) >= 3 else None
    if len(words) == 2 and _OPP_REF.match(words[0]):  # 推进 #12 赢单: the opportunity by the number shown for it
        opp_ref = _OPP_REF.match(words[0])
        ref = small_int(words[0][1:])  # ≤ 9 digits: a longer number is no id, and no error either
        found = ctx.session.get(Opportunity, ref) if ref is not None else None
        customer = ctx.session.get(Customer, found.customer_id) if found is not None else None
        owners = scope(ctx)
        if customer is None or (owners is not None and customer.owner_userid not in owners):
            ctx.reply(M.OPP_NOT_FOUND.format(ref=words[0]))
            return
        ctx.about_customer(customer.id)
    else:
        query = " ".join(words[:-2] if opp_ref else words[:-1])
        customer = resolve_customer(ctx, query,
                                    redo=f"推进 {{customer}} {' '.join(words[-2:] if opp_ref else words[-1:])}")
        if customer is None:
            return
    opps = open_opportunities(ctx.session, customer.id)
    if opp_ref:
        opps = [o for o in opps if o.id == int(opp_ref.group(1))]
    if not opps:
        ctx.reply(M.NO_OPEN_OPP.format(customer=customer.name))
        return
    if len(opps) > 1:
        ctx.reply(M.SEVERAL_OPPS.format(customer=customer.name, n=len(opps), example=opps[0].id,
                                        stage=stage_name(target)))
        return
    opp = opps[0]
    from_stage = opp.stage
    outcome = attempt_move(ctx.session, gate_config(ctx.session), opp, target, ctx.userid, ctx.now)
    text = outcome.text(opp, customer, from_stage, target)
    if outcome.missing:
        dialogs.start(ctx, "move_evidence", {"opp_id": opp.id})
        if any(FILE in i.modes for i in outcome.missing):
            text += "\n" + M.UPLOAD_LINK.format(url=upload_link(ctx, {"kind": "opportunity", "opportunity_id": opp.id}))
    else:
        ctx.audit("move", f"opportunity:{opp.id}", from_stage=from_stage, to_stage=target)
    ctx.reply(text)


_CONTRACT_RE = re.compile(r"^合同号\s*[:：]?\s*(\S+)$")
_SIGNED_RE = re.compile(r"^签约金额\s*[:：]?\s*(\S+)$")


def _collect_evidence(ctx: Ctx, data: dict[str, Any]) -> str:
    opp = ctx.session.get(Opportunity, data["opp_id"])
    if opp is None or not opp.pending_stage:
        return dialogs.END
    config = gate_config(ctx.session)
    target = opp.pending_stage
    missing = missing_for(ctx.session, config, opp, target)
    got = _take(ctx, opp, missing)
    if got is None:
        ctx.reply(M.EVIDENCE_NOT_UNDERSTOOD.format(missing=missing_text(missing)))
        return "collect"
    from_stage = opp.stage
    if complete_pending(ctx.session, config, opp, ctx.now):
        ctx.audit("move", f"opportunity:{opp.id}", from_stage=from_stage, to_stage=target, completed_by=got)
        customer_name = opp_customer_name(ctx, opp)
        ctx.reply(M.EVIDENCE_GOT.format(item=got) + "\n" + M.MOVE_DONE.format(
            id=opp.id, customer=customer_name, from_stage=stage_name(from_stage), to_stage=stage_name(target)))
        return dialogs.END
    still = missing_for(ctx.session, config, opp, target)
    ctx.reply(M.EVIDENCE_GOT.format(item=got) + missing_text(still))
    return "collect"


def opp_customer_name(ctx: Ctx, opp: Opportunity) -> str:
    from storage.sales import Customer

    c = ctx.session.get(Customer, opp.customer_id)
    return c.name if c else ""


def _take(ctx: Ctx, opp: Opportunity, missing: list[Any]) -> str | None:
    """Turn the member's message into evidence for the first missing item it satisfies; its name."""
    msg = ctx.msg
    if msg.msg_type in ("image", "video", "link", "voice"):
        mode = {"image": IMAGE, "voice": VOICE, "video": IMAGE, "link": None}[msg.msg_type]
        item = next((i for i in missing if mode and i.accepts(mode)), None)
        att = attachment_from_message(ctx, customer_id=opp.customer_id, opportunity_id=opp.id,
                                      tag=item.key if item else None)
        if item is None:
            return M.ATTACHMENT_KINDS.get(msg.msg_type, "附件") + "（已保存为附件）"
        add_evidence(ctx.session, opp, item.key, ctx.userid, attachment_id=att.id, text=att.transcript)
        return item.name
    text = msg.text
    for pattern, key in ((_CONTRACT_RE, "contract_no"), (_SIGNED_RE, "signed_amount")):
        m = pattern.match(text)
        if m and any(i.key == key for i in missing):
            value = m.group(1)
            if key == "signed_amount":
                try:
                    value = str(parse_amount(value))
                except AmountError as exc:
                    ctx.reply(M.AMOUNT_INVALID.format(text=value, reason=exc))
                    return None
            add_evidence(ctx.session, opp, key, ctx.userid, text=value)
            return next(i.name for i in missing if i.key == key)
    if text.startswith(("报告:", "报告：")) and any(i.key == "report" for i in missing):
        body = text[3:].strip()
        item = next(i for i in missing if i.key == "report")
        if text_satisfies(item, body):
            add_evidence(ctx.session, opp, "report", ctx.userid, text=body)
            return item.name
    for item in missing:
        if item.key in ("contract_no", "signed_amount", "report"):
            continue  # these need their label, so a stray sentence is not taken for them
        value = text_satisfies(item, text)
        if value is not None and TEXT in item.modes:
            add_evidence(ctx.session, opp, item.key, ctx.userid, text=value)
            return item.name
    return None


dialogs.dialog(dialogs.Dialog(name="move_evidence", title="补齐推进证据", first="collect",
                              states={"collect": _collect_evidence}, timeout_s=24 * 3600,
                              on_leave=lambda ctx, data: M.LEFT_EVIDENCE))


# ---- thresholds -------------------------------------------------------------------------------

THRESHOLDS = {"信用": "payments.credit_threshold", "拒绝率": "alerts.rejection_share",
              "拒绝样本": "alerts.rejection_min_submissions"}


@command("阈值", roles=ADMIN, example="阈值 信用 BBB-", summary="查看或设置阈值（信用 / 拒绝率 / 拒绝样本）")
def thresholds(ctx: Ctx, args: str) -> None:
    from domain.credit import RatingError, parse_rating
    from storage.settings import tunable

    words = args.split()
    if not words:
        ctx.reply("\n".join([M.THRESHOLDS_HEADER] + [f"• {name}：{tunable(ctx.session, ctx.rt.config, key)}"
                                                      for name, key in THRESHOLDS.items()]))
        return
    if len(words) != 2 or words[0] not in THRESHOLDS:
        ctx.reply(M.THRESHOLD_USAGE)
        return
    key, text = THRESHOLDS[words[0]], words[1]
    value: Any
    try:
        if words[0] == "信用":
            value = parse_rating(text)
        elif words[0] == "拒绝率":
            value = float(text.rstrip("%")) / (100 if text.endswith("%") or float(text.rstrip("%")) > 1 else 1)
            if not 0 < value < 1:
                raise ValueError
        else:
            value = int(text)
            if value <= 0:
                raise ValueError
    except RatingError as exc:
        ctx.reply(str(exc))
        return
    except ValueError:
        ctx.reply(M.THRESHOLD_BAD.format(text=text, name=words[0]))
        return
    before = tunable(ctx.session, ctx.rt.config, key)
    set_setting(ctx.session, key, value, ctx.userid)
    ctx.audit("set_threshold", key, before=before, after=value)
    ctx.reply(M.THRESHOLD_SET.format(name=words[0], value=value))
