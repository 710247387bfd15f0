"""After finance confirms an invoice, the rep is counted down to the day collection may start, then
reminded every 3 days while the money is late — each push exactly once, whatever the job does."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.invoicing import (
    ReminderKind,
    ReminderPolicy,
    due_date,
    reminder_schedule,
    reminders_due,
)

INVOICED_ON = date(2026, 12, 1)
DUE_ON = date(2026, 12, 31)


def run_daily_job(
    first: date,
    last: date,
    *,
    invoiced_on: date = INVOICED_ON,
    due_on: date = DUE_ON,
    paid_on: date | None = None,
    runs_per_day: int = 1,
) -> list[tuple[date, str]]:
    """Run the reminder job every day, storing sent keys as the real job does; return what was pushed."""
    sent: set[str] = set()
    pushed: list[tuple[date, str]] = []
    day = first
    while day <= last:
        for _ in range(runs_per_day):
            for r in reminders_due(
                invoiced_on=invoiced_on,
                due_on=due_on,
                today=day,
                sent_keys=sent,
                paid=paid_on is not None and day >= paid_on,
            ):
                sent.add(r.key)
                pushed.append((day, r.text))
        day += timedelta(days=1)
    return pushed


def test_due_date_is_invoice_date_plus_term() -> None:
    assert due_date(INVOICED_ON) == DUE_ON  # default 30 days
    assert due_date(INVOICED_ON, 45) == date(2027, 1, 15)
    assert due_date(INVOICED_ON, 0) == INVOICED_ON
    with pytest.raises(ValueError):
        due_date(INVOICED_ON, -1)


def test_worked_example_pushes() -> None:
    pushed = run_daily_job(INVOICED_ON, date(2027, 1, 10))
    assert pushed == [
        (date(2026, 12, 1), "已开票，距可催款还有 30 天"),
        (date(2026, 12, 24), "距可催款还有 7 天"),
        (date(2026, 12, 28), "距可催款还有 3 天"),
        (date(2026, 12, 30), "距可催款还有 1 天"),
        (date(2026, 12, 31), "今日可催款"),
        (date(2027, 1, 3), "已逾期 3 天，请尽快催款"),
        (date(2027, 1, 6), "已逾期 6 天，请尽快催款"),
        (date(2027, 1, 9), "已逾期 9 天，请尽快催款"),
    ]


def test_rerunning_the_job_sends_nothing_new() -> None:
    assert run_daily_job(INVOICED_ON, date(2027, 1, 10), runs_per_day=3) == run_daily_job(
        INVOICED_ON, date(2027, 1, 10)
    )
    sent = {"due@2026-12-31"}
    assert reminders_due(invoiced_on=INVOICED_ON, due_on=DUE_ON, today=DUE_ON, sent_keys=sent) == []


def test_reminders_stop_once_paid() -> None:
    pushed = run_daily_job(INVOICED_ON, date(2027, 1, 31), paid_on=date(2027, 1, 5))
    assert pushed[-1] == (date(2027, 1, 3), "已逾期 3 天，请尽快催款")
    assert (
        reminders_due(invoiced_on=INVOICED_ON, due_on=DUE_ON, today=DUE_ON, sent_keys=set(), paid=True) == []
    )


def test_a_job_that_missed_days_sends_one_up_to_date_push_not_a_burst() -> None:
    # the job was down from 12-20 to 12-29; on 12-29 only the latest planned push goes, with the true count
    sent = {"invoiced@2026-12-31"}
    (late,) = reminders_due(invoiced_on=INVOICED_ON, due_on=DUE_ON, today=date(2026, 12, 29), sent_keys=sent)
    assert late.key == "countdown-3@2026-12-31"
    assert late.kind is ReminderKind.COUNTDOWN
    assert late.scheduled_on == date(2026, 12, 28)
    assert late.text == "距可催款还有 2 天"
    # overdue catch-up names the real number of days
    (overdue,) = reminders_due(invoiced_on=INVOICED_ON, due_on=DUE_ON, today=date(2027, 1, 8), sent_keys=sent)
    assert (overdue.key, overdue.text) == ("overdue-6@2026-12-31", "已逾期 8 天，请尽快催款")


def test_keys_are_stable_and_tied_to_the_due_date() -> None:
    first = reminders_due(invoiced_on=INVOICED_ON, due_on=DUE_ON, today=date(2026, 12, 24), sent_keys=())
    again = reminders_due(invoiced_on=INVOICED_ON, due_on=DUE_ON, today=date(2026, 12, 24), sent_keys=())
    assert [r.key for r in first] == [r.key for r in again] == ["countdown-7@2026-12-31"]
    moved = reminders_due(
        invoiced_on=INVOICED_ON, due_on=date(2027, 1, 31), today=date(2027, 1, 24), sent_keys=()
    )
    assert [r.key for r in moved] == ["countdown-7@2027-01-31"]


def test_nothing_before_the_invoice_date() -> None:
    assert reminders_due(invoiced_on=INVOICED_ON, due_on=DUE_ON, today=date(2026, 11, 30), sent_keys=()) == []


def test_short_terms_skip_countdowns_that_would_precede_the_invoice() -> None:
    invoiced, due = date(2026, 12, 1), date(2026, 12, 5)  # 4-day term: no 7-day countdown
    assert [d for d, _, _ in reminder_schedule(invoiced, due, due)] == [
        date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 4), date(2026, 12, 5),
    ]  # fmt: skip
    pushed = run_daily_job(invoiced, date(2026, 12, 5), invoiced_on=invoiced, due_on=due)
    assert pushed[0] == (invoiced, "已开票，距可催款还有 4 天")


def test_zero_term_says_collect_today_once() -> None:
    pushed = run_daily_job(INVOICED_ON, date(2026, 12, 4), invoiced_on=INVOICED_ON, due_on=INVOICED_ON)
    assert pushed == [
        (date(2026, 12, 1), "已开票，今日可催款"),
        (date(2026, 12, 4), "已逾期 3 天，请尽快催款"),
    ]


def test_subject_prefix_and_custom_policy() -> None:
    (r,) = reminders_due(
        invoiced_on=INVOICED_ON, due_on=DUE_ON, today=DUE_ON, sent_keys=(), subject="HT2026001 第2期"
    )
    assert r.text == "【HT2026001 第2期】今日可催款"
    policy = ReminderPolicy(countdown_days=(5,), overdue_every_days=7)
    assert [d for d, _, _ in reminder_schedule(INVOICED_ON, DUE_ON, date(2027, 1, 14), policy)] == [
        date(2026, 12, 1), date(2026, 12, 26), date(2026, 12, 31), date(2027, 1, 7), date(2027, 1, 14),
    ]  # fmt: skip


def test_schedule_lists_the_worked_example_dates() -> None:
    schedule = reminder_schedule(INVOICED_ON, DUE_ON, date(2027, 1, 6))
    assert [(d, kind) for d, _, kind in schedule] == [
        (date(2026, 12, 1), ReminderKind.INVOICED),
        (date(2026, 12, 24), ReminderKind.COUNTDOWN),
        (date(2026, 12, 28), ReminderKind.COUNTDOWN),
        (date(2026, 12, 30), ReminderKind.COUNTDOWN),
        (date(2026, 12, 31), ReminderKind.DUE_TODAY),
        (date(2027, 1, 3), ReminderKind.OVERDUE),
        (date(2027, 1, 6), ReminderKind.OVERDUE),
    ]
    assert len({key for _, key, _ in schedule}) == len(schedule)
