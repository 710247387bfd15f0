"""Stress test: three scenarios of expected collections over 90 days, and reps whose cash piles up at
month end."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from domain.promises import Grade
from domain.stress_test import (
    BASE,
    OPTIMISTIC,
    PESSIMISTIC,
    ExpectedCollection,
    ExpectedPayment,
    GradeAssumption,
    StressTestConfig,
    daily_series,
    expected_collection,
    in_month_end,
    run_stress_test,
)
from tests.domain.worked_example import DECEMBER_PROMISES, PROMISE_A, PROMISE_B, PROMISE_C

D = Decimal
TODAY = date(2026, 12, 1)
NAMES = {"zhangsan": "张三", "lisi": "李四"}


def worked_example_payments() -> list[ExpectedPayment]:
    return [
        ExpectedPayment.from_promise(p, rep_name=NAMES[p.rep_id], customer_below_threshold=False)
        for p in DECEMBER_PROMISES
    ]


def pay(rep: str, grade: Grade, amount: str, on: date, below: bool = False) -> ExpectedPayment:
    return ExpectedPayment(rep, NAMES.get(rep, rep), grade, D(amount), on, below)


def test_default_scenarios_are_the_spec() -> None:
    assert (OPTIMISTIC.a, OPTIMISTIC.b, OPTIMISTIC.c) == (
        GradeAssumption(D("1"), 0), GradeAssumption(D("0.95"), 0), GradeAssumption(D("0.70"), 7),
    )  # fmt: skip
    assert (BASE.a, BASE.b, BASE.c) == (
        GradeAssumption(D("0.95"), 0), GradeAssumption(D("0.80"), 7), GradeAssumption(D("0.40"), 30),
    )  # fmt: skip
    assert (PESSIMISTIC.a, PESSIMISTIC.b, PESSIMISTIC.c) == (
        GradeAssumption(D("0.85"), 7), GradeAssumption(D("0.60"), 30), GradeAssumption(D("0.10"), 60),
    )  # fmt: skip
    config = StressTestConfig()
    assert config.scenarios == (OPTIMISTIC, BASE, PESSIMISTIC)
    assert (config.below_threshold_factor, config.horizon_days, config.month_end_days) == (D("0.5"), 90, 3)
    assert config.concentration_flag_at == D("0.5")


def test_worked_example_base_scenario() -> None:
    a, b, c = (expected_collection(p, BASE) for p in worked_example_payments())
    assert (a.on, a.amount) == (date(2026, 12, 10), D("95000.00"))
    assert (b.on, b.amount) == (date(2026, 12, 17), D("40000.00"))
    assert (c.on, c.amount) == (PROMISE_C.promised_on + timedelta(days=30), D("12000.00"))
    assert c.on == date(2027, 1, 14)


def test_worked_example_other_scenarios() -> None:
    payments = worked_example_payments()
    assert [(e.on, e.amount) for e in (expected_collection(p, OPTIMISTIC) for p in payments)] == [
        (date(2026, 12, 10), D("100000.00")),
        (date(2026, 12, 10), D("47500.00")),
        (date(2026, 12, 22), D("21000.00")),
    ]
    assert [(e.on, e.amount) for e in (expected_collection(p, PESSIMISTIC) for p in payments)] == [
        (date(2026, 12, 17), D("85000.00")),
        (date(2027, 1, 9), D("30000.00")),
        (date(2027, 2, 13), D("3000.00")),
    ]


def test_worked_example_report_over_90_days() -> None:
    report = run_stress_test(worked_example_payments(), TODAY)
    optimistic, base, pessimistic = report.outcomes
    assert [o.scenario.key for o in report.outcomes] == ["optimistic", "base", "pessimistic"]
    assert len(base.daily) == 90
    assert base.daily[0].on == TODAY
    assert base.daily[-1].on == date(2027, 2, 28)
    by_day = {d.on: d.amount for d in base.daily}
    assert by_day[date(2026, 12, 10)] == D("95000.00")
    assert by_day[date(2026, 12, 17)] == D("40000.00")
    assert by_day[date(2027, 1, 14)] == D("12000.00")
    assert by_day[date(2026, 12, 11)] == D("0.00")
    assert base.total == D("147000.00")
    assert optimistic.total == D("168500.00")
    assert pessimistic.total == D("118000.00")
    assert report.summary_lines()[:3] == [
        "乐观：未来 90 天预计回款 ¥168,500.00",
        "基准：未来 90 天预计回款 ¥147,000.00",
        "悲观：未来 90 天预计回款 ¥118,000.00",
    ]


def test_customers_rated_below_the_threshold_count_half() -> None:
    risky = ExpectedPayment.from_promise(PROMISE_A, rep_name="张三", customer_below_threshold=True)
    assert expected_collection(risky, BASE).amount == D("47500.00")  # 100,000 × 95% × 0.5
    config = StressTestConfig(below_threshold_factor=D("0.2"))
    assert run_stress_test([risky], TODAY, config).outcomes[1].total == D("19000.00")


def test_amounts_round_half_up_to_the_fen() -> None:
    odd = pay("lisi", Grade.C, "0.05", TODAY)  # 0.05 × 0.40 = 0.02; × 0.5 = 0.01
    assert expected_collection(odd, BASE).amount == D("0.02")
    assert expected_collection(replace(odd, customer_below_threshold=True), BASE).amount == D("0.01")
    assert expected_collection(pay("lisi", Grade.C, "0.01", TODAY), BASE).amount == D("0.00")  # 0.004


def test_collections_outside_the_90_days_are_left_out() -> None:
    payments = [
        pay("lisi", Grade.A, "100", TODAY - timedelta(days=1)),  # yesterday
        pay("lisi", Grade.A, "100", TODAY + timedelta(days=89)),  # last day in
        pay("lisi", Grade.A, "100", TODAY + timedelta(days=90)),  # first day out
        pay("lisi", Grade.C, "100", TODAY + timedelta(days=70)),  # base: +30 → out
    ]
    base = run_stress_test(payments, TODAY).outcomes[1]
    assert base.total == D("95.00")
    series = daily_series([ExpectedCollection("x", Grade.A, TODAY + timedelta(days=3), D("1"))], TODAY, 5)
    assert [d.amount for d in series] == [D("0"), D("0"), D("0"), D("1"), D("0")]


def test_a_custom_scenario_changes_the_numbers() -> None:
    gloomy = replace(BASE, a=GradeAssumption(D("0.50"), 14))
    report = run_stress_test([pay("zhangsan", Grade.A, "1000", TODAY)], TODAY, StressTestConfig(base=gloomy))
    base = report.outcomes[1]
    assert {d.on: d.amount for d in base.daily if d.amount}[TODAY + timedelta(days=14)] == D("500.00")


# --- month-end concentration -----------------------------------------------------------------------------


def test_month_end_days() -> None:
    assert [in_month_end(date(2026, 12, d)) for d in (28, 29, 30, 31)] == [False, True, True, True]
    assert [in_month_end(date(2027, 2, d)) for d in (25, 26, 27, 28)] == [False, True, True, True]
    assert [in_month_end(date(2028, 2, d)) for d in (26, 27, 28, 29)] == [
        False,
        True,
        True,
        True,
    ]  # leap year


def test_rep_with_82_percent_at_month_end_is_flagged() -> None:
    payments = [
        pay("zhangsan", Grade.A, "82000", date(2026, 12, 30)),  # base: 77,900 on 12-30
        pay("zhangsan", Grade.A, "18000", date(2026, 12, 15)),  # base: 17,100 on 12-15
        pay("lisi", Grade.A, "49000", date(2026, 12, 31)),
        pay("lisi", Grade.A, "51000", date(2026, 12, 10)),
    ]
    report = run_stress_test(payments, TODAY)
    zhangsan, lisi = report.concentrations
    assert (zhangsan.rep_id, zhangsan.share, zhangsan.flagged) == ("zhangsan", D("0.8200"), True)
    assert (lisi.rep_id, lisi.share, lisi.flagged) == ("lisi", D("0.4900"), False)
    assert report.flagged == (zhangsan,)
    assert zhangsan.text == "张三 82% 回款集中在月底最后 3 天"
    assert report.summary_lines()[3:] == ["张三 82% 回款集中在月底最后 3 天"]


def test_concentration_uses_the_base_scenario_dates() -> None:
    # a B promise on 12-22 lands on 12-29 in the base scenario (+7 d): inside the last 3 days
    report = run_stress_test([pay("lisi", Grade.B, "1000", date(2026, 12, 22))], TODAY)
    (lisi,) = report.concentrations
    assert lisi.share == D("1.0000")
    assert lisi.flagged


def test_exactly_half_is_flagged() -> None:
    payments = [
        pay("lisi", Grade.A, "100", date(2026, 12, 29)),
        pay("lisi", Grade.A, "100", date(2026, 12, 1)),
    ]
    (lisi,) = run_stress_test(payments, TODAY).concentrations
    assert lisi.share == D("0.5000")
    assert lisi.flagged
    assert lisi.text == "李四 50% 回款集中在月底最后 3 天"


def test_no_payments_no_concentrations() -> None:
    report = run_stress_test([], TODAY)
    assert report.concentrations == ()
    assert all(o.total == 0 for o in report.outcomes)
    assert PROMISE_B.grade is Grade.B  # the shared example stays what these tests assume
