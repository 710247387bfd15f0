"""The dual-track monthly score (双轨制, PRODUCT.md §3): total = 0.6 × process + 0.4 × result.

Scores are computed exactly in Decimal and rounded to 0.01 (ROUND_HALF_UP) only by ``round_score`` /
``DualTrackScore.rounded()`` when they are shown or stored.

Weeks of a month: a month owns the Monday–Sunday weeks whose Thursday falls in it (the rule ISO 8601
uses to give weeks to years). Every week belongs to exactly one month and a month has 4 or 5 whole
weeks (November 2026: 11-02 … 11-29, four weeks). A quality visit counts towards the month that owns
its week, so a visit on Sunday 2026-11-01 counts for October. Diagnosis reports and signed deals use
the calendar month.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

PROCESS_WEIGHT = Decimal("0.6")
RESULT_WEIGHT = Decimal("0.4")
RESULT_CAP = Decimal(150)

# A renewal from a customer whose health is below this counts at the factor, both in the result
# track (renewal′) and in the bonus.
AT_RISK_HEALTH_BELOW = Decimal(60)
AT_RISK_RENEWAL_FACTOR = Decimal("0.7")


def round_score(value: Decimal) -> Decimal:
    """A score for display or storage: value rounded to 0.01, ROUND_HALF_UP."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def round_money(value: Decimal) -> Decimal:
    """An amount of money: value rounded to ¥0.01, ROUND_HALF_UP."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class DealType(StrEnum):
    """The opportunity type 商机类型; the value is what storage keeps."""

    NEW = "new"
    RENEWAL = "renewal"
    UPSELL = "upsell"


DEAL_TYPE_LABELS: dict[DealType, str] = {
    DealType.NEW: "新签",
    DealType.RENEWAL: "续费",
    DealType.UPSELL: "增购",
}
DEAL_TYPE_BY_WORD: dict[str, DealType] = {label: kind for kind, label in DEAL_TYPE_LABELS.items()}

TRACK_WEIGHTS: dict[DealType, Decimal] = {
    DealType.NEW: Decimal("0.5"),
    DealType.RENEWAL: Decimal("0.3"),
    DealType.UPSELL: Decimal("0.2"),
}


def renewal_factor(customer_health: Decimal | None) -> Decimal:
    """How much of a renewal counts: 0.7 when round_score(health) < 60, else 1.

    Compared on the rounded score people see (59.996 shows as 60.00 and counts in full). A customer
    without any health signal (None) shows no risk and counts in full.
    """
    if customer_health is not None and round_score(customer_health) < AT_RISK_HEALTH_BELOW:
        return AT_RISK_RENEWAL_FACTOR
    return Decimal(1)


def credited_amount(deal_type: DealType, amount: Decimal, customer_health: Decimal | None) -> Decimal:
    """The part of a signed amount that counts: amount × renewal_factor(health) for renewals, else amount."""
    if deal_type is DealType.RENEWAL:
        return amount * renewal_factor(customer_health)
    return amount


# --- targets and the result track -----------------------------------------------------------------


@dataclass(frozen=True)
class TrackAmounts:
    """An amount per track (新签 / 续费 / 增购), in yuan."""

    new: Decimal = Decimal(0)
    renewal: Decimal = Decimal(0)
    upsell: Decimal = Decimal(0)

    def of(self, deal_type: DealType) -> Decimal:
        """The amount of one track."""
        return {DealType.NEW: self.new, DealType.RENEWAL: self.renewal, DealType.UPSELL: self.upsell}[
            deal_type
        ]

    @property
    def weighted(self) -> Decimal:
        """0.5 × new + 0.3 × renewal + 0.2 × upsell."""
        return sum((TRACK_WEIGHTS[t] * self.of(t) for t in DealType), Decimal(0))

    @property
    def total(self) -> Decimal:
        """new + renewal + upsell."""
        return self.new + self.renewal + self.upsell


@dataclass(frozen=True)
class Targets(TrackAmounts):
    """A member's monthly targets per track (the total is what new-hire protection scales)."""

    def scaled(self, factor: Decimal) -> Targets:
        """Every track × factor."""
        return Targets(self.new * factor, self.renewal * factor, self.upsell * factor)


@dataclass(frozen=True)
class SignedDeal:
    """A signed amount in the period; customer_health is the customer's score when it was signed."""

    deal_type: DealType
    amount: Decimal
    customer_health: Decimal | None = None


@dataclass(frozen=True)
class Attainment(TrackAmounts):
    """Credited amounts per track: renewal is renewal′ (at-risk renewals × 0.7)."""


def attainment(deals: Iterable[SignedDeal]) -> Attainment:
    """Sum of credited_amount per track over the period's signed deals."""
    sums = {t: Decimal(0) for t in DealType}
    for deal in deals:
        sums[deal.deal_type] += credited_amount(deal.deal_type, deal.amount, deal.customer_health)
    return Attainment(sums[DealType.NEW], sums[DealType.RENEWAL], sums[DealType.UPSELL])


def result_score(attained: Attainment, targets: Targets) -> Decimal | None:
    """min(150, attained.weighted / targets.weighted × 100); None when the weighted target is 0 (no target set)."""
    if targets.weighted <= 0:
        return None
    return min(RESULT_CAP, attained.weighted / targets.weighted * HUNDRED)


# --- weeks and the process track ------------------------------------------------------------------

VISITS_PER_WEEK_GOAL = Decimal(8)
VISIT_SHARE = Decimal("0.5")
DIAGNOSIS_SHARE = Decimal("0.5")


def month_start(day: date) -> date:
    """The first day of the calendar month containing day."""
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of the calendar month containing day."""
    first_of_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_of_next - timedelta(days=1)


def _monday_of_thursday_week(thursday: date) -> date:
    return thursday - timedelta(days=3)


def month_weeks(month: date) -> tuple[date, ...]:
    """The Mondays of the weeks the month owns: weeks whose Thursday is in the month (4 or 5)."""
    first = month_start(month)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    mondays = []
    thursday = first_thursday
    while thursday.month == first.month:
        mondays.append(_monday_of_thursday_week(thursday))
        thursday += timedelta(days=7)
    return tuple(mondays)


def week_counts(visit_days: Iterable[date], month: date) -> tuple[int, ...]:
    """Quality visits per owned week of the month, in week order; days outside those weeks are ignored."""
    mondays = month_weeks(month)
    counts = [0] * len(mondays)
    for day in visit_days:
        monday = day - timedelta(days=day.weekday())
        if monday in mondays:
            counts[mondays.index(monday)] += 1
    return tuple(counts)


@dataclass(frozen=True)
class ScoringPeriod:
    """What to select for a month's score, all bounds inclusive.

    Quality visits: visits_from … visits_to. Signed deals and diagnosis entries: days_from … days_to.
    weeks is the divisor of the weekly visit average: the number of owned weeks for the whole month,
    elapsed days of the owned weeks / 7 for month-to-date.
    """

    month: date
    visits_from: date
    visits_to: date
    days_from: date
    days_to: date
    weeks: Decimal


def scoring_period(month: date, as_of: date | None = None) -> ScoringPeriod:
    """The whole month (as_of None) or the month to date (as_of inclusive; weeks = elapsed owned days / 7)."""
    mondays = month_weeks(month)
    weeks_from, weeks_to = mondays[0], mondays[-1] + timedelta(days=6)
    first, last = month_start(month), month_end(month)
    if as_of is None or as_of >= max(last, weeks_to):
        return ScoringPeriod(first, weeks_from, weeks_to, first, last, Decimal(len(mondays)))
    elapsed_days = min(max((as_of - weeks_from).days + 1, 0), len(mondays) * 7)
    return ScoringPeriod(
        month=first,
        visits_from=weeks_from,
        visits_to=min(as_of, weeks_to),
        days_from=first,
        days_to=min(as_of, last),
        weeks=Decimal(elapsed_days) / 7,
    )


@dataclass(frozen=True)
class ProcessScore:
    """The process track, 0–100: visit_part + diagnosis_part.

    diagnosis_part is None when no opportunity entered 需求诊断 in the period; the visit part then
    carries the whole track (renormalised like a missing health signal) instead of scoring 0.
    """

    visit_part: Decimal
    diagnosis_part: Decimal | None

    @property
    def value(self) -> Decimal:
        """visit_part + diagnosis_part (or visit_part alone when it was renormalised)."""
        return self.visit_part + (self.diagnosis_part or Decimal(0))


def visit_ratio(quality_visits: int, weeks: Decimal) -> Decimal:
    """min(1, (quality_visits / weeks) / 8); 0 when no week has elapsed yet."""
    if weeks <= 0:
        return Decimal(0)
    return min(Decimal(1), Decimal(quality_visits) / weeks / VISITS_PER_WEEK_GOAL)


def diagnosis_rate(reports: int, entered: int) -> Decimal | None:
    """min(1, reports / entered); None when no opportunity entered 需求诊断."""
    if entered <= 0:
        return None
    return min(Decimal(1), Decimal(reports) / Decimal(entered))


def process_score(
    quality_visits: int, weeks: Decimal, diagnosis_reports: int, diagnosis_entered: int
) -> ProcessScore:
    """(50% × visit_ratio + 50% × diagnosis_rate) × 100; visit_ratio × 100 when nothing entered 需求诊断.

    quality_visits are those in the period's owned weeks, weeks is ScoringPeriod.weeks;
    diagnosis_entered counts opportunities that entered 需求诊断 in the period, diagnosis_reports how
    many of those have a diagnosis report.
    """
    ratio = visit_ratio(quality_visits, weeks)
    rate = diagnosis_rate(diagnosis_reports, diagnosis_entered)
    if rate is None:
        return ProcessScore(visit_part=ratio * HUNDRED, diagnosis_part=None)
    return ProcessScore(
        visit_part=VISIT_SHARE * ratio * HUNDRED, diagnosis_part=DIAGNOSIS_SHARE * rate * HUNDRED
    )


# --- the total ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DualTrackScore:
    """process, result and total = 0.6 × process + 0.4 × result, exact; result and total None without a target."""

    process: Decimal
    result: Decimal | None
    total: Decimal | None

    def rounded(self) -> DualTrackScore:
        """The same score with every part rounded to 0.01 (for display and storage)."""
        return DualTrackScore(
            process=round_score(self.process),
            result=None if self.result is None else round_score(self.result),
            total=None if self.total is None else round_score(self.total),
        )


def dual_track_score(process: ProcessScore, result: Decimal | None) -> DualTrackScore:
    """total = 0.6 × process + 0.4 × result; None when result is None (no target to score against)."""
    total = None if result is None else PROCESS_WEIGHT * process.value + RESULT_WEIGHT * result
    return DualTrackScore(process=process.value, result=result, total=total)


@dataclass(frozen=True)
class MonthActivity:
    """A member's counted activity in a ScoringPeriod, as a job selects it."""

    quality_visits: int
    diagnosis_entered: int
    diagnosis_reports: int
    deals: tuple[SignedDeal, ...] = ()


def score_month(activity: MonthActivity, targets: Targets, period: ScoringPeriod) -> DualTrackScore:
    """dual_track_score(process_score(…, period.weeks, …), result_score(attainment(deals), targets))."""
    process = process_score(
        activity.quality_visits, period.weeks, activity.diagnosis_reports, activity.diagnosis_entered
    )
    return dual_track_score(process, result_score(attainment(activity.deals), targets))
