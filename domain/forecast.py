"""Cash forecast from graded promises, by ISO week and by month, and its monthly accuracy (PRODUCT.md §2.1)."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from domain.promises import Grade, Promise

ZERO = Decimal("0.00")
_RATIO_PLACES = Decimal("0.0001")


class View(StrEnum):
    """Who reads the forecast: finance sees A + approved B; sales sees A, B and C with their grades."""

    FINANCE = "finance"
    SALES = "sales"


@dataclass(frozen=True)
class GradeTotals:
    """Promised amounts split by effective grade."""

    a: Decimal = ZERO
    b: Decimal = ZERO
    c: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        """a + b + c."""
        return self.a + self.b + self.c

    @property
    def finance(self) -> Decimal:
        """a + b: what finance plans cash on."""
        return self.a + self.b

    def plus(self, grade: Grade, amount: Decimal) -> GradeTotals:
        """A copy with ``amount`` added to ``grade``."""
        if grade is Grade.A:
            return replace(self, a=self.a + amount)
        if grade is Grade.B:
            return replace(self, b=self.b + amount)
        return replace(self, c=self.c + amount)


@dataclass(frozen=True)
class PeriodForecast:
    """One row of the forecast: a period (``2026-12`` or ``2026-W50``), its first and last day, totals."""

    period: str
    starts_on: date
    ends_on: date
    totals: GradeTotals


@dataclass(frozen=True)
class ForecastSnapshot:
    """The finance forecast F of a month, frozen on its first day, and what it was made of.

    ``receivable_ids``: receivables named by the counted promises; ``customer_ids``: customers of
    counted promises that name no receivable (any of their receivables counts toward R).
    """

    month: date
    amount: Decimal
    receivable_ids: frozenset[int]
    customer_ids: frozenset[int]


@dataclass(frozen=True)
class Receipt:
    """Money applied to a receivable (a bank match allocation) on a given day."""

    receivable_id: int
    customer_id: int
    amount: Decimal
    received_on: date


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_key(day: date) -> str:
    """``2026-12`` for any day of December 2026."""
    return f"{day.year:04d}-{day.month:02d}"


def iso_week_key(day: date) -> str:
    """``2026-W50``: ISO year and week (weeks start on Monday; 2026-12-31 is in 2026-W53)."""
    iso = day.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def iso_week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def forecast_by_month(promises: Iterable[Promise], view: View) -> tuple[PeriodForecast, ...]:
    """Promised amounts per calendar month of ``promised_on``, oldest first.

    FINANCE: only promises counted by finance (effective A and B; c is always 0). SALES: all, each
    under its effective grade (a B awaiting approval is under c).
    """
    return _group(promises, view, month_key, month_start, month_end)


def forecast_by_week(promises: Iterable[Promise], view: View) -> tuple[PeriodForecast, ...]:
    """Promised amounts per ISO week of ``promised_on``, oldest first (same views as ``forecast_by_month``)."""
    return _group(
        promises, view, iso_week_key, iso_week_start, lambda d: iso_week_start(d) + timedelta(days=6)
    )


def finance_forecast(promises: Iterable[Promise], starts_on: date, ends_on: date) -> Decimal:
    """F over a period: Σ amount of promises counted by finance with starts_on ≤ promised_on ≤ ends_on."""
    return sum(
        (p.amount for p in promises if p.in_finance_forecast and starts_on <= p.promised_on <= ends_on),
        ZERO,
    )


def snapshot_finance_forecast(promises: Iterable[Promise], month: date) -> ForecastSnapshot:
    """The snapshot taken on the month's first day: F = finance forecast of promises dated in the month."""
    first, last = month_start(month), month_end(month)
    counted = [p for p in promises if p.in_finance_forecast and first <= p.promised_on <= last]
    return ForecastSnapshot(
        month=first,
        amount=sum((p.amount for p in counted), ZERO),
        receivable_ids=frozenset(p.receivable_id for p in counted if p.receivable_id is not None),
        customer_ids=frozenset(p.customer_id for p in counted if p.receivable_id is None),
    )


def received_against(snapshot: ForecastSnapshot, receipts: Iterable[Receipt]) -> Decimal:
    """R: Σ receipts dated in the snapshot's month applied to its receivables (or its customers' ones)."""
    first, last = snapshot.month, month_end(snapshot.month)
    return sum(
        (
            r.amount
            for r in receipts
            if first <= r.received_on <= last
            and (r.receivable_id in snapshot.receivable_ids or r.customer_id in snapshot.customer_ids)
        ),
        ZERO,
    )


def forecast_accuracy(forecast: Decimal, received: Decimal) -> Decimal:
    """Accuracy = max(0, 1 − |F − R| / R); 1 when F = R = 0, 0 when R = 0 < F; 4 decimals, half-up."""
    if received == 0:
        return Decimal(1).quantize(_RATIO_PLACES) if forecast == 0 else Decimal(0).quantize(_RATIO_PLACES)
    ratio = 1 - abs(forecast - received) / received
    return max(ratio, Decimal(0)).quantize(_RATIO_PLACES, rounding=ROUND_HALF_UP)


def _group(
    promises: Iterable[Promise],
    view: View,
    key: Callable[[date], str],
    first_day: Callable[[date], date],
    last_day: Callable[[date], date],
) -> tuple[PeriodForecast, ...]:
    rows: dict[str, PeriodForecast] = {}
    for p in promises:
        if view is View.FINANCE and not p.in_finance_forecast:
            continue
        k = key(p.promised_on)
        row = rows.get(k) or PeriodForecast(
            k, first_day(p.promised_on), last_day(p.promised_on), GradeTotals()
        )
        rows[k] = replace(row, totals=row.totals.plus(p.grade, p.amount))
    return tuple(sorted(rows.values(), key=lambda r: r.starts_on))
