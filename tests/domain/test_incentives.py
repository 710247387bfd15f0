"""Dual-track score: the worked example of issue 7 (November 2026, rep 李四) and its edges."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from domain.incentives import (
    Attainment,
    DealType,
    DualTrackScore,
    MonthActivity,
    SignedDeal,
    Targets,
    attainment,
    credited_amount,
    diagnosis_rate,
    dual_track_score,
    month_end,
    month_weeks,
    process_score,
    renewal_factor,
    result_score,
    round_money,
    round_score,
    score_month,
    scoring_period,
    week_counts,
)

NOVEMBER = date(2026, 11, 1)
LI_SI_TARGETS = Targets(new=D(100_000), renewal=D(50_000), upsell=D(50_000))
LI_SI_DEALS = (
    SignedDeal(DealType.NEW, D(80_000)),
    SignedDeal(DealType.RENEWAL, D(40_000), customer_health=D(55)),
    SignedDeal(DealType.RENEWAL, D(10_000), customer_health=D(80)),
    SignedDeal(DealType.UPSELL, D(20_000)),
)


def li_si_visit_days() -> list[date]:
    """10, 8, 6, 8 quality visits in the four weeks November 2026 owns."""
    days = []
    for monday, count in zip(month_weeks(NOVEMBER), (10, 8, 6, 8), strict=True):
        days += [monday + timedelta(days=i % 5) for i in range(count)]
    return days


# --- the worked example ---------------------------------------------------------------------------


def test_november_2026_owns_four_weeks_from_monday_2_to_sunday_29():
    assert month_weeks(NOVEMBER) == (
        date(2026, 11, 2),
        date(2026, 11, 9),
        date(2026, 11, 16),
        date(2026, 11, 23),
    )
    period = scoring_period(date(2026, 11, 17))
    assert (period.visits_from, period.visits_to, period.weeks) == (date(2026, 11, 2), date(2026, 11, 29), 4)
    assert (period.days_from, period.days_to) == (date(2026, 11, 1), date(2026, 11, 30))


def test_li_si_visits_10_8_6_8_average_8_give_the_full_visit_part_50():
    visits = li_si_visit_days()
    assert week_counts(visits, NOVEMBER) == (10, 8, 6, 8)
    process = process_score(
        len(visits), scoring_period(NOVEMBER).weeks, diagnosis_reports=3, diagnosis_entered=4
    )
    assert process.visit_part == D("50.0")


def test_li_si_3_of_4_diagnosis_reports_give_37_5_and_process_87_5():
    process = process_score(32, D(4), diagnosis_reports=3, diagnosis_entered=4)
    assert process.diagnosis_part == D("37.5")
    assert process.value == D("87.5")


def test_li_si_weighted_target_is_75000():
    assert LI_SI_TARGETS.weighted == D(75_000)


def test_li_si_renewals_count_38000_because_the_health_55_customer_counts_at_70_percent():
    attained = attainment(LI_SI_DEALS)
    assert attained == Attainment(new=D(80_000), renewal=D(38_000), upsell=D(20_000))
    assert attained.weighted == D(55_400)


def test_li_si_result_is_73_87_and_total_82_05():
    result = result_score(attainment(LI_SI_DEALS), LI_SI_TARGETS)
    assert round_score(result) == D("73.87")
    score = dual_track_score(process_score(32, D(4), 3, 4), result)
    assert score.rounded() == DualTrackScore(process=D("87.50"), result=D("73.87"), total=D("82.05"))


def test_score_month_puts_the_example_together():
    activity = MonthActivity(
        quality_visits=len(li_si_visit_days()), diagnosis_entered=4, diagnosis_reports=3, deals=LI_SI_DEALS
    )
    score = score_month(activity, LI_SI_TARGETS, scoring_period(NOVEMBER))
    assert score.rounded().total == D("82.05")


def test_total_is_computed_exactly_and_rounded_only_at_the_end():
    # 0.6 × 87.5 + 0.4 × 73.8666… = 82.04666…; rounding the result first would give 82.048.
    score = dual_track_score(
        process_score(32, D(4), 3, 4), result_score(attainment(LI_SI_DEALS), LI_SI_TARGETS)
    )
    assert abs(score.total - D("82.0466666666")) < D("1e-9")
    assert score.result != round_score(score.result)


# --- edges ----------------------------------------------------------------------------------------


def test_result_is_capped_at_150():
    huge = attainment([SignedDeal(DealType.NEW, D(1_000_000))])
    assert result_score(huge, LI_SI_TARGETS) == D(150)


def test_without_any_target_there_is_no_result_and_no_total():
    assert result_score(attainment(LI_SI_DEALS), Targets()) is None
    score = dual_track_score(process_score(32, D(4), 3, 4), None)
    assert score.total is None and score.process == D("87.5")
    assert score.rounded().result is None


def test_a_track_without_target_still_counts_through_the_weighted_target():
    targets = Targets(new=D(100_000))
    assert result_score(Attainment(new=D(50_000), upsell=D(50_000)), targets) == D(70)


def test_visits_above_8_a_week_do_not_raise_the_visit_part_above_50():
    assert process_score(80, D(4), 4, 4).visit_part == D(50)
    assert process_score(16, D(4), 4, 4).visit_part == D(25)


def test_no_opportunity_entered_diagnosis_so_visits_carry_the_whole_process_track():
    process = process_score(16, D(4), diagnosis_reports=0, diagnosis_entered=0)
    assert process.diagnosis_part is None
    assert process.value == D(50)
    assert diagnosis_rate(0, 0) is None


def test_more_reports_than_entries_count_as_100_percent():
    assert diagnosis_rate(5, 4) == 1


def test_renewals_are_discounted_only_under_health_60_on_the_shown_score():
    assert renewal_factor(D("59.99")) == D("0.7")
    assert renewal_factor(D("59.996")) == 1
    assert renewal_factor(D(60)) == 1
    assert renewal_factor(None) == 1
    assert credited_amount(DealType.NEW, D(100), D(10)) == D(100)
    assert credited_amount(DealType.RENEWAL, D(100), D(10)) == D(70)


def test_month_to_date_counts_the_elapsed_days_of_the_owned_weeks():
    # Wednesday 2026-11-04: three days of the first owned week have passed.
    period = scoring_period(NOVEMBER, as_of=date(2026, 11, 4))
    assert period.weeks == D(3) / 7
    assert (period.visits_from, period.visits_to) == (date(2026, 11, 2), date(2026, 11, 4))
    assert (period.days_from, period.days_to) == (date(2026, 11, 1), date(2026, 11, 4))
    # 4 quality visits in 3 days is 9⅓ a week: the full visit part already.
    assert process_score(4, period.weeks, 0, 0).visit_part == D(100)
    assert round_score(process_score(2, period.weeks, 1, 2).visit_part) == D("29.17")  # 50 × (2 ÷ 3/7) / 8


def test_month_to_date_before_the_first_owned_week_has_no_visit_credit():
    period = scoring_period(NOVEMBER, as_of=date(2026, 11, 1))
    assert period.weeks == 0
    assert process_score(3, period.weeks, 1, 1).visit_part == 0


def test_month_to_date_on_the_last_day_of_the_month_equals_the_whole_month():
    assert scoring_period(NOVEMBER, as_of=date(2026, 11, 30)).weeks == 4
    assert scoring_period(NOVEMBER, as_of=date(2026, 12, 3)) == scoring_period(NOVEMBER)


def test_a_month_starting_on_thursday_owns_five_weeks_beginning_the_monday_before():
    october = month_weeks(date(2026, 10, 15))
    assert october[0] == date(2026, 9, 28) and len(october) == 5
    assert week_counts([date(2026, 11, 1)], date(2026, 10, 1)) == (0, 0, 0, 0, 1)
    assert week_counts([date(2026, 11, 1)], NOVEMBER) == (0, 0, 0, 0)


def test_month_end_handles_february_and_december():
    assert month_end(date(2028, 2, 10)) == date(2028, 2, 29)
    assert month_end(date(2026, 12, 31)) == date(2026, 12, 31)


def test_money_and_scores_round_half_up():
    assert round_money(D("840.005")) == D("840.01")
    assert round_score(D("73.865")) == D("73.87")


@pytest.mark.parametrize("deal_type", list(DealType))
def test_each_track_has_its_weight(deal_type):
    weights = {DealType.NEW: D("0.5"), DealType.RENEWAL: D("0.3"), DealType.UPSELL: D("0.2")}
    one = Targets(**{deal_type.name.lower(): D(1000)})
    assert one.weighted == weights[deal_type] * 1000
