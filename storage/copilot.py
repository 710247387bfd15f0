"""Copilot tables: meeting notes with their extraction, and dated reminders to members."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import utcnow


class MeetingNote(Base):
    __tablename__ = "meeting_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    extraction: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extracted_by: Mapped[str] = mapped_column(String(16), default="offline")  # offline / model
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reminder(Base):
    """Something to tell a member on a day (an action item's due date); sent once."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    text: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"), nullable=True)
    note_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("meeting_notes.id"), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
