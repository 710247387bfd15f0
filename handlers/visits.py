"""拜访: a visit log in one message, or a guided dialog that asks only for what is missing."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot import dialogs
from bot import messages as M
from bot.context import Ctx
from bot.out import Markdown
from bot.router import command
from domain.gates import VISIT_REQUIRED, Item, missing_text, text_satisfies
from domain.visits import labelled_fields, parse_visit_text
from handlers.common import find_customers, gate_config, open_opportunities, resolve_customer
from handlers.media import attachment_from_message
from handlers.pipeline import add_evidence, complete_pending, log_submission
from handlers.uploads import upload_link
from storage.sales import Attachment, Customer, Visit

SALES = ("rep", "manager")
FIELD_ITEM = {"pain": "pain", "budget": "budget", "next_step": "next_step"}
FIELD_LABELS = {"pain": "痛点", "budget": "预算", "next_step": "下一步", "contacts": "联系人", "report": "报告"}


def visit_missing(ctx: Ctx, visit: Visit) -> list[Item]:
    config = gate_config(ctx.session)
    have = set()
    if visit.pain_point or _has_voice(ctx, visit):
        have.add("pain")
    if visit.budget:
        have.add("budget")
    if visit.next_step:
        have.add("next_step")
    return [config.item(k) for k in VISIT_REQUIRED if k not in have]


def _has_voice(ctx: Ctx, visit: Visit) -> bool:
    return ctx.session.scalar(select(Attachment.id).where(Attachment.visit_id == visit.id,
                                                          Attachment.tag == "pain")) is not None


def _apply_fields(ctx: Ctx, visit: Visit, fields: dict[str, str]) -> list[str]:
    """Store labelled fields on the visit; returns problems to tell the member (bad budget value…)."""
    problems = []
    config = gate_config(ctx.session)
    if "pain" in fields:
        visit.pain_point = fields["pain"]
    if "next_step" in fields:
        visit.next_step = fields["next_step"]
    if "contacts" in fields:
        visit.contacts_met = fields["contacts"]
    if "report" in fields:
        visit.pain_point = visit.pain_point or fields["report"]
        visit.is_report = True
    if "budget" in fields:
        value = text_satisfies(config.item("budget"), fields["budget"])
        if value is None:
            problems.append(f"预算「{fields['budget']}」" + config.item("budget").hint)
        else:
            visit.budget = value
    return problems


@command("拜访", roles=SALES, example="拜访 杭州云栖 痛点:服务器扩容困难影响交付 预算:已明确 下一步:周五演示",
         summary="记录拜访（可一条消息写完，也可按提示分步填写）")
def log_visit(ctx: Ctx, args: str) -> None:
    parsed = parse_visit_text(args)
    if not parsed.customer:
        ctx.reply(M.VISIT_USAGE)
        return
    query, said = (parsed.customer, "") if parsed.fields else _customer_and_words(ctx, parsed.customer)
    customer = resolve_customer(ctx, query, redo="拜访 {customer} " + (said or args[len(parsed.customer):].strip()))
    if customer is None:
        return
    opps = open_opportunities(ctx.session, customer.id)
    visit = Visit(customer_id=customer.id, opportunity_id=opps[0].id if len(opps) == 1 else None,
                  rep_userid=ctx.userid, created_at=ctx.now)
    ctx.session.add(visit)
    ctx.session.flush()
    problems = _apply_fields(ctx, visit, parsed.fields)
    if said:  # what the rep said of the visit without labels fills the first missing item it can
        guessed = _guess_field(ctx, visit_missing(ctx, visit), said)
        problems += _apply_fields(ctx, visit, guessed)
        problems += [M.VISIT_WORDS_TAKEN.format(item=gate_config(ctx.session).item(key).name) for key in guessed]
        if not guessed:
            problems.append(M.VISIT_WORDS_UNPLACED.format(text=said[:40]))
    missing = visit_missing(ctx, visit)
    log_submission(ctx.session, ctx.userid, "visit", [i.name for i in missing])
    if not missing:
        _finish(ctx, visit, customer)
        return
    dialogs.start(ctx, "visit", {"visit_id": visit.id})
    ctx.reply("\n".join([*problems, M.VISIT_ASK.format(customer=customer.name, missing=missing_text(missing))]))


def _customer_and_words(ctx: Ctx, text: str) -> tuple[str, str]:
    """`杭州云栖 今天见了王总，聊了预算` with no labels: the customer is the first word when only it names
    one, and the rest is what the rep said of the visit; otherwise the whole text names the customer."""
    head, *rest = re.split(r"[\s\u3000]+", text.strip(), maxsplit=1)
    if not rest or find_customers(ctx.session, text) or not find_customers(ctx.session, head):
        return text, ""
    return head, rest[0]


def _finish(ctx: Ctx, visit: Visit, customer: Customer) -> None:
    """Complete the visit: quality when nothing is missing; its evidence serves open opportunities."""
    missing = visit_missing(ctx, visit)
    visit.status = "done"
    visit.quality = not missing
    visit.completed_at = ctx.now
    customer.last_contact_at = ctx.now
    n_att = len(list(ctx.session.scalars(select(Attachment.id).where(Attachment.visit_id == visit.id))))
    moved = _serve_opportunities(ctx, visit, customer)
    ctx.audit("log_visit", f"customer:{customer.id}", visit=visit.id, quality=visit.quality)
    _coach_after_visit(ctx, visit, customer)
    if visit.quality:
        extra = f"附件 {n_att} 个。" if n_att else ""
        ctx.reply(M.VISIT_SAVED_QUALITY.format(customer=customer.name, attachments=extra) + moved)
    else:
        ctx.reply(M.VISIT_SAVED_PARTIAL.format(customer=customer.name, missing="、".join(i.name for i in missing))
                  + moved)


def _coach_after_visit(ctx: Ctx, visit: Visit, customer: Customer) -> None:
    """After a logged communication: three talk tracks for what comes next, as a second message."""
    from handlers.coach import render, suggestions_for

    last = "；".join(x for x in (visit.pain_point, visit.next_step) if x)
    tracks = suggestions_for(ctx.session, customer, last_message=last)
    if tracks:
        opps = open_opportunities(ctx.session, customer.id)
        ctx.notify(ctx.userid, Markdown(render(customer, opps[0].stage if opps else None, tracks)))


def _serve_opportunities(ctx: Ctx, visit: Visit, customer: Customer) -> str:
    """A visit's pain point, budget and report are evidence for the customer's open opportunities."""
    config = gate_config(ctx.session)
    voice = ctx.session.scalar(select(Attachment).where(Attachment.visit_id == visit.id, Attachment.tag == "pain"))
    notes = []
    for opp in open_opportunities(ctx.session, customer.id):
        if visit.pain_point or voice is not None:
            add_evidence(ctx.session, opp, "pain", ctx.userid, text=visit.pain_point or (voice.transcript if voice else None),
                         attachment_id=voice.id if voice is not None and not visit.pain_point else None,
                         visit_id=visit.id)
        if visit.budget:
            add_evidence(ctx.session, opp, "budget", ctx.userid, text=visit.budget, visit_id=visit.id)
        if visit.is_report:
            add_evidence(ctx.session, opp, "report", ctx.userid, text=visit.pain_point, visit_id=visit.id)
        target = opp.pending_stage
        from_stage = opp.stage
        if complete_pending(ctx.session, config, opp, ctx.now):
            from domain.stages import stage_name

            ctx.audit("move", f"opportunity:{opp.id}", from_stage=from_stage, to_stage=target, completed_by="visit")
            notes.append(M.MOVE_DONE.format(id=opp.id, customer=customer.name, from_stage=stage_name(from_stage),
                                            to_stage=stage_name(target or "")))
    return ("\n" + "\n".join(notes)) if notes else ""


def _collect(ctx: Ctx, data: dict[str, Any]) -> str:
    visit = ctx.session.get(Visit, data["visit_id"])
    if visit is None or visit.status == "done":
        return dialogs.END
    customer = ctx.session.get(Customer, visit.customer_id)
    assert customer is not None
    msg = ctx.msg
    text = msg.text
    reply: list[str] = []
    if text in ("完成", "结束", "就这样"):
        _finish(ctx, visit, customer)
        return dialogs.END
    if text in ("上传", "文件", "附件", "上传文件"):
        ctx.reply(M.UPLOAD_LINK.format(url=upload_link(ctx, {"kind": "visit", "visit_id": visit.id})))
        return "collect"
    missing = visit_missing(ctx, visit)
    if msg.msg_type in ("image", "video", "link", "voice"):
        pain_by_voice = msg.msg_type == "voice" and any(i.key == "pain" for i in missing)
        attachment_from_message(ctx, customer_id=customer.id, visit_id=visit.id,
                                tag="pain" if pain_by_voice else None)
        reply.append(M.VISIT_VOICE_PAIN if pain_by_voice else
                     M.VISIT_ATTACHED.format(kind=M.ATTACHMENT_KINDS.get(msg.msg_type, "附件")))
    elif msg.msg_type == "text":
        fields = labelled_fields(text)
        if not fields:
            fields = _guess_field(ctx, missing, text)
        if not fields:
            ctx.reply(M.EVIDENCE_NOT_UNDERSTOOD.format(missing=missing_text(missing)))
            return "collect"
        problems = _apply_fields(ctx, visit, fields)
        noted = [FIELD_LABELS[k] for k in fields if k in FIELD_LABELS and not (k == "budget" and problems)]
        reply += ([M.VISIT_NOTED.format(fields="、".join(noted))] if noted else []) + problems
    missing = visit_missing(ctx, visit)
    if not missing:
        if reply:
            ctx.reply("\n".join(reply))
        _finish(ctx, visit, customer)
        return dialogs.END
    reply.append(missing_text(missing))
    ctx.reply("\n".join(reply))
    return "collect"


def _guess_field(ctx: Ctx, missing: list[Item], text: str) -> dict[str, str]:
    """An unlabelled answer fills the first missing item it can: 已明确 → budget, a sentence → pain…"""
    for item in missing:
        value = text_satisfies(item, text)
        if value is not None:
            return {item.key: value}
    return {}


def _discard(ctx: Ctx, data: dict[str, Any]) -> None:
    """取消 inside the dialog: the draft visit and what was attached to it are removed."""
    visit = ctx.session.get(Visit, data["visit_id"])
    if visit is None or visit.status == "done":
        return
    for att in ctx.session.scalars(select(Attachment).where(Attachment.visit_id == visit.id)):
        ctx.session.delete(att)
    ctx.session.flush()
    ctx.session.delete(visit)


def _leave(ctx: Ctx, data: dict[str, Any]) -> str:
    """A command instead of an answer: the visit is saved with what it has (as 完成 does), a blank one dropped."""
    visit = ctx.session.get(Visit, data["visit_id"])
    if visit is None or visit.status == "done":
        return ""
    attached = ctx.session.scalar(select(Attachment.id).where(Attachment.visit_id == visit.id).limit(1))
    if not (visit.pain_point or visit.budget or visit.next_step or visit.contacts_met or attached):
        _discard(ctx, data)
        return M.LEFT_VISIT_EMPTY
    customer = ctx.session.get(Customer, visit.customer_id)
    if customer is not None:
        _finish(ctx, visit, customer)  # its reply says what was saved and what is missing
    return ""


dialogs.dialog(dialogs.Dialog(name="visit", title="拜访记录", first="collect", states={"collect": _collect},
                              timeout_s=4 * 3600, on_cancel=_discard, on_leave=_leave,
                              answers=("联系人",)))
