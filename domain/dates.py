"""Dates as people type them.

``parse_date`` reads a whole field: 2026-08-15, 2026/8/15, 2026.8.15, 2026年8月15日, 8月15日, 8-15.

``resolve_relative_date`` and ``find_dates`` read the Chinese dates of a sentence, resolved against
``today`` (Monday–Sunday weeks):

- 今天/今日 (+0), 明天/明日 (+1), 后天 (+2), 大后天 (+3), 昨天 (−1), 前天 (−2); the past forms
  (上周末, 上月底, 上月初, 去年底) are read too, so that their 周末 / 月底 / 年底 is not taken for this one;
- 下周X / 下星期X / 下礼拜X: day X of the next calendar week (2026-11-28 is a Saturday → 下周三 =
  2026-12-02); 下下周X: the week after; 上周X: last week's; 本周X / 这周X: this week's day X, even when it
  is already past; 周X / 星期X / 礼拜X alone: the next such day strictly after today (today is 今天);
  X ∈ 一…六, 日, 天; 周末 / 本周末 / 本周内: this week's Sunday; 下周末: next week's Sunday;
- 月底 / 月末 / 本月底: the last day of this month; 月中: the 15th; 下月初 / 下个月初: the 1st of next
  month; 下月中: its 15th; 下月底 / 下个月底: its last day; 下月5号 / 本月5日: that day of that month;
- 12月底 / 12月初 / 12月中旬: the last day / 1st / 15th of the next such month (this month counts);
- 季度末 / 本季度末: the last day of this quarter; 年底 / 年末 / 今年底: 31 December; 明年底: next year's;
  2027年底: that year's;
- 12月5日 / 12月5号 / 十二月五号: the next such date on or after today (as ``parse_date``);
  2026年12月5日, 2026-12-05, 2026/12/5: that date;
- N天后 / N天内 / N日内 (N in digits or 一…九十, 两): today + N; N周后 / N周内 / N个星期内: + 7N
  (一周内 = today + 7); N个月后 / N个月内: the same day N months on (clamped to the month's end);
  半个月: + 15; N个工作日后/内: + N weekdays (Monday–Friday; public holidays are not known here).

Bare numeric day–month forms (12-5, 12/5) and a bare day (5号) are not looked for inside sentences:
in prose they are too often ranges, ratios or room numbers. Nothing here raises on any text; a date
that does not exist (2月30日) or falls outside the calendar is simply not found.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import NamedTuple

_FULL = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")
_SHORT = re.compile(r"^(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")


def parse_date(text: str, today: date, *, nearest: bool = False) -> date | None:
    """A calendar date, or None. A date without a year is the next such date on or after today (a promise,
    a deadline); with ``nearest``, the one of last year, this year and next closest to today (a search's
    从 11-01 or a hire date typed in November mean this year's, not next year's)."""
    text = text.strip()
    m = _FULL.match(text)
    if m:
        y, mo, d = (int(g) for g in m.groups())
        return _safe(y, mo, d)
    m = _SHORT.match(text)
    if m:
        mo, d = (int(g) for g in m.groups())
        if nearest:
            years = [c for c in (_safe(today.year + k, mo, d) for k in (-1, 0, 1)) if c is not None]
            return min(years, key=lambda c: abs((c - today).days)) if years else None
        candidate = _safe(today.year, mo, d)
        if candidate is not None and candidate < today:
            candidate = _safe(today.year + 1, mo, d)
        return candidate
    return None


def _safe(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


class DateMention(NamedTuple):
    """A date found in a sentence: ``text[span[0]:span[1]]`` says ``day``."""

    span: tuple[int, int]
    day: date


# --- relative dates ------------------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}  # fmt: skip
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_NUM = r"(?:\d{1,3}|[一二两三四五六七八九十]{1,3})"
_WEEK = r"(?:周|星期|礼拜)"
_WD = r"([一二三四五六日天])"
_NEXT_MONTH = r"(?:下个?月)"
_THIS_MONTH = r"(?:本月|这个?月|当月)"
_MAX_OFFSET_DAYS = 3660  # "9999天后" is a typo, not a date
_LAST = -1  # "the last day of the month" for _month_shift


def _number(text: str) -> int | None:
    """1–999 in digits, or 一…九十九 / 两 in Chinese numerals; None otherwise."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        if "十" in ones or (tens and tens not in _CN_DIGITS) or (ones and ones not in _CN_DIGITS):
            return None
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    if len(text) == 1 and text in _CN_DIGITS:
        return _CN_DIGITS[text]
    return None


def _plus_days(today: date, days: int) -> date | None:
    if abs(days) > _MAX_OFFSET_DAYS:
        return None
    try:
        return today + timedelta(days=days)
    except OverflowError:
        return None


def _month_shift(today: date, months: int, day: int | None = None) -> date | None:
    """Day ``day`` of the month ``months`` after today's: None → today's day clamped to the month's
    length, ``_LAST`` → the month's last day; a day the month does not have → None."""
    index = today.year * 12 + today.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        return None
    last = calendar.monthrange(year, month + 1)[1]
    if day is None:
        return date(year, month + 1, min(today.day, last))
    return _safe(year, month + 1, last if day == _LAST else day)


def _week_day(today: date, weeks: int, weekday: int) -> date | None:
    return _plus_days(today, 7 * weeks - today.weekday() + weekday)


def _next_weekday(today: date, weekday: int) -> date | None:
    return _plus_days(today, (weekday - today.weekday() - 1) % 7 + 1)


def _working_days(today: date, n: int) -> date | None:
    if n > _MAX_OFFSET_DAYS:
        return None
    day: date | None = today
    while n > 0 and day is not None:
        day = _plus_days(day, 1)
        if day is not None and day.weekday() < 5:
            n -= 1
    return day


def _next_occurrence(today: date, month: int, day: int) -> date | None:
    """``month``/``day`` this year, or next year when that is already past."""
    found = _safe(today.year, month, day)
    if found is not None and found < today:
        found = _safe(today.year + 1, month, day)
    return found


def _month_day(today: date, m: re.Match[str]) -> date | None:
    month, day = _number(m["month"]), _number(m["day"])
    if month is None or day is None:
        return None
    if m["year"]:
        return _safe(int(m["year"]), month, day)
    return _next_occurrence(today, month, day)


def _named_month_part(today: date, m: re.Match[str]) -> date | None:
    """12月底 / 12月初 / 12月中: the last / 1st / 15th of the next such month (this one counts)."""
    month = _number(m["month"])
    if month is None or not 1 <= month <= 12:
        return None
    year = today.year if month >= today.month else today.year + 1
    if not 1 <= year <= 9999:
        return None
    day = {"底": _LAST, "末": _LAST, "初": 1, "头": 1}.get(m["part"], 15)
    return _safe(year, month, calendar.monthrange(year, month)[1] if day == _LAST else day)


def _offset(today: date, m: re.Match[str]) -> date | None:
    unit = m["unit"]
    if m["n"] == "半":
        return _plus_days(today, 15) if unit == "个月" else None
    n = _number(m["n"])
    if n is None:
        return None
    if unit == "个工作日":
        return _working_days(today, n)
    if unit == "个月":
        return _month_shift(today, n) if n <= 1200 else None
    if unit in ("天", "日"):
        return _plus_days(today, n)
    return _plus_days(today, 7 * n)  # 周, 星期, 礼拜


_Resolver = Callable[[date, re.Match[str]], "date | None"]
_NOT_AFTER_NUMBER = r"(?<![\d一二三四五六七八九十])"
_MONTH = r"(?P<month>\d{1,2}|十[一二]?|[一二三四五六七八九])"
_DAY = r"(?P<day>\d{1,2}|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])"

_RULES: tuple[tuple[re.Pattern[str], _Resolver], ...] = tuple(
    (re.compile(pattern), resolver)
    for pattern, resolver in (
        (r"大后天", lambda t, m: _plus_days(t, 3)),
        (r"后天", lambda t, m: _plus_days(t, 2)),
        (r"明[天日]", lambda t, m: _plus_days(t, 1)),
        (r"今[天日]", lambda t, m: t),
        (r"昨[天日]", lambda t, m: _plus_days(t, -1)),
        (r"前天", lambda t, m: _plus_days(t, -2)),
        (r"下下个?" + _WEEK + _WD, lambda t, m: _week_day(t, 2, _WEEKDAYS[m[1]])),
        (r"下个?" + _WEEK + _WD, lambda t, m: _week_day(t, 1, _WEEKDAYS[m[1]])),
        (r"上个?" + _WEEK + _WD, lambda t, m: _week_day(t, -1, _WEEKDAYS[m[1]])),
        (r"(?:本|这个?)" + _WEEK + _WD, lambda t, m: _week_day(t, 0, _WEEKDAYS[m[1]])),
        (_WEEK + _WD, lambda t, m: _next_weekday(t, _WEEKDAYS[m[1]])),
        (r"下个?" + _WEEK + r"末", lambda t, m: _week_day(t, 1, 6)),
        (r"上个?" + _WEEK + r"末", lambda t, m: _week_day(t, -1, 6)),
        (r"(?:本|这个?)" + _WEEK + r"[末内]|" + _WEEK + r"末", lambda t, m: _week_day(t, 0, 6)),
        (_NEXT_MONTH + r"[初头]", lambda t, m: _month_shift(t, 1, 1)),
        (r"上个?月[初头]", lambda t, m: _month_shift(t, -1, 1)),
        (r"上个?月[底末]", lambda t, m: _month_shift(t, -1, _LAST)),
        (_NEXT_MONTH + r"中旬?", lambda t, m: _month_shift(t, 1, 15)),
        (_NEXT_MONTH + r"[底末]", lambda t, m: _month_shift(t, 1, _LAST)),
        (_NEXT_MONTH + r"(" + _NUM + r")[日号]", lambda t, m: _month_shift(t, 1, _number(m[1]) or 0)),
        (_NOT_AFTER_NUMBER + r"(?:本|这个?|当)?月[底末]", lambda t, m: _month_shift(t, 0, _LAST)),
        (_NOT_AFTER_NUMBER + r"(?:本|这个?|当)?月中旬?", lambda t, m: _month_shift(t, 0, 15)),
        (_THIS_MONTH + r"(" + _NUM + r")[日号]", lambda t, m: _month_shift(t, 0, _number(m[1]) or 0)),
        (_NOT_AFTER_NUMBER + _MONTH + r"月(?P<part>[底末初头]|中旬?)", _named_month_part),
        (r"(?:本|这个?)?季度?[末底]", lambda t, m: _month_shift(t, 2 - (t.month - 1) % 3, _LAST)),
        (r"明年年?[底末]", lambda t, m: _safe(t.year + 1, 12, 31)),
        (r"去年年?[底末]", lambda t, m: _safe(t.year - 1, 12, 31)),
        (r"(?<!\d)(\d{4})\s*年[底末]", lambda t, m: _safe(int(m[1]), 12, 31)),
        (r"(?:今年年?|年)[底末]", lambda t, m: _safe(t.year, 12, 31)),
        (r"(?<!\d)(?P<year>\d{4})\s*[-/.]\s*(?P<month>\d{1,2})\s*[-/.]\s*(?P<day>\d{1,2})(?!\d)",
         _month_day),
        (_NOT_AFTER_NUMBER + r"(?:(?P<year>\d{4})\s*年\s*)?" + _MONTH + r"\s*月\s*" + _DAY + r"\s*[日号]",
         _month_day),
        (_NOT_AFTER_NUMBER + r"(?P<n>" + _NUM + r"|半)(?P<unit>个工作日|个星期|个礼拜|星期|礼拜|周|个月|天|日)"
         r"(?:[以之]?后|[之以]?内)", _offset),
    )
)
_TRAILING = re.compile(r"(?:之前|以前|前|之内|以内|内|为止|截止)$")


def _mentions(text: str, today: date) -> list[DateMention]:
    found: list[tuple[int, int, date | None]] = []
    for pattern, resolve in _RULES:
        for m in pattern.finditer(text):
            found.append((m.start(), m.end(), resolve(today, m)))
    # Earliest first, then longest: 下周三 wins over the 周三 inside it, 2026年12月5日 over 12月5日. A
    # phrase that names no real day (2月30日) still hides the shorter phrases inside it.
    found.sort(key=lambda f: (f[0], -f[1]))
    taken: list[DateMention] = []
    end = 0
    for start, stop, day in found:
        if start >= end:
            if day is not None:
                taken.append(DateMention((start, stop), day))
            end = stop
    return taken


def find_dates(text: str, today: date) -> list[DateMention]:
    """Every date mentioned in ``text`` (see module docstring), left to right, never overlapping."""
    return _mentions(text, today)


def resolve_relative_date(text: str, today: date, *, nearest: bool = False) -> date | None:
    """The date that the whole of ``text`` names, or None; also accepts what ``parse_date`` does (with its
    ``nearest``).

    A trailing 前 / 之前 / 以前 / 内 / 为止 is allowed (下周三前 = 下周三): a deadline names its day.
    """
    text = text.strip()
    found = parse_date(text, today, nearest=nearest)
    if found is not None:
        return found
    core = _TRAILING.sub("", text) if len(text) > 2 else text
    for candidate in (text, core):
        mentions = _mentions(candidate, today)
        if len(mentions) == 1 and mentions[0].span == (0, len(candidate)):
            return mentions[0].day
    return None
