"""Credit ratings on the S&P-style ladder and the threshold crossing that freezes deals (PRODUCT.md §2.3)."""

from __future__ import annotations

import re

from domain.names import to_halfwidth

RATING_LADDER: tuple[str, ...] = (
    "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-",
    "BB+", "BB", "BB-", "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "D",
)  # fmt: skip
DEFAULT_THRESHOLD = "BBB-"
_RANK = {rating: i for i, rating in enumerate(RATING_LADDER)}
_DASHES = re.compile(r"[‐‑‒–—―−]")

# --- user-visible reasons (Simplified Chinese) ---------------------------------------------------------
UNKNOWN_RATING = "不认识的信用评级「{text}」。可选：" + "、".join(RATING_LADDER) + "。"


class RatingError(ValueError):
    """A rating that is not on the ladder; ``str(error)`` tells the user the valid ones, in Chinese."""

    def __init__(self, text: str) -> None:
        super().__init__(UNKNOWN_RATING.format(text=text.strip()))
        self.text = text


def parse_rating(text: str) -> str:
    """The ladder spelling of a typed rating: half-width, upper case, no spaces (``"bbb－"`` → ``"BBB-"``).

    Raises ``RatingError`` when the result is not one of ``RATING_LADDER``.
    """
    rating = _DASHES.sub("-", re.sub(r"\s+", "", to_halfwidth(text))).upper()
    if rating not in _RANK:
        raise RatingError(text)
    return rating


def rating_rank(rating: str) -> int:
    """Position on the ladder: 0 for AAA … 21 for D; larger is worse. Raises ``RatingError``."""
    return _RANK[parse_rating(rating)]


def compare_ratings(a: str, b: str) -> int:
    """−1 when ``a`` is worse than ``b``, 0 when equal, 1 when better."""
    ra, rb = rating_rank(a), rating_rank(b)
    return (ra < rb) - (ra > rb)


def is_below(rating: str, threshold: str = DEFAULT_THRESHOLD) -> bool:
    """True when ``rating`` is strictly worse than ``threshold`` (with BBB-: BB+ and worse)."""
    return rating_rank(rating) > rating_rank(threshold)


def crossed_below(previous: str | None, current: str | None, threshold: str = DEFAULT_THRESHOLD) -> bool:
    """True only on the change that takes a customer below the threshold.

    current below and (previous is None or previous not below): BBB → BB+ yes, None → BB+ yes;
    BB+ → BB+ no, BB+ → BB no (already below), anything → None no.
    """
    if current is None or not is_below(current, threshold):
        return False
    return previous is None or not is_below(previous, threshold)
