"""Amounts as reps type them in the chat: every common spelling reads exactly, anything else is refused
with a reason that names what was not understood."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.money import MAX_AMOUNT, AmountError, format_percent, format_yuan, parse_amount, quantize_yuan


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("150000", "150000.00"),
        ("150,000.00", "150000.00"),
        ("¥1,200.50", "1200.50"),
        ("￥1200", "1200.00"),
        ("150000元", "150000.00"),
        ("12万", "120000.00"),
        ("12.5万", "125000.00"),
        ("1.2亿", "120000000.00"),
        ("1亿2000万", "120000000.00"),
        ("三万五", "35000.00"),
        ("三万五千", "35000.00"),
        ("十二万", "120000.00"),
        ("两千", "2000.00"),
        ("两千五", "2500.00"),
        ("一万零五", "10005.00"),
        ("一亿二", "120000000.00"),
        ("3万5", "35000.00"),
        ("5k", "5000.00"),
        ("5K", "5000.00"),
        ("1.5k", "1500.00"),
        ("12w", "120000.00"),
        ("壹拾贰万元整", "120000.00"),
        ("人民币 3 万元整", "30000.00"),
        ("RMB 1,000", "1000.00"),
        ("１２万", "120000.00"),  # full-width digits from a Chinese IME
        ("12 万", "120000.00"),
        ("1.23456万", "12345.60"),
        ("0.01", "0.01"),
    ],
)
def test_rep_types_an_amount_the_usual_way(typed: str, expected: str) -> None:
    value = parse_amount(typed)
    assert value == Decimal(expected)
    assert value.as_tuple().exponent == -2  # always to the fen


@pytest.mark.parametrize(
    ("typed", "named_in_reason"),
    [
        ("-100", "负数"),
        ("负5000", "负数"),
        ("¥-1,200", "负数"),
        ("abc", "「abc」"),
        ("12万abc", "「abc」"),
        ("三五", "「三五」"),
        ("一二三", "「一二」"),
        ("万", "「万」"),
        ("1万亿", "「万亿」"),
        ("五千三万", "「三万」"),  # 5003万 or 5300万? ask rather than guess
        ("1万2.5", "「万2.5」"),
        ("3百66", "「百66」"),
        ("1,20,000", "千分位"),
        ("12.345", "两位小数"),
        ("0.005", "两位小数"),
        ("0", "大于 0"),
        ("零", "大于 0"),
        ("9999999999999", "太大"),
        ("元", "「元」"),
        ("", "没有填写金额"),
        ("   ", "没有填写金额"),
        ("1" * 60, "太长"),
    ],
)
def test_rep_types_something_that_is_not_an_amount(typed: str, named_in_reason: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(typed)
    assert named_in_reason in str(caught.value)
    assert caught.value.reason == str(caught.value)


def test_zero_is_accepted_only_when_asked_for() -> None:
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")
    assert parse_amount("¥0.00", allow_zero=True) == Decimal("0.00")


def test_amount_error_is_a_value_error_so_callers_can_catch_either() -> None:
    with pytest.raises(ValueError):
        parse_amount("很多钱")


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("150000", "¥150,000.00"),
        ("1200.5", "¥1,200.50"),
        ("0.005", "¥0.01"),  # half-up, not banker's rounding
        ("0.015", "¥0.02"),
        ("0.025", "¥0.03"),
        ("-1200", "-¥1,200.00"),
        ("0", "¥0.00"),
        ("123456789.1", "¥123,456,789.10"),
    ],
)
def test_format_yuan(amount: str, shown: str) -> None:
    assert format_yuan(Decimal(amount)) == shown


def test_quantize_yuan_rounds_half_up_to_the_fen() -> None:
    assert quantize_yuan(Decimal("2.345")) == Decimal("2.35")
    assert quantize_yuan(Decimal("2.344")) == Decimal("2.34")


def test_format_percent() -> None:
    assert format_percent(Decimal("0.75")) == "75%"
    assert format_percent(Decimal("0.8249")) == "82%"
    assert format_percent(Decimal("0.825")) == "83%"
    assert format_percent(Decimal("0.8249"), places=1) == "82.5%"


# --- properties ------------------------------------------------------------------------------------------

_AMOUNT_CHARS = "0123456789,.¥￥元块整万亿千百十拾佰仟零〇一二两三四五六七八九壹贰叁kKwW- 　人民币RMB负"


@given(st.one_of(st.text(), st.text(alphabet=_AMOUNT_CHARS, max_size=20)))
@example("1e5")
@example("NaN")
@example("Infinity")
@example("٣")  # an Arabic-Indic digit: str.isdigit() says yes, we say no
@example("1" * 41)
@example("9" * 39 + "亿")
def test_parse_amount_never_raises_anything_but_amount_error(text: str) -> None:
    try:
        value = parse_amount(text)
    except AmountError as error:
        assert error.reason
        return
    assert isinstance(value, Decimal)
    assert value.is_finite()
    assert Decimal("0.01") <= value <= MAX_AMOUNT
    assert value.as_tuple().exponent == -2


@given(st.decimals(min_value=Decimal("0.01"), max_value=MAX_AMOUNT, places=2, allow_nan=False))
def test_format_then_parse_gives_back_the_same_amount(amount: Decimal) -> None:
    assert parse_amount(format_yuan(amount)) == amount


@given(st.integers(min_value=1, max_value=10**11))
def test_plain_and_grouped_integers_read_exactly(n: int) -> None:
    assert parse_amount(str(n)) == n
    assert parse_amount(f"{n:,}元") == n


_DIGIT_WORDS = "零一二三四五六七八九"


def _in_chinese(n: int) -> str:
    """Standard written Chinese for 1 ≤ n < 10⁸ (一万零五, 十万零五百, 三万五千), independent of the parser."""

    def group(g: int) -> str:
        out, gap = "", False
        for place, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
            d = g // place % 10
            if d == 0:
                gap = gap or bool(out)
                continue
            if gap:
                out, gap = out + "零", False
            out += _DIGIT_WORDS[d] + unit
        return out

    high, low = divmod(n, 10000)
    words = group(high) + "万" if high else ""
    if low:
        words += ("零" if high and low < 1000 else "") + group(low)
    return words[1:] if words.startswith("一十") else words


@given(st.integers(min_value=1, max_value=10**8 - 1))
@example(10005)
@example(100500)
@example(35000)
@example(10)
@example(110)
@example(20003000)
def test_chinese_numerals_read_exactly(n: int) -> None:
    assert parse_amount(_in_chinese(n)) == n
