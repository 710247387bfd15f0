"""Amounts of money as people type them in a Chinese chat, and how we show them back.

``parse_amount`` reads 150000, 150,000.00, ¥1,200.50, ￥1200, 150000元, 12万, 12.5万, 1.2亿, 5k, 12w,
三万五 (35,000), 三万五千, 十二万, 两千, 壹拾贰万元整. It never guesses: anything it cannot read exactly
raises ``AmountError`` whose message (Chinese) names the part it did not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from domain.names import to_halfwidth

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("999999999999.99")  # just under 1 万亿: anything larger is a typo in this business
_MAX_INPUT = 40

# --- user-visible reasons (Simplified Chinese) ---------------------------------------------------------
EMPTY = "没有填写金额。"
NEGATIVE = "金额不能是负数：「{text}」。"
NOT_UNDERSTOOD = "没有看懂金额「{text}」中的「{part}」。可以写成 150000、150,000.00、12万、12.5万 或 三万五。"
BAD_GROUPING = "金额「{text}」的千分位逗号位置不对，应写成 150,000.00 这样（每三位一个逗号）。"
TOO_MANY_DECIMALS = "金额「{text}」超过了两位小数，金额最多精确到分。"
NOT_POSITIVE = "金额必须大于 0：「{text}」。"
TOO_LARGE = "金额「{text}」太大了（超过 1 万亿），请核对。"
TOO_LONG = "金额「{text}」太长了，请只发数字和单位，例如 12.5万。"


class AmountError(ValueError):
    """An amount that could not be read; ``str(error)`` (= ``reason``) tells the user why, in Chinese."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(reason)
        self.text = text
        self.reason = reason


_PREFIXES = ("人民币", "rmb", "cny", "¥")
_SUFFIXES = ("人民币", "rmb", "cny", "块钱", "元", "圆", "块")
_ARABIC = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")
_DIGITS = {
    "〇": 0, "零": 0,
    "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3, "四": 4, "肆": 4, "五": 5, "伍": 5,
    "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000, "k": 1000}
_BIG_UNITS = {"万": 10**4, "萬": 10**4, "w": 10**4, "亿": 10**8, "億": 10**8}
# An unreadable run of characters ends where something numeric starts again (k and w are letters too).
_RUN_STOPS = (set(_DIGITS) | set(_SMALL_UNITS) | set(_BIG_UNITS) | set("0123456789")) - {"k", "w"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "number" | "zero" | "small" | "big"
    value: Decimal
    text: str
    start: int
    single_digit: bool = False


def parse_amount(text: str, *, allow_zero: bool = False) -> Decimal:
    """An amount in yuan, exact to the fen, as a Decimal with two places; raises ``AmountError``.

    Contract: Arabic numbers (optional ``,`` thousands groups, optional decimals), Chinese numerals
    (一…九/两/零/十百千, and 壹贰叁…拾佰仟), units 十/百/千/k (10³), 万/w (10⁴), 亿 (10⁸) combined the
    Chinese way (``1亿2000万``); a single trailing digit after a unit means the next lower place
    (三万五 = 35,000, 两千五 = 2,500, 一亿二 = 120,000,000; 一万零五 = 10,005). Optional ¥/￥/人民币/RMB
    prefix and 元/块/圆/整 suffix; spaces and full-width characters are ignored. Refused: negatives,
    zero (unless ``allow_zero``), more than two decimals after units are applied, ≥ 1 万亿, garbage.
    """
    core = _strip_decorations(text)
    if len(core) > _MAX_INPUT:
        raise AmountError(text, TOO_LONG.format(text=_shown(text)))
    with localcontext() as ctx:
        ctx.prec = 120  # exact for every input up to _MAX_INPUT characters
        value = _evaluate(text, _tokenise(text, core))
        if value > MAX_AMOUNT:
            raise AmountError(text, TOO_LARGE.format(text=_shown(text)))
        if value != value.quantize(CENT):
            raise AmountError(text, TOO_MANY_DECIMALS.format(text=_shown(text)))
        if value == 0 and not allow_zero:
            raise AmountError(text, NOT_POSITIVE.format(text=_shown(text)))
        return value.quantize(CENT)


def quantize_yuan(amount: Decimal) -> Decimal:
    """``amount`` rounded to the fen: quantize(0.01, ROUND_HALF_UP) — 0.005 → 0.01."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def format_yuan(amount: Decimal) -> str:
    """``¥150,000.00``: rounded half-up to the fen, thousands separated; negatives as ``-¥1,200.00``."""
    q = quantize_yuan(amount)
    sign = "-" if q < 0 else ""
    return f"{sign}¥{abs(q):,.2f}"


def format_percent(ratio: Decimal, places: int = 0) -> str:
    """``Decimal("0.75")`` → ``"75%"``: ratio × 100 rounded half-up to ``places`` decimals."""
    q = (ratio * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{q}%"


def _shown(text: str) -> str:
    return text.strip()[:_MAX_INPUT]


def _strip_decorations(text: str) -> str:
    core = re.sub(r"\s+", "", to_halfwidth(text)).lower()
    if not core:
        raise AmountError(text, EMPTY)
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if core.startswith(prefix):
                core, changed = core[len(prefix) :], True
    if core.startswith(("-", "负", "−", "—")):
        raise AmountError(text, NEGATIVE.format(text=_shown(text)))
    if core.endswith("整"):
        core = core[:-1]
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if core.endswith(suffix):
                core, changed = core[: -len(suffix)], True
    if not core:
        raise AmountError(text, NOT_UNDERSTOOD.format(text=_shown(text), part=_shown(text)))
    return core


def _tokenise(text: str, core: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(core):
        ch = core[i]
        m = _ARABIC.match(core, i)
        if m:
            literal = m.group(0)
            whole, _, _fraction = literal.partition(".")
            if "," in whole and not _GROUPED.fullmatch(whole):
                raise AmountError(text, BAD_GROUPING.format(text=_shown(text)))
            single = len(literal) == 1
            tokens.append(_Token("number", Decimal(literal.replace(",", "")), literal, i, single))
            i = m.end()
        elif ch in ("零", "〇"):
            tokens.append(_Token("zero", Decimal(0), ch, i, True))
            i += 1
        elif ch in _DIGITS:
            tokens.append(_Token("number", Decimal(_DIGITS[ch]), ch, i, True))
            i += 1
        elif ch in _SMALL_UNITS and (ch != "k" or tokens):
            tokens.append(_Token("small", Decimal(_SMALL_UNITS[ch]), ch, i))
            i += 1
        elif ch in _BIG_UNITS and (ch != "w" or tokens):
            tokens.append(_Token("big", Decimal(_BIG_UNITS[ch]), ch, i))
            i += 1
        else:
            end = i + 1
            while end < len(core) and core[end] not in _RUN_STOPS:
                end += 1
            raise AmountError(text, NOT_UNDERSTOOD.format(text=_shown(text), part=core[i:end]))
    return tokens


def _evaluate(text: str, tokens: list[_Token]) -> Decimal:
    """Chinese place-value evaluation: 十百千 build a section, 万 and 亿 scale the sections before them."""

    def refuse(first: _Token, last: _Token) -> AmountError:
        part = "".join(t.text for t in tokens[tokens.index(first) : tokens.index(last) + 1])
        return AmountError(text, NOT_UNDERSTOOD.format(text=_shown(text), part=part))

    if len(tokens) == 1 and tokens[0].kind == "zero":
        return Decimal(0)
    yi_part = Decimal(0)  # everything already scaled by 亿
    wan_part = Decimal(0)  # everything already scaled by 万 (inside the current 亿 group)
    section = Decimal(0)  # below 万
    pending: _Token | None = None  # a number waiting for its unit
    pending_follows_unit = False
    previous_unit = Decimal(0)
    previous: _Token | None = None
    smallest_unit_so_far: Decimal | None = None  # 十百千 must descend inside a section
    seen_yi = seen_wan = False
    for token in tokens:
        if token.kind == "number":
            if pending is not None:
                raise refuse(pending, token)
            pending = token
            pending_follows_unit = previous is not None and previous.kind in ("small", "big")
            previous_unit = previous.value if previous is not None and pending_follows_unit else Decimal(0)
            if pending_follows_unit and (
                "." in token.text
                or (previous is not None and previous.kind == "small" and not token.single_digit)
            ):
                # 1万2.5 or 3百66: a fraction or a run of digits cannot follow a unit this way
                raise refuse(previous or token, token)
        elif token.kind == "zero":
            if previous is None or previous.kind not in ("small", "big"):
                raise refuse(previous or token, token)
        elif token.kind == "small":
            if pending is None:
                # 十 alone starts a number (十二万 = 12万); other units need a digit before them.
                if token.value != 10 or section != 0 or (previous is not None and previous.kind != "big"):
                    raise refuse(previous or token, token)
                multiplier = Decimal(1)
            else:
                multiplier = pending.value
            if smallest_unit_so_far is not None and token.value >= smallest_unit_so_far:
                raise refuse(previous or token, token)
            section += multiplier * token.value
            smallest_unit_so_far = token.value
            pending = None
        else:  # big unit
            if pending is not None and pending.single_digit and pending_follows_unit and previous_unit > 10:
                # 五千三万: 5003万 or 5300万? Nobody can tell, so we ask instead of guessing.
                raise refuse(pending, token)
            group = section + (pending.value if pending is not None else 0)
            if group == 0:
                raise refuse(previous or token, token)
            if token.value == 10**8:
                if seen_yi or seen_wan:
                    raise refuse(previous or token, token)
                yi_part, seen_yi = group * token.value, True
            else:
                if seen_wan:
                    raise refuse(previous or token, token)
                wan_part, seen_wan = group * token.value, True
            section, pending, smallest_unit_so_far = Decimal(0), None, None
        previous = token
    if previous is not None and previous.kind == "zero":
        raise refuse(previous, previous)
    if pending is not None:
        if pending.single_digit and pending_follows_unit:
            # 三万五: a lone digit right after a unit is in the next lower place.
            section += pending.value * previous_unit / 10
        else:
            section += pending.value
    return yi_part + wan_part + section
