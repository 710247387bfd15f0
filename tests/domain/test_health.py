"""Customer health: the worked example (76.15, yellow), renormalisation and bands."""

from decimal import Decimal as D

import pytest

from domain.health import (
    BAND_LABELS,
    DEFAULT_HEALTH_CONFIG,
    Band,
    HealthConfig,
    HealthSignals,
    Signal,
    health_band,
    health_score,
    net_promoter_score,
    per_week,
    recency_signal,
    signal_values,
)

# NPS 40: 6 promoters, 2 passives, 2 detractors out of 10 answers.
NPS_40 = (10, 9, 9, 10, 9, 10, 8, 7, 5, 3)

EXAMPLE = HealthSignals(
    nps_answers=NPS_40,
    logins_per_week=D(3),
    tickets_opened=10,
    tickets_resolved=9,
    features_licensed=10,
    features_used=5,
    receivables_due=4,
    receivables_paid_on_time=4,
    days_since_last_contact=10,
)


def test_the_example_customer_scores_76_15_yellow():
    health = health_score(EXAMPLE)
    assert health.rounded == D("76.15")
    assert health.band is Band.YELLOW
    assert BAND_LABELS[health.band] == "黄"


def test_each_signal_of_the_example_maps_as_the_spec_says():
    values = signal_values(EXAMPLE)
    assert values[Signal.NPS] == D(70)
    assert values[Signal.LOGINS] == D(60)
    assert values[Signal.TICKETS] == D(90)
    assert values[Signal.ADOPTION] == D(50)
    assert values[Signal.PAYMENTS] == D(100)
    assert values[Signal.RECENCY] == D(100) * 50 / 53


def test_nps_is_promoters_minus_detractors_in_percent():
    assert net_promoter_score(NPS_40) == D(40)
    assert net_promoter_score([0, 6]) == D(-100)
    assert net_promoter_score([7, 8]) == D(0)
    assert net_promoter_score([]) is None
    with pytest.raises(ValueError):
        net_promoter_score([11])


def test_recency_is_full_to_7_days_zero_from_60_and_linear_between():
    assert recency_signal(0) == 100
    assert recency_signal(7) == 100
    assert recency_signal(60) == 0
    assert recency_signal(90) == 0
    assert recency_signal(8) == D(100) * 52 / 53


def test_logins_cap_at_5_a_week_and_per_week_converts_a_window():
    assert signal_values(HealthSignals(logins_per_week=D(12)))[Signal.LOGINS] == 100
    assert per_week(12, 28) == 3


def test_a_missing_signal_is_left_out_and_the_others_renormalised():
    no_nps = HealthSignals(
        logins_per_week=D(3),
        tickets_opened=10,
        tickets_resolved=9,
        features_licensed=10,
        features_used=5,
        receivables_due=4,
        receivables_paid_on_time=4,
        days_since_last_contact=10,
    )
    health = health_score(no_nps)
    assert Signal.NPS not in health.signals
    # (12 + 13.5 + 7.5 + 15 + 14.1509…) / 0.8 = 77.6886…
    assert health.rounded == D("77.69")


def test_a_zero_denominator_is_a_missing_signal_not_a_zero():
    only_two = HealthSignals(
        tickets_opened=0,
        tickets_resolved=0,
        features_licensed=0,
        features_used=0,
        receivables_due=4,
        receivables_paid_on_time=2,
        days_since_last_contact=3,
    )
    health = health_score(only_two)
    assert set(health.signals) == {Signal.PAYMENTS, Signal.RECENCY}
    assert health.score == D(75)


def test_no_signal_at_all_gives_no_score_and_no_band():
    health = health_score(HealthSignals())
    assert health.score is None and health.rounded is None and health.band is None


def test_shares_above_100_percent_are_capped():
    health = health_score(HealthSignals(tickets_opened=3, tickets_resolved=5))
    assert health.score == 100


def test_weights_are_configurable():
    nps_only_counts = HealthConfig(
        logins_weight=D(0),
        tickets_weight=D(0),
        adoption_weight=D(0),
        payments_weight=D(0),
        recency_weight=D(0),
    )
    assert health_score(EXAMPLE, nps_only_counts).score == D(70)


def test_constants_are_configurable():
    stricter = HealthConfig(logins_per_week_full=D(6), recency_full_days=3, recency_zero_days=13)
    values = signal_values(EXAMPLE, stricter)
    assert values[Signal.LOGINS] == 50
    assert values[Signal.RECENCY] == 30


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (D("59.99"), Band.RED),
        (D("59.995"), Band.YELLOW),
        (D(60), Band.YELLOW),
        (D("79.99"), Band.YELLOW),
        (D(80), Band.GREEN),
        (D(0), Band.RED),
        (D(100), Band.GREEN),
    ],
)
def test_bands_red_below_60_yellow_to_79_green_from_80(score, band):
    assert health_band(score, DEFAULT_HEALTH_CONFIG) is band
