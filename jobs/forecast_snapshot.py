"""On each month's first day: snapshot the month's finance forecast F, and report last month's
accuracy 1 − |F − R| / R to finance (PRODUCT.md §2.1)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Text
from bot.outbox import enqueue
from domain.forecast import (
    ForecastSnapshot,
    Receipt,
    forecast_accuracy,
    month_key,
    received_against,
    snapshot_finance_forecast,
)
from domain.money import format_percent, format_yuan
from domain.promises import Promise as DomainPromise
from jobs.registry import job
from storage.models import Member
from storage.payments import Allocation, BankLine, Contract, ForecastSnapshotRow, Promise, Receivable

if TYPE_CHECKING:
    from bot.runtime import Runtime


def _promises(s: Session, first: date, last: date) -> list[DomainPromise]:
    rows = s.scalars(select(Promise).where(Promise.promised_on >= first, Promise.promised_on <= last))
    return [DomainPromise(id=p.id, customer_id=p.customer_id, rep_id=p.rep_userid, amount=p.amount,
                          promised_on=p.promised_on, has_stamped_letter=p.letter_attachment_id is not None,
                          receivable_id=p.receivable_id, manager_approved=p.approval == "approved") for p in rows]


def take_snapshot(s: Session, month: date) -> ForecastSnapshotRow:
    key = month_key(month)
    row = s.get(ForecastSnapshotRow, key)
    if row is not None:
        return row
    first = month.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    snap = snapshot_finance_forecast(_promises(s, first, last), first)
    row = ForecastSnapshotRow(month=key, amount=snap.amount, receivable_ids=sorted(snap.receivable_ids),
                              customer_ids=sorted(snap.customer_ids))
    s.add(row)
    s.flush()
    return row


def accuracy_of(s: Session, row: ForecastSnapshotRow) -> tuple[str, str, str]:
    """(F, R, accuracy) of a snapshot's month, formatted."""
    first = date.fromisoformat(row.month + "-01")
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    receipts = [Receipt(receivable_id=rid, customer_id=cid, amount=amount, received_on=day)
                for rid, cid, amount, day in s.execute(
                    select(Allocation.receivable_id, Contract.customer_id, Allocation.amount, BankLine.booked_on)
                    .join(Receivable, Receivable.id == Allocation.receivable_id)
                    .join(Contract, Contract.id == Receivable.contract_id)
                    .join(BankLine, BankLine.id == Allocation.bank_line_id)
                    .where(BankLine.booked_on >= first, BankLine.booked_on <= last, Allocation.reversed_at.is_(None)))]
    snap = ForecastSnapshot(first, row.amount, frozenset(row.receivable_ids), frozenset(row.customer_ids))
    received = received_against(snap, receipts)
    return format_yuan(row.amount), format_yuan(received), format_percent(forecast_accuracy(row.amount, received))


@job("forecast_snapshot", "snapshot the month's finance forecast and report last month's accuracy")
def forecast_snapshot(rt: Runtime) -> str:
    today = datetime.now(rt.config.tz).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    with rt.db.transaction() as s:
        row = take_snapshot(s, today)
        previous = s.get(ForecastSnapshotRow, month_key(last_month))
        reported = ""
        if previous is not None and not previous.accuracy_reported:
            f, r, acc = accuracy_of(s, previous)
            text = M.ACCURACY_REPORT.format(month=previous.month, f=f, r=r, accuracy=acc)
            for m in s.scalars(select(Member).where(Member.active.is_(True))):
                if "finance" in (m.roles or []):
                    enqueue(s, m.userid, Text(text), dedup_key=f"accuracy:{previous.month}:{m.userid}")
            previous.accuracy_reported = True
            reported = f"; {previous.month} accuracy {acc}"
    return f"snapshot {row.month} = {format_yuan(row.amount)}{reported}"
