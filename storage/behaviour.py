"""Customer behaviour tables: the link library, tracked links, customer events, upgrade rules and
their firings, and the talk-track library."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import utcnow


class LinkItem(Base):
    """An item of the admin's link library (报价 / 案例 / 竞品对比 / 手册 / 视频 / 其他)."""

    __tablename__ = "link_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrackedLink(Base):
    """A random, unguessable token that stands for (customer, library item)."""

    __tablename__ = "tracked_links"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("link_items.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomerEvent(Base):
    """Something a customer did: a tracked-link click (or a preview fetch), or a product event."""

    __tablename__ = "customer_events"
    __table_args__ = (Index("ix_customer_events_customer_time", "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    type: Mapped[str] = mapped_column(String(64))  # link_click, link_preview, login, trial_requested, …
    category: Mapped[str | None] = mapped_column(String(16), nullable=True)  # link category
    item_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("link_items.id"), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # link / product
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_agent: Mapped[str | None] = mapped_column(Text, nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)


class UpgradeRule(Base):
    """An automatic stage-upgrade rule, stored as its canonical text."""

    __tablename__ = "upgrade_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # "default" for the built-in rule: unique, so concurrent first uses seed it once
    builtin: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleFiring(Base):
    """A move a rule made: never twice for one opportunity, rule and target."""

    __tablename__ = "rule_firings"
    __table_args__ = (UniqueConstraint("opportunity_id", "rule_id", "to_stage", name="uq_rule_firings_move"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(BigId, ForeignKey("opportunities.id"))
    rule_id: Mapped[int] = mapped_column(BigId, ForeignKey("upgrade_rules.id"))
    to_stage: Mapped[str] = mapped_column(String(32))
    from_stage: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class TalkTrack(Base):
    """A talk track of the admin's library."""

    __tablename__ = "talk_tracks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
