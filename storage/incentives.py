"""Incentive tables: monthly targets, the points ledger and catalogue, collaboration requests,
the bonus ledger, monthly scores and new-hire alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.models import Base, BigId
from storage.types import Money, utcnow


class Target(Base):
    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("userid", "month", name="uq_targets_userid_month"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), ForeignKey("members.userid"))
    month: Mapped[str] = mapped_column(String(7))  # 2026-11
    new: Mapped[Decimal] = mapped_column(Money())
    renewal: Mapped[Decimal] = mapped_column(Money())
    upsell: Mapped[Decimal] = mapped_column(Money())
    set_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PointsLedgerRow(Base):
    """One change of a member's collaboration points; (reason, ref) unique, so nothing is credited twice."""

    __tablename__ = "points_ledger"
    __table_args__ = (UniqueConstraint("reason", "ref", name="uq_points_ledger_reason_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RedemptionItem(Base):
    __tablename__ = "redemption_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    points: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollaborationRequest(Base):
    __tablename__ = "collaboration_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    rep_userid: Mapped[str] = mapped_column(String(64), index=True)
    need: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open / confirmed / declined
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BonusLedgerRow(Base):
    """A commission credited on a received payment, or its clawback; (payment, kind) unique."""

    __tablename__ = "bonus_ledger"
    __table_args__ = (UniqueConstraint("payment_id", "kind", name="uq_bonus_ledger_payment_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    kind: Mapped[str] = mapped_column(String(16))  # credit / clawback
    booked_on: Mapped[date] = mapped_column(Date, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


def add_bonus_rows(session: Session, rows: Sequence[dict[str, Any]]) -> list[bool]:
    """Book many bonus ledger rows (dicts of payment_id, userid, amount, kind, booked_on) with one insert;
    returns, per row, whether it was booked (False: its (payment, kind) is already in the ledger, e.g.
    booked by a concurrent run — then the rows go one savepoint each, as adding them one by one would)."""
    if not rows:
        return []
    from storage.payments import insert_rows

    table = BonusLedgerRow.__table__
    try:
        with session.begin_nested():
            insert_rows(session, table, rows)  # type: ignore[arg-type]
        return [True] * len(rows)
    except IntegrityError:
        pass
    booked = []
    for row in rows:
        try:
            with session.begin_nested():
                insert_rows(session, table, [row])  # type: ignore[arg-type]
            booked.append(True)
        except IntegrityError:
            booked.append(False)
    return booked


class MonthlyScore(Base):
    """The dual-track score of a member for a closed month."""

    __tablename__ = "monthly_scores"
    __table_args__ = (UniqueConstraint("userid", "month", name="uq_monthly_scores_userid_month"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))
    process: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    result: Mapped[Decimal | None] = mapped_column(Numeric(7, 2), nullable=True)
    total: Mapped[Decimal | None] = mapped_column(Numeric(7, 2), nullable=True)
    attained: Mapped[Decimal] = mapped_column(Money())
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class NewHireAlert(Base):
    """A manager alerted about a streak of months below the protected target (once per streak)."""

    __tablename__ = "newhire_alerts"
    __table_args__ = (UniqueConstraint("userid", "streak_first", name="uq_newhire_alerts_userid_streak"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64))
    streak_first: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(default=utcnow)
