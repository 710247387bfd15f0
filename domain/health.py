"""Customer health 客户健康分 (PRODUCT.md §3): six signals, each mapped to 0–100, weighted.

score = Σ weight_i × signal_i / Σ weight_i over the signals that are present, so a missing signal is
left out and the others renormalised (weights need not add up to 1). No signal at all → no score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from domain.incentives import HUNDRED, round_score


class Signal(StrEnum):
    NPS = "nps"
    LOGINS = "logins"
    TICKETS = "tickets"
    ADOPTION = "adoption"
    PAYMENTS = "payments"
    RECENCY = "recency"


class Band(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


BAND_LABELS: dict[Band, str] = {Band.RED: "红", Band.YELLOW: "黄", Band.GREEN: "绿"}


@dataclass(frozen=True)
class HealthConfig:
    """Weights and constants; the defaults are §3's."""

    nps_weight: Decimal = Decimal("0.20")
    logins_weight: Decimal = Decimal("0.20")
    tickets_weight: Decimal = Decimal("0.15")
    adoption_weight: Decimal = Decimal("0.15")
    payments_weight: Decimal = Decimal("0.15")
    recency_weight: Decimal = Decimal("0.15")
    logins_per_week_full: Decimal = Decimal(5)
    recency_full_days: int = 7
    recency_zero_days: int = 60
    yellow_from: Decimal = Decimal(60)
    green_from: Decimal = Decimal(80)

    def weight(self, signal: Signal) -> Decimal:
        """The weight of one signal."""
        return {
            Signal.NPS: self.nps_weight,
            Signal.LOGINS: self.logins_weight,
            Signal.TICKETS: self.tickets_weight,
            Signal.ADOPTION: self.adoption_weight,
            Signal.PAYMENTS: self.payments_weight,
            Signal.RECENCY: self.recency_weight,
        }[signal]


DEFAULT_HEALTH_CONFIG = HealthConfig()


@dataclass(frozen=True)
class HealthSignals:
    """The raw inputs a job gathers for one customer; None (or a zero denominator) means missing.

    nps_answers: the 0–10 answers of the survey window. logins_per_week: see ``per_week``.
    tickets_*: tickets opened in the window and how many of them are resolved. features_*: licensed
    feature count and distinct features used. receivables_due: receivables whose due date has passed;
    receivables_paid_on_time: how many of them were paid in full by their due date.
    days_since_last_contact: today − the last visit or contact.
    """

    nps_answers: Sequence[int] | None = None
    logins_per_week: Decimal | None = None
    tickets_opened: int | None = None
    tickets_resolved: int | None = None
    features_licensed: int | None = None
    features_used: int | None = None
    receivables_due: int | None = None
    receivables_paid_on_time: int | None = None
    days_since_last_contact: int | None = None


def per_week(count: int, days: int) -> Decimal:
    """count / days × 7 (e.g. logins in the last 28 days → logins per week)."""
    if days <= 0:
        raise ValueError("days must be positive")
    return Decimal(count) * 7 / Decimal(days)


def net_promoter_score(answers: Sequence[int]) -> Decimal | None:
    """NPS = % of 9–10 answers − % of 0–6 answers (−100…100); None without answers."""
    if not answers:
        return None
    if any(not 0 <= a <= 10 for a in answers):
        raise ValueError("NPS answers are 0–10")
    promoters = sum(1 for a in answers if a >= 9)
    detractors = sum(1 for a in answers if a <= 6)
    return Decimal(promoters - detractors) * HUNDRED / Decimal(len(answers))


def _clamp(value: Decimal) -> Decimal:
    return max(Decimal(0), min(HUNDRED, value))


def _share(part: int | None, whole: int | None) -> Decimal | None:
    if part is None or whole is None or whole <= 0:
        return None
    return _clamp(Decimal(part) / Decimal(whole) * HUNDRED)


def recency_signal(days: int, config: HealthConfig = DEFAULT_HEALTH_CONFIG) -> Decimal:
    """100 when days ≤ 7, 0 when days ≥ 60, else 100 × (60 − days) / (60 − 7)."""
    full, zero = config.recency_full_days, config.recency_zero_days
    if days <= full:
        return HUNDRED
    if days >= zero:
        return Decimal(0)
    return HUNDRED * Decimal(zero - days) / Decimal(zero - full)


def signal_values(
    signals: HealthSignals, config: HealthConfig = DEFAULT_HEALTH_CONFIG
) -> dict[Signal, Decimal]:
    """Each present signal mapped to 0–100.

    NPS → (NPS + 100) / 2; logins → min(1, logins per week / 5) × 100; tickets → resolved / opened × 100;
    adoption → used / licensed × 100; payments → paid on time / due × 100; recency → recency_signal.
    """
    values: dict[Signal, Decimal | None] = {
        Signal.NPS: None,
        Signal.LOGINS: None,
        Signal.TICKETS: _share(signals.tickets_resolved, signals.tickets_opened),
        Signal.ADOPTION: _share(signals.features_used, signals.features_licensed),
        Signal.PAYMENTS: _share(signals.receivables_paid_on_time, signals.receivables_due),
        Signal.RECENCY: None,
    }
    if signals.nps_answers is not None:
        nps = net_promoter_score(signals.nps_answers)
        values[Signal.NPS] = None if nps is None else (nps + HUNDRED) / 2
    if signals.logins_per_week is not None:
        values[Signal.LOGINS] = _clamp(signals.logins_per_week / config.logins_per_week_full * HUNDRED)
    if signals.days_since_last_contact is not None:
        values[Signal.RECENCY] = recency_signal(signals.days_since_last_contact, config)
    return {s: v for s, v in values.items() if v is not None}


@dataclass(frozen=True)
class HealthScore:
    """The exact score (None when no signal is present) and the signals it was computed from."""

    score: Decimal | None
    signals: Mapping[Signal, Decimal]
    band: Band | None

    @property
    def rounded(self) -> Decimal | None:
        """round_score(score), for display and storage."""
        return None if self.score is None else round_score(self.score)


def health_band(score: Decimal, config: HealthConfig = DEFAULT_HEALTH_CONFIG) -> Band:
    """red < 60 ≤ yellow < 80 ≤ green, on the score rounded to 0.01 (the band matches the number shown)."""
    shown = round_score(score)
    if shown < config.yellow_from:
        return Band.RED
    if shown < config.green_from:
        return Band.YELLOW
    return Band.GREEN


def weighted_health(
    values: Mapping[Signal, Decimal], config: HealthConfig = DEFAULT_HEALTH_CONFIG
) -> Decimal | None:
    """Σ weight_i × value_i / Σ weight_i over the present signals; None when their weights add up to 0."""
    weights = {s: config.weight(s) for s in values}
    total_weight = sum(weights.values(), Decimal(0))
    if total_weight <= 0:
        return None
    return sum((weights[s] * v for s, v in values.items()), Decimal(0)) / total_weight


def health_score(signals: HealthSignals, config: HealthConfig = DEFAULT_HEALTH_CONFIG) -> HealthScore:
    """weighted_health(signal_values(signals)) with its band."""
    values = signal_values(signals, config)
    score = weighted_health(values, config)
    return HealthScore(
        score=score, signals=values, band=None if score is None else health_band(score, config)
    )
