"""Collections stress test: expected cash over the next 90 days in three scenarios (PRODUCT.md §2.4)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from domain.money import format_percent, format_yuan, quantize_yuan
from domain.promises import Grade, Promise

ZERO = Decimal("0.00")

# --- user-visible text (Simplified Chinese) ------------------------------------------------------------
SCENARIO_LINE = "{label}：未来 {days} 天预计回款 {total}"
CONCENTRATION_LINE = "{name} {percent} 回款集中在月底最后 {days} 天"


@dataclass(frozen=True)
class GradeAssumption:
    """What a scenario expects of one grade: ``share`` of the amount, ``delay_days`` after the promised date."""

    share: Decimal
    delay_days: int


@dataclass(frozen=True)
class Scenario:
    """A named scenario: one assumption per grade. ``label`` is how the chat names it."""

    key: str
    label: str
    a: GradeAssumption
    b: GradeAssumption
    c: GradeAssumption

    def assumption(self, grade: Grade) -> GradeAssumption:
        """The assumption for ``grade``."""
        return {Grade.A: self.a, Grade.B: self.b, Grade.C: self.c}[grade]


OPTIMISTIC = Scenario(
    "optimistic", "乐观",
    a=GradeAssumption(Decimal("1.00"), 0),
    b=GradeAssumption(Decimal("0.95"), 0),
    c=GradeAssumption(Decimal("0.70"), 7),
)  # fmt: skip
BASE = Scenario(
    "base", "基准",
    a=GradeAssumption(Decimal("0.95"), 0),
    b=GradeAssumption(Decimal("0.80"), 7),
    c=GradeAssumption(Decimal("0.40"), 30),
)  # fmt: skip
PESSIMISTIC = Scenario(
    "pessimistic", "悲观",
    a=GradeAssumption(Decimal("0.85"), 7),
    b=GradeAssumption(Decimal("0.60"), 30),
    c=GradeAssumption(Decimal("0.10"), 60),
)  # fmt: skip


@dataclass(frozen=True)
class StressTestConfig:
    """Parameters of the stress test (spec defaults); ``base`` is the scenario used for concentration."""

    optimistic: Scenario = OPTIMISTIC
    base: Scenario = BASE
    pessimistic: Scenario = PESSIMISTIC
    below_threshold_factor: Decimal = Decimal("0.5")
    horizon_days: int = 90
    month_end_days: int = 3
    concentration_flag_at: Decimal = Decimal("0.5")

    @property
    def scenarios(self) -> tuple[Scenario, Scenario, Scenario]:
        """Optimistic, base, pessimistic — in that order."""
        return (self.optimistic, self.base, self.pessimistic)


@dataclass(frozen=True)
class ExpectedPayment:
    """One graded promise as the stress test reads it; ``customer_below_threshold`` from the credit rating."""

    rep_id: str
    rep_name: str
    grade: Grade
    amount: Decimal
    promised_on: date
    customer_below_threshold: bool = False

    @classmethod
    def from_promise(
        cls, promise: Promise, *, rep_name: str, customer_below_threshold: bool
    ) -> ExpectedPayment:
        """Build from a ``Promise`` (its effective grade)."""
        return cls(
            promise.rep_id,
            rep_name,
            promise.grade,
            promise.amount,
            promise.promised_on,
            customer_below_threshold,
        )


@dataclass(frozen=True)
class ExpectedCollection:
    """What a scenario expects one promise to bring, and when."""

    rep_id: str
    grade: Grade
    on: date
    amount: Decimal


@dataclass(frozen=True)
class DailyAmount:
    """Expected collections on one day."""

    on: date
    amount: Decimal


@dataclass(frozen=True)
class ScenarioOutcome:
    """One scenario over the horizon: a value for every day (zeros included) and the total."""

    scenario: Scenario
    daily: tuple[DailyAmount, ...]

    @property
    def total(self) -> Decimal:
        """Σ daily."""
        return sum((d.amount for d in self.daily), ZERO)


@dataclass(frozen=True)
class RepConcentration:
    """A rep's month-end concentration in the base scenario; ``share`` has 4 decimals."""

    rep_id: str
    rep_name: str
    month_end_amount: Decimal
    total: Decimal
    share: Decimal
    flagged: bool
    month_end_days: int

    @property
    def text(self) -> str:
        """``张三 82% 回款集中在月底最后 3 天``."""
        return CONCENTRATION_LINE.format(
            name=self.rep_name, percent=format_percent(self.share), days=self.month_end_days
        )


@dataclass(frozen=True)
class StressTestReport:
    """Everything ``压力测试`` shows: three scenario series and per-rep concentration (highest first)."""

    starts_on: date
    outcomes: tuple[ScenarioOutcome, ...]
    concentrations: tuple[RepConcentration, ...]

    @property
    def flagged(self) -> tuple[RepConcentration, ...]:
        """Reps at or above the concentration threshold."""
        return tuple(c for c in self.concentrations if c.flagged)

    def summary_lines(self) -> list[str]:
        """One line per scenario total, then one line per flagged rep."""
        lines = [
            SCENARIO_LINE.format(label=o.scenario.label, days=len(o.daily), total=format_yuan(o.total))
            for o in self.outcomes
        ]
        return lines + [c.text for c in self.flagged]


def expected_collection(
    payment: ExpectedPayment, scenario: Scenario, below_threshold_factor: Decimal = Decimal("0.5")
) -> ExpectedCollection:
    """amount × share(grade) × (factor if the customer is rated below the threshold else 1), rounded to the
    fen half-up, on promised_on + delay_days(grade)."""
    assumption = scenario.assumption(payment.grade)
    factor = below_threshold_factor if payment.customer_below_threshold else Decimal(1)
    return ExpectedCollection(
        rep_id=payment.rep_id,
        grade=payment.grade,
        on=payment.promised_on + timedelta(days=assumption.delay_days),
        amount=quantize_yuan(payment.amount * assumption.share * factor),
    )


def daily_series(
    collections: Iterable[ExpectedCollection], starts_on: date, days: int
) -> tuple[DailyAmount, ...]:
    """Σ amount per day for starts_on … starts_on + days − 1; collections outside that window are left out."""
    totals = {starts_on + timedelta(days=i): ZERO for i in range(days)}
    for c in collections:
        if c.on in totals:
            totals[c.on] += c.amount
    return tuple(DailyAmount(day, amount) for day, amount in totals.items())


def in_month_end(day: date, last_days: int = 3) -> bool:
    """True when ``day`` is one of the last ``last_days`` days of its month (Dec 29, 30, 31 for 3)."""
    return day.day > calendar.monthrange(day.year, day.month)[1] - last_days


def month_end_concentration(
    collections: Iterable[ExpectedCollection], rep_names: Mapping[str, str], config: StressTestConfig
) -> tuple[RepConcentration, ...]:
    """Per rep: share = Σ amount on month-end days / Σ amount; flagged when share ≥ the threshold.

    Reps with nothing expected are left out. Ordered by share (desc), then rep id.
    """
    month_end: dict[str, Decimal] = {}
    total: dict[str, Decimal] = {}
    for c in collections:
        total[c.rep_id] = total.get(c.rep_id, ZERO) + c.amount
        if in_month_end(c.on, config.month_end_days):
            month_end[c.rep_id] = month_end.get(c.rep_id, ZERO) + c.amount
    rows = []
    for rep_id, rep_total in total.items():
        if rep_total <= 0:
            continue
        at_end = month_end.get(rep_id, ZERO)
        share = at_end / rep_total
        rows.append(
            RepConcentration(
                rep_id=rep_id,
                rep_name=rep_names.get(rep_id, rep_id),
                month_end_amount=at_end,
                total=rep_total,
                share=share.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                flagged=share >= config.concentration_flag_at,
                month_end_days=config.month_end_days,
            )
        )
    return tuple(sorted(rows, key=lambda r: (-r.share, r.rep_id)))


def run_stress_test(
    payments: Iterable[ExpectedPayment], today: date, config: StressTestConfig | None = None
) -> StressTestReport:
    """The three scenarios over today … today + horizon − 1, and base-scenario month-end concentration.

    Only collections expected inside the horizon count (for the series and for concentration).
    """
    cfg = config or StressTestConfig()
    items = list(payments)
    rep_names = {p.rep_id: p.rep_name for p in items}
    horizon_end = today + timedelta(days=cfg.horizon_days)
    outcomes = tuple(
        ScenarioOutcome(
            scenario,
            daily_series(
                (expected_collection(p, scenario, cfg.below_threshold_factor) for p in items),
                today,
                cfg.horizon_days,
            ),
        )
        for scenario in cfg.scenarios
    )
    base = [expected_collection(p, cfg.base, cfg.below_threshold_factor) for p in items]
    in_horizon = [c for c in base if today <= c.on < horizon_end]
    return StressTestReport(
        starts_on=today,
        outcomes=outcomes,
        concentrations=month_end_concentration(in_horizon, rep_names, cfg),
    )
