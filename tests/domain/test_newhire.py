"""New-hire protection: tenure months, the stepped target, and the manager alert once per streak."""

from datetime import date
from decimal import Decimal as D

import pytest

from domain.incentives import Targets
from domain.newhire import (
    MonthOutcome,
    Streak,
    alert_due,
    current_streak,
    protected_target,
    protection_factor,
    regional_average_targets,
    tenure_month,
)

HIRED = date(2026, 8, 15)


def test_hired_2026_08_15_november_is_tenure_month_4_with_protected_target_160000():
    m = tenure_month(HIRED, date(2026, 11, 30))
    assert m == 4
    assert protected_target(D(200_000), m) == D(160_000)


def test_the_hire_month_is_month_1_whatever_the_day():
    assert tenure_month(HIRED, date(2026, 8, 1)) == 1
    assert tenure_month(date(2026, 8, 31), date(2026, 8, 31)) == 1
    assert tenure_month(HIRED, date(2026, 7, 31)) == 0
    assert tenure_month(date(2025, 11, 3), date(2026, 2, 1)) == 4


@pytest.mark.parametrize(
    ("m", "factor"), [(1, "0.6"), (3, "0.6"), (4, "0.8"), (6, "0.8"), (7, "1"), (40, "1")]
)
def test_protection_steps_60_80_100_percent(m, factor):
    assert protection_factor(m) == D(factor)


def test_regional_average_target_is_the_mean_of_members_with_a_target():
    region = [
        Targets(new=D(100_000), renewal=D(50_000), upsell=D(50_000)),
        Targets(new=D(140_000), renewal=D(40_000), upsell=D(20_000)),
        Targets(),  # no target set yet: not part of the average
    ]
    average = regional_average_targets(region)
    assert average == Targets(new=D(120_000), renewal=D(45_000), upsell=D(35_000))
    assert average.total == D(200_000)
    assert average.scaled(protection_factor(4)).total == D(160_000)


def test_a_region_without_targets_has_no_average():
    assert regional_average_targets([]) is None
    assert regional_average_targets([Targets()]) is None


def months(*attained: int, start: date = date(2026, 8, 1), target: int = 120_000) -> list[MonthOutcome]:
    out = []
    year, month = start.year, start.month
    for amount in attained:
        out.append(MonthOutcome(date(year, month, 1), D(amount), D(target)))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def test_three_consecutive_months_below_alert_the_manager():
    history = months(100_000, 90_000, 110_000)
    assert alert_due(history) == Streak(first=date(2026, 8, 1), last=date(2026, 10, 1), months=3)


def test_two_months_below_do_not_alert():
    assert alert_due(months(100_000, 90_000)) is None


def test_meeting_the_target_exactly_breaks_the_streak():
    assert alert_due(months(100_000, 120_000, 90_000, 80_000)) is None


def test_alert_once_per_streak_even_when_it_goes_on_and_the_job_reruns():
    history = months(1, 1, 1)
    streak = alert_due(history)
    assert streak is not None
    alerted = [streak.first]
    assert alert_due(history, alerted) is None  # the job runs again the same night
    assert alert_due(months(1, 1, 1, 1, 1), alerted) is None  # the streak goes on
    assert current_streak(months(1, 1, 1, 1, 1)).months == 5


def test_a_new_streak_after_recovering_alerts_again():
    history = months(1, 1, 1, 200_000, 1, 1, 1)
    alerted = [date(2026, 8, 1)]
    assert alert_due(history, alerted) == Streak(first=date(2026, 12, 1), last=date(2027, 2, 1), months=3)


def test_a_late_job_still_alerts_a_streak_that_grew_past_three():
    assert alert_due(months(1, 1, 1, 1)) == Streak(first=date(2026, 8, 1), last=date(2026, 11, 1), months=4)


def test_a_missing_month_breaks_the_streak_and_order_does_not_matter():
    gap = months(1, 1, 1)
    del gap[1]
    assert alert_due(gap) is None
    assert alert_due(list(reversed(months(1, 1, 1)))) is not None


def test_protected_targets_can_differ_month_to_month():
    # months 3 and 4 of tenure: 72,000 then 96,000; 80,000 attained is below only in month 4
    history = [
        MonthOutcome(date(2026, 9, 1), D(50_000), D(72_000)),
        MonthOutcome(date(2026, 10, 1), D(80_000), D(72_000)),
        MonthOutcome(date(2026, 11, 1), D(80_000), D(96_000)),
    ]
    assert current_streak(history) == Streak(date(2026, 11, 1), date(2026, 11, 1), 1)


def test_no_history_no_alert():
    assert alert_due([]) is None
