"""The rule language of automatic stage upgrades: parsing, refusals, evaluation, forward-only moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rules import (
    DEFAULT_RULE_TEXT,
    LINK_CATEGORIES,
    Condition,
    CustomerEvent,
    EventKind,
    Rule,
    RuleError,
    count_events,
    decide_upgrade,
    default_rule,
    parse_rule,
    rule_matches,
    rule_text,
    select_upgrade,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ADMIN_EXAMPLE = "竞品对比 点击>=2 且 登录>=1 则 报价谈判"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def login(days_ago: float) -> CustomerEvent:
    return CustomerEvent("login", ago(days_ago))


def trial(days_ago: float) -> CustomerEvent:
    return CustomerEvent("trial_requested", ago(days_ago))


def click(category: str, days_ago: float) -> CustomerEvent:
    return CustomerEvent("link_click", ago(days_ago), category)


# --- parsing ------------------------------------------------------------------------------------


def test_the_admins_example_parses_into_two_counted_conditions() -> None:
    rule = parse_rule(ADMIN_EXAMPLE)
    assert rule == Rule(
        (
            Condition(EventKind("link_click", "competitor"), ">=", 2),
            Condition(EventKind("login"), ">=", 1),
        ),
        "negotiation",
    )
    assert rule_text(rule) == ADMIN_EXAMPLE


def test_the_default_rule_counts_logins_since_the_trial_request() -> None:
    rule = default_rule()
    assert rule.target == "solution_confirmed"
    assert rule.conditions[1] == Condition(EventKind("login"), ">=", 3, since=EventKind("trial_requested"))
    assert rule_text(rule) == DEFAULT_RULE_TEXT


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("近7天登录>=3 则 方案演示", "近7天登录>=3 则 方案演示"),
        ("近 7 日 登录 ≥ 3 次 则 demo", "近7天登录>=3 则 方案演示"),
        ("近７天登录＞＝３ 则 方案演示", "近7天登录>=3 则 方案演示"),  # full-width, as phones type it
        ("点击 报价>1 并且 feature_used=2 则 negotiation", "报价 点击>1 且 feature_used=2 则 报价谈判"),
        ("申请试用之后登陆>=3 则 方案确认", "申请试用后登录>=3 则 方案确认"),
        ("点击<=5 则 需求诊断", "点击<=5 则 需求诊断"),
    ],
)
def test_variants_read_back_in_canonical_form(typed: str, canonical: str) -> None:
    assert rule_text(parse_rule(typed)) == canonical


@pytest.mark.parametrize(
    ("typed", "position", "expected_word"),
    [
        ("竞品对比 点击>=2 且 登录>=一 则 报价谈判", 17, "次数"),
        ("竞品对比>=2 则 报价谈判", 4, "点击"),
        ("竞品对比 点击>=2 则 赢单", 13, "目标阶段"),
        ("登录>=3 方案确认", 6, "则"),
        ("登录 3 则 方案确认", 3, "比较符号"),
        ("近0天登录>=1 则 方案确认", 1, "天数"),
        ("", 0, "条件"),
        ("登录>=3 则", 7, "目标阶段"),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_position(typed: str, position: int, expected_word: str) -> None:
    with pytest.raises(RuleError) as refused:
        parse_rule(typed)
    assert refused.value.position == position
    assert expected_word in refused.value.expected
    assert f"第 {position + 1} 个字" in refused.value.message


def test_code_is_not_a_rule() -> None:
    with pytest.raises(RuleError):
        parse_rule("__import__('os').system('rm -rf /') 则 方案确认")


_FRAGMENTS = st.sampled_from(
    ["近", "7", "天", "登录", "申请试用", "后", "点击", "竞品对比", "报价", ">=", "≥", "<", "=", "3", "且",
     "则", "方案确认", "赢单", " ", "９", "＞", "次", "x_y", "\u3000", "之后", "1" * 30]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_FRAGMENTS, max_size=14).map("".join)))
def test_parsing_any_text_raises_nothing_but_rule_error(text: str) -> None:
    try:
        rule = parse_rule(text)
    except RuleError as refused:
        assert 0 <= refused.position <= len(text)
    else:
        assert parse_rule(rule_text(rule)) == rule


_KINDS = st.one_of(
    st.sampled_from([EventKind("login"), EventKind("trial_requested"), EventKind("link_click")]),
    st.sampled_from(sorted(LINK_CATEGORIES)).map(lambda c: EventKind("link_click", c)),
    st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).map(EventKind),
)
_CONDITIONS = st.builds(
    Condition,
    event=_KINDS,
    op=st.sampled_from([">=", ">", "<=", "<", "="]),
    threshold=st.integers(0, 100_000),
    window_days=st.none() | st.integers(1, 3650),
    since=st.none() | _KINDS,
)


@settings(deadline=None)
@given(st.lists(_CONDITIONS, min_size=1, max_size=4),
       st.sampled_from(["diagnosis", "demo", "solution_confirmed", "negotiation"]))
def test_every_rule_survives_printing_and_parsing(conditions: list[Condition], target: str) -> None:
    rule = Rule(tuple(conditions), target)
    assert parse_rule(rule_text(rule)) == rule


# --- evaluation ---------------------------------------------------------------------------------


def test_default_rule_fires_on_a_trial_and_three_logins_since() -> None:
    events = [trial(5), login(4), login(3), login(1)]
    assert rule_matches(default_rule(), events, NOW)


def test_default_rule_does_not_fire_on_two_logins() -> None:
    events = [trial(5), login(4), login(1)]
    assert not rule_matches(default_rule(), events, NOW)


def test_logins_before_the_trial_request_do_not_count() -> None:
    events = [login(9), login(8), login(7), trial(5), login(1)]
    assert not rule_matches(default_rule(), events, NOW)
    assert count_events(default_rule().conditions[1], events, NOW) == 1


def test_events_after_now_are_ignored() -> None:
    events = [trial(5), login(4), login(3), CustomerEvent("login", NOW + timedelta(hours=1))]
    assert not rule_matches(default_rule(), events, NOW)


def test_without_a_trial_request_a_since_condition_is_false_even_for_less_than() -> None:
    rule = parse_rule("申请试用后登录<2 则 方案确认")
    assert not rule_matches(rule, [login(1)], NOW)
    assert rule_matches(rule, [trial(3), login(1)], NOW)


def test_the_admins_rule_fires_on_two_competitor_clicks_and_a_login() -> None:
    rule = parse_rule(ADMIN_EXAMPLE)
    assert rule_matches(rule, [click("competitor", 3), click("competitor", 2), login(1)], NOW)
    assert not rule_matches(rule, [click("competitor", 3), click("pricing", 2), login(1)], NOW)
    assert not rule_matches(rule, [click("competitor", 3), click("competitor", 2)], NOW)


def test_a_window_keeps_only_recent_events() -> None:
    rule = parse_rule("近7天登录>=3 则 方案演示")
    assert not rule_matches(rule, [login(8), login(6), login(5)], NOW)
    assert rule_matches(rule, [login(6.9), login(6), login(5)], NOW)


@pytest.mark.parametrize(("op", "fires"), [(">=", [2, 3]), (">", [3]), ("<=", [0, 1, 2]), ("<", [0, 1]),
                                           ("=", [2])])
def test_comparisons(op: str, fires: list[int]) -> None:
    rule = parse_rule(f"登录{op}2 则 方案演示")
    for n in range(4):
        assert rule_matches(rule, [login(i + 1) for i in range(n)], NOW) == (n in fires)


# --- forward only -------------------------------------------------------------------------------


def test_a_frozen_opportunity_is_not_moved() -> None:
    events = [trial(5), login(4), login(3), login(1)]
    assert decide_upgrade("demo", "solution_confirmed", frozen=True).reason == "frozen"
    assert select_upgrade([default_rule()], events, NOW, current="demo", frozen=True) is None
    assert select_upgrade([default_rule()], events, NOW, current="demo", frozen=False) == default_rule()


@pytest.mark.parametrize(
    ("current", "target", "reason"),
    [
        ("demo", "solution_confirmed", "move"),
        ("lead", "solution_confirmed", "move"),
        ("solution_confirmed", "solution_confirmed", "not_forward"),
        ("negotiation", "solution_confirmed", "not_forward"),
        ("won", "solution_confirmed", "closed"),
        ("lost", "negotiation", "closed"),
        ("demo", "no_such_stage", "unknown_stage"),
    ],
)
def test_only_forward_moves_out_of_open_stages(current: str, target: str, reason: str) -> None:
    decision = decide_upgrade(current, target, frozen=False)
    assert decision.reason == reason
    assert decision.move == (reason == "move")


def test_the_furthest_allowed_target_wins() -> None:
    rules = [default_rule(), parse_rule(ADMIN_EXAMPLE), parse_rule("登录>=1 则 方案演示")]
    events = [trial(5), login(4), login(3), login(1), click("competitor", 2), click("competitor", 1)]
    assert select_upgrade(rules, events, NOW, current="demo", frozen=False) == rules[1]
    assert select_upgrade(rules, events, NOW, current="negotiation", frozen=False) is None
