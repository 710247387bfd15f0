"""Dates as people type them: 2026-08-15, 2026/8/15, 2026.8.15, 2026年8月15日, 8月15日, 8-15."""

from __future__ import annotations

import re
from datetime import date

_FULL = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")
_SHORT = re.compile(r"^(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")


def parse_date(text: str, today: date) -> date | None:
    """A calendar date, or None. A date without a year is the next such date on or after today."""
    text = text.strip()
    m = _FULL.match(text)
    if m:
        y, mo, d = (int(g) for g in m.groups())
        return _safe(y, mo, d)
    m = _SHORT.match(text)
    if m:
        mo, d = (int(g) for g in m.groups())
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
