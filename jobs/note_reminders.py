"""Daily: remind members of meeting-note action items due today (each reminder sent once)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot import messages as M
from bot.out import Text
from bot.outbox import enqueue
from jobs.registry import job
from storage.copilot import Reminder
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime


@job("note_reminders", "remind members of meeting-note action items due today")
def note_reminders(rt: Runtime) -> str:
    today = datetime.now(rt.config.tz).date()
    sent = 0
    with rt.db.transaction() as s:
        for r in s.scalars(select(Reminder).where(Reminder.due_on <= today, Reminder.sent_at.is_(None))
                           .with_for_update(skip_locked=True)):
            late = (today - r.due_on).days
            enqueue(s, r.userid, Text(M.NOTE_REMINDER_PUSH.format(text=r.text, when="今天" if not late
                                                                 else f"{late} 天前")),
                    dedup_key=f"note-reminder:{r.id}")
            r.sent_at = utcnow()
            sent += 1
    return f"{sent} reminders sent"
