"""纪要 (meeting notes → action items, risks, next steps, reminders) and 异议 (objection handling)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import Any

from sqlalchemy import select

from bot import dialogs
from bot import messages as M
from bot.context import Ctx
from bot.router import command
from domain.notes import (
    MODEL_SYSTEM_PROMPT,
    ModelAnswerError,
    NotesExtraction,
    Side,
    extract_notes,
    parse_model_answer,
    render_notes,
)
from domain.objections import CustomerContext, handle_objection, render_advice
from handlers.common import open_opportunities, resolve_customer
from handlers.customers import profile_section
from handlers.media import attachment_from_message
from integrations.llm import chat_completion
from storage.copilot import MeetingNote, Reminder
from storage.models import Member
from storage.sales import Customer

SALES = ("rep", "manager")


def extract(ctx: Ctx, text: str, today: date) -> tuple[NotesExtraction, str]:
    """The model's extraction when one is configured and answers well; otherwise the offline one."""
    settings = ctx.rt.config.section("integrations.llm")
    answer = chat_completion(settings, MODEL_SYSTEM_PROMPT.format(today=today), text)
    if answer is not None:
        try:
            return parse_model_answer(answer, today), "model"
        except ModelAnswerError:
            pass
    people = {m.name: Side.OURS for m in ctx.session.scalars(select(Member))}
    return extract_notes(text, today, people), "offline"


def save_notes(ctx: Ctx, customer: Customer, text: str) -> None:
    today = ctx.now.date()
    extraction, by = extract(ctx, text, today)
    note = MeetingNote(customer_id=customer.id, author=ctx.userid, text=text, extracted_by=by,
                       extraction=json.loads(json.dumps(dataclasses.asdict(extraction), default=str)))
    ctx.session.add(note)
    ctx.session.flush()
    reminders = 0
    for item in extraction.action_items:
        if item.due is None:
            continue
        who = item.owner or ("我们" if item.side == Side.OURS else "客户")
        if item.side == Side.CUSTOMER:
            text_ = M.NOTE_REMINDER_CUSTOMER.format(customer=customer.name, who=who, what=item.what)
        else:
            text_ = M.NOTE_REMINDER_OURS.format(customer=customer.name, what=item.what)
        ctx.session.add(Reminder(userid=customer.owner_userid, due_on=item.due, text=text_, customer_id=customer.id,
                                 note_id=note.id))
        reminders += 1
    customer.last_contact_at = ctx.now
    ctx.audit("meeting_note", f"customer:{customer.id}", note=note.id, by=by)
    reply = M.NOTE_SAVED.format(customer=customer.name) + "\n" + render_notes(extraction)
    if reminders:
        reply += "\n" + M.NOTE_REMINDERS.format(n=reminders)
    ctx.reply(reply)


@command("纪要", roles=SALES, example="纪要 杭州云栖 王总下周三前提供采购预算；我们负责月底前出方案", summary="记录会议纪要，自动提取行动项、风险和下一步")
def notes(ctx: Ctx, args: str) -> None:
    words = args.split(maxsplit=1)
    if not words:
        ctx.reply(M.NOTE_USAGE)
        return
    customer = resolve_customer(ctx, words[0], redo="纪要 {customer} " + (words[1] if len(words) > 1 else ""))
    if customer is None:
        return
    if len(words) > 1 and words[1].strip():
        save_notes(ctx, customer, words[1].strip())
        return
    dialogs.start(ctx, "meeting_note", {"customer_id": customer.id})
    ctx.reply(M.NOTE_ASK.format(customer=customer.name))


def _note_text(ctx: Ctx, data: dict[str, Any]) -> str:
    customer = ctx.session.get(Customer, data["customer_id"])
    if customer is None:
        return dialogs.END
    if ctx.msg.msg_type == "voice":
        att = attachment_from_message(ctx, customer_id=customer.id, tag="meeting_note")
        if not att.transcript:
            ctx.reply(M.NOTE_VOICE_NO_TRANSCRIPT)
            return "text"
        save_notes(ctx, customer, att.transcript)
        return dialogs.END
    if ctx.msg.msg_type != "text" or len(ctx.msg.text) < 4:
        ctx.reply(M.NOTE_ASK.format(customer=customer.name))
        return "text"
    save_notes(ctx, customer, ctx.msg.text)
    return dialogs.END


dialogs.dialog(dialogs.Dialog(name="meeting_note", title="会议纪要", first="text", states={"text": _note_text},
                              timeout_s=3600))


@profile_section("会议纪要")
def notes_section(ctx: Ctx, customer: Customer) -> list[str]:
    rows = list(ctx.session.scalars(select(MeetingNote).where(MeetingNote.customer_id == customer.id)
                                    .order_by(MeetingNote.id.desc()).limit(2)))
    lines = []
    for note in rows:
        items = note.extraction.get("action_items", [])
        risks = note.extraction.get("risks", [])
        lines.append(f"  · {note.created_at.astimezone(ctx.rt.config.tz):%m-%d}：行动项 {len(items)} 条，风险 {len(risks)} 条")
        for item in items[:3]:
            lines.append(f"    - {item.get('owner') or '待定'}：{item.get('what')}（{item.get('due') or '未定日期'}）")
        for risk in risks[:2]:
            lines.append(f"    ⚠ {risk.get('text')}")
    return lines


@command("异议", roles=SALES, example="异议 杭州云栖 你们价格比XX家贵30%", summary="客户异议的类型和三种应对话术")
def objection(ctx: Ctx, args: str) -> None:
    words = args.split(maxsplit=1)
    if len(words) < 2:
        ctx.reply(M.OBJECTION_USAGE)
        return
    customer = resolve_customer(ctx, words[0], redo="异议 {customer} " + words[1])
    if customer is None:
        return
    opps = open_opportunities(ctx.session, customer.id)
    products = tuple(sorted({o.product_line for o in opps if o.product_line}))
    context = CustomerContext(name=customer.name, industry=customer.industry,
                              amount=opps[0].amount if opps else None, products=products)
    ctx.reply(render_advice(handle_objection(words[1], context)))
