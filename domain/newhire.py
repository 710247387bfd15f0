"""Stepped new-hire protection 阶梯式新人保护 (PRODUCT.md §3).

A month is named by any date in it. The money compared is the month's credited attainment
(``Attainment.total`` = new + renewal′ + upsell) against the protected target, which scales the
regional average of the members' total monthly targets (``Targets.total``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.incentives import Targets, month_start

ALERT_AFTER_MONTHS = 3


def tenure_month(hire_date: date, month: date) -> int:
    """m = (year − hire year) × 12 + (month − hire month) + 1: the hire month is 1; ≤ 0 before hiring."""
    return (month.year - hire_date.year) * 12 + (month.month - hire_date.month) + 1


def protection_factor(tenure: int) -> Decimal:
    """0.6 for m ≤ 3, 0.8 for 4 ≤ m ≤ 6, 1.0 from m = 7."""
    if tenure <= 3:
        return Decimal("0.6")
    if tenure <= 6:
        return Decimal("0.8")
    return Decimal(1)


def protected_target(regional_average: Decimal, tenure: int) -> Decimal:
    """regional average target × protection_factor(m)."""
    return regional_average * protection_factor(tenure)


def regional_average_targets(member_targets: Iterable[Targets]) -> Targets | None:
    """Per-track mean over the region's members that have a target (total > 0); None when none has.

    The caller passes the targets of the region's members for the month; ``.total`` is the
    regional average target, ``.scaled(protection_factor(m))`` the protected targets per track.
    """
    counted = [t for t in member_targets if t.total > 0]
    if not counted:
        return None
    n = Decimal(len(counted))
    return Targets(
        new=sum((t.new for t in counted), Decimal(0)) / n,
        renewal=sum((t.renewal for t in counted), Decimal(0)) / n,
        upsell=sum((t.upsell for t in counted), Decimal(0)) / n,
    )


@dataclass(frozen=True)
class MonthOutcome:
    """A closed month of one member: what was attained and the protected target of that month."""

    month: date
    attained: Decimal
    protected_target: Decimal

    @property
    def below(self) -> bool:
        """attained < protected target."""
        return self.attained < self.protected_target


@dataclass(frozen=True)
class Streak:
    """Consecutive calendar months below the protected target: first and last month (1st of month), length."""

    first: date
    last: date
    months: int


def current_streak(history: Iterable[MonthOutcome]) -> Streak | None:
    """The run of consecutive months below target that ends at the latest month of history; None if it is met."""
    by_month = {month_start(o.month): o for o in history}
    if not by_month:
        return None
    latest = max(by_month)
    if not by_month[latest].below:
        return None
    first, count = latest, 1
    while True:
        previous = _previous_month(first)
        outcome = by_month.get(previous)
        if outcome is None or not outcome.below:
            return Streak(first=first, last=latest, months=count)
        first, count = previous, count + 1


def alert_due(history: Iterable[MonthOutcome], alerted_streaks: Sequence[date] = ()) -> Streak | None:
    """The current streak when it is ≥ 3 months long and its first month is not in alerted_streaks; else None.

    A streak is named by its first month: the job stores (member, streak.first) when it alerts and
    passes those back, so re-runs, late runs and a streak that goes on for months alert exactly once.
    A month missing from history breaks a streak.
    """
    streak = current_streak(history)
    if streak is None or streak.months < ALERT_AFTER_MONTHS:
        return None
    if streak.first in {month_start(d) for d in alerted_streaks}:
        return None
    return streak


def _previous_month(first_of_month: date) -> date:
    if first_of_month.month == 1:
        return date(first_of_month.year - 1, 12, 1)
    return date(first_of_month.year, first_of_month.month - 1, 1)
