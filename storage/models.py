"""Platform tables: members, audit log, inbound archive, processed callbacks, outbox, cards,
job runs and settings. Feature tables live beside these in their own modules and share ``Base``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import TZDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger ids that are still SQLite rowid aliases (autoincrement works on both backends).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: TZDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Member(Base):
    """A person in the company, keyed by WeCom userid."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_userid: Mapped[str | None] = mapped_column(String(64), ForeignKey("members.userid"), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hire_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """Who changed what, when: every admin change and every refused card click."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class InboundMessage(Base):
    """Every message and event the bot received, decrypted (the conversation archive)."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    callback_key: Mapped[str] = mapped_column(String(255), unique=True)
    msg_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    from_user: Mapped[str] = mapped_column(String(64), index=True)
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content: Mapped[str] = mapped_column(Text, default="")
    media_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    customer_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)


class ProcessedCallback(Base):
    """Durable dedup key of a handled callback (backs the Redis SET NX fast path)."""

    __tablename__ = "processed_callbacks"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class OutboxMessage(Base):
    """One message to one member, written in the transaction of the change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True)
    msgtype: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    # an image's bytes until WeCom has them (its media_id then goes in ``body`` and these are dropped); kept
    # out of the JSON so a chart is stored as it is, not as base64 text the database would parse as JSON
    media: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # pending → sending → sent | failed | dead; 'sending' rows whose lease ran out are taken again
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    dedup_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    card_task_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    wecom_msgid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    response_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Card(Base):
    """An interactive template card we sent: who may click it, what it is about, what happened."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    addressee: Mapped[str] = mapped_column(String(64), index=True)
    card_type: Mapped[str] = mapped_column(String(32))
    subject: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="open")
    response_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """One run of a scheduled job; unique per schedule slot so a slot runs once."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("name", "slot", name="uq_job_runs_name_slot"),
                      Index("ix_job_runs_running", "status", "heartbeat_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # refreshed while the run is alive; a 'running' row whose heartbeat is older than the lease
    # belongs to a dead process and is taken over (jobs/scheduler.py recover_stale_runs)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")


class Setting(Base):
    """Configuration changed at run time by admins (stage gates, thresholds, …)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

