"""Ratings live on one ladder; a customer crossing below the threshold triggers freezes once, not nightly."""

from __future__ import annotations

import pytest

from domain.credit import (
    DEFAULT_THRESHOLD,
    RATING_LADDER,
    RatingError,
    compare_ratings,
    crossed_below,
    is_below,
    parse_rating,
    rating_rank,
)


def test_the_ladder_is_exactly_the_spec() -> None:
    assert RATING_LADDER == (
        "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-",
        "BB+", "BB", "BB-", "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "D",
    )  # fmt: skip
    assert DEFAULT_THRESHOLD == "BBB-"


@pytest.mark.parametrize(
    ("typed", "rating"),
    [
        ("BBB-", "BBB-"),
        ("bbb-", "BBB-"),
        (" AA+ ", "AA+"),
        ("ＢＢ＋", "BB+"),
        ("BBB－", "BBB-"),
        ("bbb—", "BBB-"),
        ("d", "D"),
    ],
)
def test_parse_rating_accepts_what_the_risk_officer_types(typed: str, rating: str) -> None:
    assert parse_rating(typed) == rating


@pytest.mark.parametrize("typed", ["", "AAAA", "BBB+-", "E", "A1", "Baa1", "优"])
def test_parse_rating_refuses_anything_off_the_ladder_and_lists_the_ladder(typed: str) -> None:
    with pytest.raises(RatingError) as caught:
        parse_rating(typed)
    assert "不认识的信用评级" in str(caught.value)
    assert "BBB-" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_rank_and_comparison_follow_the_ladder() -> None:
    assert rating_rank("AAA") == 0
    assert rating_rank("D") == 21
    assert [rating_rank(r) for r in RATING_LADDER] == list(range(22))
    assert compare_ratings("AA", "BBB") == 1
    assert compare_ratings("BB+", "BBB-") == -1
    assert compare_ratings("bb+", "BB+") == 0


def test_below_the_default_threshold_means_bb_plus_or_worse() -> None:
    assert not is_below("BBB-")
    assert is_below("BB+")
    assert is_below("D")
    assert not is_below("AAA")
    assert is_below("A", threshold="AA-")


@pytest.mark.parametrize(
    ("previous", "current", "crossed"),
    [
        ("BBB", "BB+", True),  # the worked example: crossing
        ("BB+", "BB+", False),  # the next night, same rating: nothing new
        ("BB+", "BB", False),  # already below
        (None, "BB+", True),  # first rating ever, below
        (None, "BBB", False),
        ("BBB-", "BBB-", False),
        ("BBB-", "BB+", True),
        ("AAA", "D", True),
        ("BB", "BBB", False),  # recovering is not crossing below
        ("BBB", None, False),  # rating withdrawn
        ("BB+", None, False),
    ],
)
def test_crossed_below_only_on_the_change(previous: str | None, current: str | None, crossed: bool) -> None:
    assert crossed_below(previous, current) is crossed


def test_crossing_uses_the_configured_threshold() -> None:
    assert crossed_below("A", "A-", threshold="A")
    assert not crossed_below("BBB", "BB+", threshold="B")


def test_worked_example_two_nights() -> None:
    nights = ["BBB", "BB+", "BB+"]
    alerts = [crossed_below(prev, cur) for prev, cur in zip([None, *nights], nights, strict=False)]
    assert alerts == [False, True, False]
