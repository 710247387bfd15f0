"""Invoice hand-off: the due date and the rep's reminder schedule up to and after it (PRODUCT.md §2.5)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

DEFAULT_PAYMENT_TERM_DAYS = 30

# --- user-visible text (Simplified Chinese) ------------------------------------------------------------
INVOICED = "已开票，距可催款还有 {days} 天"
INVOICED_DUE_NOW = "已开票，今日可催款"
COUNTDOWN = "距可催款还有 {days} 天"
DUE_TODAY = "今日可催款"
OVERDUE = "已逾期 {days} 天，请尽快催款"
WITH_SUBJECT = "【{subject}】{text}"


class ReminderKind(StrEnum):
    """The kinds of push a rep gets about one invoiced receivable."""

    INVOICED = "invoiced"
    COUNTDOWN = "countdown"
    DUE_TODAY = "due"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class ReminderPolicy:
    """When to push: countdown days before due, and the interval of overdue reminders (spec defaults)."""

    countdown_days: tuple[int, ...] = (7, 3, 1)
    overdue_every_days: int = 3


@dataclass(frozen=True)
class Reminder:
    """A push to send. ``key`` is stable for a given due date (unique per receivable): store it once sent."""

    key: str
    kind: ReminderKind
    scheduled_on: date
    text: str


@dataclass(frozen=True)
class _Planned:
    key: str
    kind: ReminderKind
    on: date


def due_date(invoiced_on: date, term_days: int = DEFAULT_PAYMENT_TERM_DAYS) -> date:
    """The day collection may start: invoice date + payment term in days (2026-12-01 + 30 → 2026-12-31)."""
    if term_days < 0:
        raise ValueError("payment term must not be negative")
    return invoiced_on + timedelta(days=term_days)


def reminder_schedule(
    invoiced_on: date, due_on: date, until: date, policy: ReminderPolicy | None = None
) -> list[tuple[date, str, ReminderKind]]:
    """Every planned push up to ``until`` (inclusive), in order, as (date, key, kind).

    The invoiced notice on ``invoiced_on``; countdowns on due − n for each n in ``countdown_days`` that
    falls after the invoice date; ``今日可催款`` on ``due_on`` (merged into the invoiced notice when the
    term is 0); then overdue reminders on due + k × every, k = 1, 2, … (for 12-01 + 30 d: 12-01, 12-24,
    12-28, 12-30, 12-31, 01-03, 01-06, …).
    """
    return [(p.on, p.key, p.kind) for p in _plan(invoiced_on, due_on, until, policy or ReminderPolicy())]


def reminders_due(
    *,
    invoiced_on: date,
    due_on: date,
    today: date,
    sent_keys: Collection[str],
    paid: bool = False,
    subject: str = "",
    policy: ReminderPolicy | None = None,
) -> list[Reminder]:
    """The pushes to send now: those planned on the latest planned day ≤ today whose key is not yet sent.

    Only the latest planned day counts, so a job that missed days sends one up-to-date push rather than a
    burst of stale ones, and a rerun with the returned keys stored sends nothing. Texts are computed for
    ``today`` (days left, or days overdue). Nothing once ``paid`` or before the invoice date. ``subject``
    (e.g. ``HT2026001 第2期``) is prefixed as ``【subject】`` when given.
    """
    if paid or today < invoiced_on:
        return []
    planned = _plan(invoiced_on, due_on, today, policy or ReminderPolicy())
    if not planned:
        return []
    latest = planned[-1].on
    return [
        Reminder(p.key, p.kind, p.on, _text(p.kind, due_on, today, subject))
        for p in planned
        if p.on == latest and p.key not in sent_keys
    ]


def _plan(invoiced_on: date, due_on: date, until: date, policy: ReminderPolicy) -> list[_Planned]:
    tag = due_on.isoformat()
    planned = [_Planned(f"invoiced@{tag}", ReminderKind.INVOICED, invoiced_on)]
    for n in sorted(set(policy.countdown_days), reverse=True):
        on = due_on - timedelta(days=n)
        if on > invoiced_on:
            planned.append(_Planned(f"countdown-{n}@{tag}", ReminderKind.COUNTDOWN, on))
    if due_on > invoiced_on:
        planned.append(_Planned(f"due@{tag}", ReminderKind.DUE_TODAY, due_on))
    every = max(1, policy.overdue_every_days)
    if until > due_on:
        latest_k = (until - due_on).days // every
        for k in range(1, latest_k + 1):
            n = k * every
            planned.append(_Planned(f"overdue-{n}@{tag}", ReminderKind.OVERDUE, due_on + timedelta(days=n)))
    return [p for p in planned if p.on <= until]


def _text(kind: ReminderKind, due_on: date, today: date, subject: str) -> str:
    days_left = (due_on - today).days
    if days_left > 0:
        text = (
            INVOICED.format(days=days_left)
            if kind is ReminderKind.INVOICED
            else COUNTDOWN.format(days=days_left)
        )
    elif days_left == 0:
        text = INVOICED_DUE_NOW if kind is ReminderKind.INVOICED else DUE_TODAY
    else:
        text = OVERDUE.format(days=-days_left)
    return WITH_SUBJECT.format(subject=subject, text=text) if subject else text
