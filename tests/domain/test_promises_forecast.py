"""Promises are graded by their evidence; finance plans on A + approved B, sales sees everything with grades;
the month's forecast accuracy compares the first-day snapshot with what actually came in."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from domain.bank_matching import match_bank_line
from domain.forecast import (
    GradeTotals,
    Receipt,
    View,
    finance_forecast,
    forecast_accuracy,
    forecast_by_month,
    forecast_by_week,
    iso_week_key,
    month_key,
    received_against,
    snapshot_finance_forecast,
)
from domain.money import format_percent, format_yuan
from domain.promises import (
    Grade,
    Keeping,
    counts_in_finance_forecast,
    needs_manager_approval,
    promise_grade,
    promise_keeping,
)
from tests.domain.worked_example import (
    BANK_LINE,
    DECEMBER_PROMISES,
    INSTALMENT_1,
    LEDGER,
    PROMISE_A,
    PROMISE_B,
    PROMISE_C,
    YUNQI,
)

D = Decimal
DECEMBER = date(2026, 12, 1)


# --- grades ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("letter", "instalment", "approved", "grade"),
    [
        (True, False, False, Grade.A),  # stamped letter alone is enough
        (True, True, False, Grade.A),  # letter beats a pending approval
        (True, True, True, Grade.A),
        (False, True, True, Grade.B),
        (False, True, False, Grade.C),  # B candidate awaiting approval counts as C
        (False, False, True, Grade.C),  # approval without an instalment means nothing
        (False, False, False, Grade.C),  # verbal
    ],
)
def test_promise_grade(letter: bool, instalment: bool, approved: bool, grade: Grade) -> None:
    assert (
        promise_grade(has_stamped_letter=letter, on_instalment=instalment, manager_approved=approved) is grade
    )


def test_only_a_and_b_count_for_finance() -> None:
    assert counts_in_finance_forecast(Grade.A)
    assert counts_in_finance_forecast(Grade.B)
    assert not counts_in_finance_forecast(Grade.C)


def test_a_b_candidate_goes_to_the_manager_until_approved() -> None:
    pending = replace(PROMISE_B, manager_approved=False)
    assert pending.grade is Grade.C
    assert pending.awaiting_approval
    assert not pending.in_finance_forecast
    assert not PROMISE_B.awaiting_approval
    assert not PROMISE_A.awaiting_approval  # a letter needs nobody's approval
    assert not needs_manager_approval(has_stamped_letter=False, on_instalment=False, manager_approved=False)


def test_worked_example_grades() -> None:
    assert [p.grade for p in DECEMBER_PROMISES] == [Grade.A, Grade.B, Grade.C]


def test_a_kept_promise_is_on_time_up_to_and_including_its_date() -> None:
    assert promise_keeping(date(2026, 12, 10), date(2026, 12, 9)) is Keeping.ON_TIME
    assert promise_keeping(date(2026, 12, 10), date(2026, 12, 10)) is Keeping.ON_TIME
    assert promise_keeping(date(2026, 12, 10), date(2026, 12, 11)) is Keeping.LATE


# --- forecast views --------------------------------------------------------------------------------------


def test_worked_example_finance_sees_150k_and_sales_sees_180k_with_grades() -> None:
    (finance,) = forecast_by_month(DECEMBER_PROMISES, View.FINANCE)
    (sales,) = forecast_by_month(DECEMBER_PROMISES, View.SALES)

    assert finance.period == "2026-12"
    assert finance.totals == GradeTotals(a=D("100000.00"), b=D("50000.00"), c=D("0.00"))
    assert format_yuan(finance.totals.total) == "¥150,000.00"

    assert sales.totals == GradeTotals(a=D("100000.00"), b=D("50000.00"), c=D("30000.00"))
    assert format_yuan(sales.totals.total) == "¥180,000.00"
    assert sales.totals.finance == D("150000.00")

    assert finance_forecast(DECEMBER_PROMISES, date(2026, 12, 1), date(2026, 12, 31)) == D("150000.00")


def test_an_unapproved_b_shows_under_c_for_sales_and_not_at_all_for_finance() -> None:
    pending = replace(PROMISE_B, manager_approved=False)
    (finance,) = forecast_by_month([PROMISE_A, pending, PROMISE_C], View.FINANCE)
    (sales,) = forecast_by_month([PROMISE_A, pending, PROMISE_C], View.SALES)
    assert finance.totals.total == D("100000.00")
    assert sales.totals == GradeTotals(a=D("100000.00"), b=D("0.00"), c=D("80000.00"))


def test_forecast_by_iso_week() -> None:
    # 12-10 is a Thursday in 2026-W50 (Mon 12-07 … Sun 12-13); 12-15 is in W51
    weeks = forecast_by_week(DECEMBER_PROMISES, View.SALES)
    assert [(w.period, w.starts_on, w.ends_on) for w in weeks] == [
        ("2026-W50", date(2026, 12, 7), date(2026, 12, 13)),
        ("2026-W51", date(2026, 12, 14), date(2026, 12, 20)),
    ]
    assert weeks[0].totals == GradeTotals(a=D("100000.00"), b=D("50000.00"))
    assert weeks[1].totals == GradeTotals(c=D("30000.00"))
    assert [w.period for w in forecast_by_week(DECEMBER_PROMISES, View.FINANCE)] == ["2026-W50"]


def test_periods_are_ordered_and_split_at_month_and_iso_year_boundaries() -> None:
    new_year = replace(PROMISE_C, id=4, promised_on=date(2027, 1, 1))
    months = forecast_by_month([new_year, *DECEMBER_PROMISES], View.SALES)
    assert [m.period for m in months] == ["2026-12", "2027-01"]
    assert months[1].ends_on == date(2027, 1, 31)
    # 2027-01-01 is a Friday of ISO week 2026-W53
    assert iso_week_key(date(2027, 1, 1)) == "2026-W53"
    assert iso_week_key(date(2027, 1, 4)) == "2027-W01"
    assert month_key(date(2027, 1, 1)) == "2027-01"


def test_no_promises_no_rows() -> None:
    assert forecast_by_month([], View.SALES) == ()


# --- accuracy --------------------------------------------------------------------------------------------


def test_worked_example_december_accuracy_is_75_percent() -> None:
    snapshot = snapshot_finance_forecast(DECEMBER_PROMISES, DECEMBER)
    assert snapshot.amount == D("150000.00")
    assert snapshot.receivable_ids == {PROMISE_A.receivable_id, PROMISE_B.receivable_id}

    match = match_bank_line(BANK_LINE, LEDGER)
    receipts = [Receipt(a.receivable_id, YUNQI.id, a.amount, BANK_LINE.booked_on) for a in match.allocations]
    received = received_against(snapshot, receipts)
    assert received == D("120000.00")

    accuracy = forecast_accuracy(snapshot.amount, received)
    assert accuracy == D("0.75")
    assert format_percent(accuracy) == "75%"


def test_received_counts_only_the_month_and_the_snapshot_receivables() -> None:
    snapshot = snapshot_finance_forecast(DECEMBER_PROMISES, date(2026, 12, 17))  # any day names the month
    assert snapshot.month == DECEMBER
    receipts = [
        Receipt(INSTALMENT_1.id, YUNQI.id, D("100000"), date(2026, 12, 31)),
        Receipt(INSTALMENT_1.id, YUNQI.id, D("1"), date(2027, 1, 1)),  # next month
        Receipt(INSTALMENT_1.id, YUNQI.id, D("2"), date(2026, 11, 30)),  # previous month
        Receipt(999, 2, D("30000"), date(2026, 12, 20)),  # the C promise's customer: not in F
    ]
    assert received_against(snapshot, receipts) == D("100000")


def test_a_finance_promise_without_receivable_counts_any_receivable_of_its_customer() -> None:
    on_customer = replace(PROMISE_A, receivable_id=None)  # A by letter, on the customer as a whole
    snapshot = snapshot_finance_forecast([on_customer], DECEMBER)
    assert snapshot.customer_ids == {YUNQI.id}
    assert received_against(snapshot, [Receipt(555, YUNQI.id, D("10"), date(2026, 12, 2))]) == D("10")


@pytest.mark.parametrize(
    ("forecast", "received", "accuracy"),
    [
        ("150000", "120000", "0.75"),
        ("120000", "120000", "1"),
        ("90000", "120000", "0.75"),  # under-forecast is as wrong as over-forecast
        ("300000", "100000", "0"),  # 1 − 2 floors at 0
        ("0", "0", "1"),
        ("50000", "0", "0"),  # promised, nothing came
        ("0", "50000", "0"),
        ("100000", "300000", "0.3333"),
    ],
)
def test_forecast_accuracy(forecast: str, received: str, accuracy: str) -> None:
    assert forecast_accuracy(D(forecast), D(received)) == D(accuracy)
