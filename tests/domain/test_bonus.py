"""Bonus: commission per payment, once per payment, clawback, and the §3 announcement."""

from datetime import date
from decimal import Decimal as D

import pytest

from domain.bonus import (
    BonusEntry,
    CommissionRules,
    EntryKind,
    ReceivedPayment,
    announcement,
    bonus_for_payment,
    clawback_for_reversal,
    clawback_notice,
    commission,
    format_bonus_amount,
    month_to_date_bonus,
)
from domain.incentives import DealType

NEW_DEAL = ReceivedPayment(
    payment_id="P-1001",
    rep="lisi",
    customer="星河科技",
    amount=D(100_000),
    deal_type=DealType.NEW,
    received_on=date(2026, 11, 12),
)
AT_RISK_RENEWAL = ReceivedPayment(
    payment_id="P-1002",
    rep="lisi",
    customer="远山物流",
    amount=D(40_000),
    deal_type=DealType.RENEWAL,
    received_on=date(2026, 11, 20),
    customer_health=D(55),
)


def test_100000_received_on_a_new_deal_earns_3000():
    entry = bonus_for_payment(NEW_DEAL, [])
    assert entry == BonusEntry("P-1001", "lisi", D("3000.00"), EntryKind.CREDIT, date(2026, 11, 12))
    assert str(entry.amount) == "3000.00"


def test_40000_renewal_from_the_health_55_customer_earns_840():
    entry = bonus_for_payment(AT_RISK_RENEWAL, [])
    assert entry.amount == D("840.00")
    assert str(entry.amount) == "840.00"


def test_a_renewal_from_a_healthy_customer_is_not_discounted():
    assert commission(D(40_000), DealType.RENEWAL, customer_health=D(80)) == D("1200.00")


def test_upsells_and_new_deals_of_unhealthy_customers_are_not_discounted():
    assert commission(D(40_000), DealType.UPSELL, customer_health=D(10)) == D("1200.00")
    assert commission(D(40_000), DealType.NEW, customer_health=D(10)) == D("1200.00")


def test_rate_per_product_line_with_the_default_for_other_lines():
    rules = CommissionRules(rates={"硬件": D("0.015")})
    assert commission(D(100_000), DealType.NEW, "硬件", rules=rules) == D("1500.00")
    assert commission(D(100_000), DealType.NEW, "SaaS", rules=rules) == D("3000.00")
    assert commission(D(100_000), DealType.NEW, None, rules=CommissionRules(default_rate=D("0.05"))) == D(
        "5000.00"
    )


def test_commission_rounds_half_up_to_the_cent():
    assert commission(D("0.50"), DealType.NEW) == D("0.02")  # 0.015 → 0.02
    assert commission(D("12345.67"), DealType.RENEWAL, customer_health=D(40)) == D("259.26")  # 259.25907


def test_a_payment_is_credited_once():
    first = bonus_for_payment(NEW_DEAL, [])
    assert bonus_for_payment(NEW_DEAL, [first]) is None


def test_a_payment_too_small_for_a_cent_books_nothing():
    tiny = ReceivedPayment("P-1", "lisi", "星河科技", D("0.10"), DealType.NEW, date(2026, 11, 1))
    assert bonus_for_payment(tiny, []) is None


def test_negative_received_amounts_are_refused():
    with pytest.raises(ValueError):
        commission(D(-1), DealType.NEW)


def test_a_reversed_payment_is_clawed_back_once_with_the_negative_of_the_credit():
    credit = bonus_for_payment(AT_RISK_RENEWAL, [])
    clawback = clawback_for_reversal("P-1002", date(2026, 11, 25), [credit])
    assert clawback == BonusEntry("P-1002", "lisi", D("-840.00"), EntryKind.CLAWBACK, date(2026, 11, 25))
    assert clawback_for_reversal("P-1002", date(2026, 11, 26), [credit, clawback]) is None


def test_reversing_a_payment_never_credited_claws_back_nothing():
    assert clawback_for_reversal("P-9999", date(2026, 11, 25), [bonus_for_payment(NEW_DEAL, [])]) is None


def test_month_to_date_bonus_sums_this_month_including_clawbacks():
    credit_new = bonus_for_payment(NEW_DEAL, [])
    credit_renewal = bonus_for_payment(AT_RISK_RENEWAL, [])
    october = BonusEntry("P-0900", "lisi", D(500), EntryKind.CREDIT, date(2026, 10, 31))
    entries = [october, credit_new, credit_renewal]
    assert month_to_date_bonus(entries, date(2026, 11, 30)) == D("3840.00")
    assert month_to_date_bonus(entries, date(2026, 11, 15)) == D("3000.00")
    clawback = clawback_for_reversal("P-1002", date(2026, 11, 28), entries)
    assert month_to_date_bonus([*entries, clawback], date(2026, 11, 30)) == D("3000.00")


def test_the_announcement_for_an_upsell_is_the_sentence_of_the_spec():
    assert (
        announcement("XX", DealType.UPSELL, D("8200.00"))
        == "恭喜！您促成的XX客户完成年度增购，奖金¥8,200已发放"
    )


def test_the_announcement_names_new_deals_and_renewals():
    assert (
        announcement("星河科技", DealType.NEW, D("3000.00"))
        == "恭喜！您促成的星河科技客户完成新签，奖金¥3,000已发放"
    )
    assert (
        announcement("远山物流", DealType.RENEWAL, D("840.50"))
        == "恭喜！您促成的远山物流客户完成续费，奖金¥840.50已发放"
    )


def test_clawback_notice_names_the_amount_without_sign():
    assert clawback_notice("远山物流", D("-840.00")) == "您促成的远山物流客户的回款已撤销，奖金¥840已扣回"


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("8200", "¥8,200"),
        ("8200.00", "¥8,200"),
        ("840.5", "¥840.50"),
        ("840.00", "¥840"),
        ("0", "¥0"),
        ("1234567.89", "¥1,234,567.89"),
        ("-840", "-¥840"),
        ("0.004", "¥0"),
    ],
)
def test_yuan_without_decimals_when_whole(amount, text):
    assert format_bonus_amount(D(amount)) == text
