"""Bonus 奖金 (PRODUCT.md §3): commission on payments a bank match confirmed, clawed back on reversal.

Entries are keyed by payment id, so crediting and clawing back are decided from the entries already
booked: calling again with the same payment adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from domain.incentives import DealType, credited_amount, month_start, round_money

DEFAULT_COMMISSION_RATE = Decimal("0.03")

# The words after 完成 in the announcement; §3's own sentence is the one for 增购.
ANNOUNCEMENT = "恭喜！您促成的{customer}客户完成{deal}，奖金{amount}已发放"
ANNOUNCED_DEAL: dict[DealType, str] = {
    DealType.NEW: "新签",
    DealType.RENEWAL: "续费",
    DealType.UPSELL: "年度增购",
}
CLAWBACK_NOTICE = "您促成的{customer}客户的回款已撤销，奖金{amount}已扣回"


@dataclass(frozen=True)
class CommissionRules:
    """Commission rate per product line; lines not listed (or None) use default_rate."""

    default_rate: Decimal = DEFAULT_COMMISSION_RATE
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def rate_for(self, product_line: str | None) -> Decimal:
        """rates[product_line], else default_rate."""
        if product_line is not None and product_line in self.rates:
            return self.rates[product_line]
        return self.default_rate


DEFAULT_COMMISSION_RULES = CommissionRules()


@dataclass(frozen=True)
class ReceivedPayment:
    """A payment a bank match confirmed, with the deal it pays and the customer's current health."""

    payment_id: str
    rep: str
    customer: str
    amount: Decimal
    deal_type: DealType
    received_on: date
    product_line: str | None = None
    customer_health: Decimal | None = None


class EntryKind(StrEnum):
    CREDIT = "credit"
    CLAWBACK = "clawback"


@dataclass(frozen=True)
class BonusEntry:
    """One line of the bonus ledger; a clawback is the negative of the credit it reverses."""

    payment_id: str
    rep: str
    amount: Decimal
    kind: EntryKind
    booked_on: date


def commission(
    amount: Decimal,
    deal_type: DealType,
    product_line: str | None = None,
    customer_health: Decimal | None = None,
    rules: CommissionRules = DEFAULT_COMMISSION_RULES,
) -> Decimal:
    """round_money(amount × rate(product line) × (0.7 for a renewal of a customer under health 60, else 1))."""
    if amount < 0:
        raise ValueError("a received amount is not negative")
    return round_money(credited_amount(deal_type, amount, customer_health) * rules.rate_for(product_line))


def bonus_for_payment(
    payment: ReceivedPayment, entries: Iterable[BonusEntry], rules: CommissionRules = DEFAULT_COMMISSION_RULES
) -> BonusEntry | None:
    """The credit to book for payment: commission(…) on received_on; None when already credited or ¥0.00."""
    if any(e.payment_id == payment.payment_id and e.kind is EntryKind.CREDIT for e in entries):
        return None
    amount = commission(
        payment.amount, payment.deal_type, payment.product_line, payment.customer_health, rules
    )
    if amount == 0:
        return None
    return BonusEntry(payment.payment_id, payment.rep, amount, EntryKind.CREDIT, payment.received_on)


def clawback_for_reversal(
    payment_id: str, reversed_on: date, entries: Iterable[BonusEntry]
) -> BonusEntry | None:
    """−(the credit of payment_id), booked on reversed_on; None when never credited or already clawed back."""
    mine = [e for e in entries if e.payment_id == payment_id]
    credit = next((e for e in mine if e.kind is EntryKind.CREDIT), None)
    if credit is None or any(e.kind is EntryKind.CLAWBACK for e in mine):
        return None
    return BonusEntry(payment_id, credit.rep, -credit.amount, EntryKind.CLAWBACK, reversed_on)


def month_to_date_bonus(entries: Iterable[BonusEntry], as_of: date) -> Decimal:
    """Σ amount of the entries booked from the 1st of as_of's month to as_of (clawbacks subtract)."""
    first = month_start(as_of)
    return sum((e.amount for e in entries if first <= e.booked_on <= as_of), Decimal(0))


def format_bonus_amount(amount: Decimal) -> str:
    """¥8,200 when whole, ¥840.50 otherwise, −¥840 when negative (rounded to 0.01 first)."""
    cents = round_money(amount)
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    text = f"{cents:,.0f}" if cents == cents.to_integral_value() else f"{cents:,.2f}"
    return f"{sign}¥{text}"


def announcement(customer: str, deal_type: DealType, bonus: Decimal) -> str:
    """恭喜！您促成的{customer}客户完成{新签|续费|年度增购}，奖金¥{bonus}已发放."""
    return ANNOUNCEMENT.format(
        customer=customer, deal=ANNOUNCED_DEAL[deal_type], amount=format_bonus_amount(bonus)
    )


def clawback_notice(customer: str, clawback: Decimal) -> str:
    """您促成的{customer}客户的回款已撤销，奖金¥{|clawback|}已扣回."""
    return CLAWBACK_NOTICE.format(customer=customer, amount=format_bonus_amount(abs(clawback)))


def settle_payment_event(kind: str, payment: ReceivedPayment, entries: Iterable[BonusEntry],
                         rules: CommissionRules = DEFAULT_COMMISSION_RULES) -> tuple[BonusEntry | None, str | None]:
    """A confirmed payment event's ledger entry and its announcement: a credit for ``received``, a
    clawback for a reversal; (None, None) when nothing is due (already booked, ¥0.00, nothing to reverse)."""
    if kind == "received":
        entry = bonus_for_payment(payment, entries, rules)
        return entry, announcement(payment.customer, payment.deal_type, entry.amount) if entry else None
    entry = clawback_for_reversal(payment.payment_id, payment.received_on, entries)
    return entry, clawback_notice(payment.customer, entry.amount) if entry else None
