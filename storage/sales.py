"""Sales-process tables: customers, contacts, opportunities, stage history, visits, attachments,
evidence for stage gates, submissions (template safety) and upload tokens."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import Money, utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), index=True)  # normalised, for search and duplicates
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True, nullable=True)
    industry: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner_userid: Mapped[str] = mapped_column(String(64), ForeignKey("members.userid"), index=True)
    last_contact_at: Mapped[datetime | None] = mapped_column(nullable=True)
    licensed_features: Mapped[int | None] = mapped_column(Integer, nullable=True)
    health_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), nullable=True)
    health_band: Mapped[str | None] = mapped_column(String(8), nullable=True)
    health_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(64), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Opportunity(Base):
    __tablename__ = "opportunities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    owner_userid: Mapped[str] = mapped_column(String(64), ForeignKey("members.userid"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    kind: Mapped[str] = mapped_column(String(16), default="new")  # new 新签 / renewal 续费 / upsell 增购
    product_line: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    # a move waiting for evidence: the stage asked for and who asked
    pending_stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    pending_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    contract_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signed_amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class StageChange(Base):
    """Every stage transition: when, from → to, by whom (a member) or what (a rule), why."""

    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(BigId, ForeignKey("opportunities.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rule: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")


class Visit(Base):
    """A visit / communication log 拜访记录."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("opportunities.id"), nullable=True)
    rep_userid: Mapped[str] = mapped_column(String(64), index=True)
    pain_point: Mapped[str | None] = mapped_column(Text, nullable=True)
    budget: Mapped[str | None] = mapped_column(String(16), nullable=True)
    next_step: Mapped[str | None] = mapped_column(Text, nullable=True)
    contacts_met: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_report: Mapped[bool] = mapped_column(Boolean, default=False)
    quality: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft → done
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Blob(Base):
    """File bytes, kept in the database so every process and machine can read them."""

    __tablename__ = "blobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)


class Attachment(Base):
    """Evidence a member sent: an image, voice clip, video, link or uploaded file."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"), nullable=True, index=True)
    opportunity_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("opportunities.id"), nullable=True)
    visit_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("visits.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # image / voice / video / link / file
    media_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    blob_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("blobs.id"), nullable=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    tag: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the gate item it serves, e.g. competitor
    transcript: Mapped[str | None] = mapped_column(Text, nullable=True)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Evidence(Base):
    """One satisfied gate item of an opportunity (text, choice, or an attachment)."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_opp_item", "opportunity_id", "item"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(BigId, ForeignKey("opportunities.id"))
    item: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    attachment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("attachments.id"), nullable=True)
    visit_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("visits.id"), nullable=True)
    by_userid: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Submission(Base):
    """A visit or stage-move submission, accepted or rejected (for the rejection-rate alert)."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    team: Mapped[str] = mapped_column(String(64), default="")  # the submitter's manager (their team)
    kind: Mapped[str] = mapped_column(String(16))  # visit / move
    accepted: Mapped[bool] = mapped_column(Boolean)
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class UploadToken(Base):
    """A one-purpose link to the upload page: which member, which visit or opportunity item."""

    __tablename__ = "upload_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    userid: Mapped[str] = mapped_column(String(64))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
