"""Stages: the default pipeline, what users type, and which moves go forward."""

from __future__ import annotations

import pytest

from domain.stages import (
    DEFAULT_PIPELINE,
    Pipeline,
    Stage,
    is_closed,
    is_forward,
    resolve_stage,
    sla_days,
    stage_name,
)


def test_default_pipeline_is_the_specified_order_with_chinese_names() -> None:
    assert [(s.key, s.name) for s in DEFAULT_PIPELINE] == [
        ("lead", "线索"),
        ("diagnosis", "需求诊断"),
        ("demo", "方案演示"),
        ("solution_confirmed", "方案确认"),
        ("negotiation", "报价谈判"),
        ("won", "赢单"),
        ("lost", "输单"),
    ]


def test_default_slas_in_days() -> None:
    assert {s.key: s.sla_days for s in DEFAULT_PIPELINE.sla_stages()} == {
        "diagnosis": 7, "demo": 10, "solution_confirmed": 7, "negotiation": 14,
    }
    assert sla_days("lead") is None and sla_days("won") is None


def test_only_won_and_lost_are_closed() -> None:
    assert [s.key for s in DEFAULT_PIPELINE if is_closed(s.key)] == ["won", "lost"]


@pytest.mark.parametrize("typed", ["方案确认", " 方案确认 ", "solution_confirmed", "Solution Confirmed",
                                   "solution-confirmed"])
def test_a_rep_can_name_a_stage_in_chinese_or_by_key(typed: str) -> None:
    stage = resolve_stage(typed)
    assert stage is not None and stage.key == "solution_confirmed"


@pytest.mark.parametrize("typed", ["", "方案", "确认", "closed", "赢"])
def test_unknown_stage_words_resolve_to_nothing(typed: str) -> None:
    assert resolve_stage(typed) is None


def test_forward_only() -> None:
    assert is_forward("demo", "solution_confirmed")
    assert is_forward("lead", "negotiation")  # skipping ahead is still forward
    assert is_forward("negotiation", "lost")
    assert not is_forward("solution_confirmed", "demo")  # backwards
    assert not is_forward("demo", "demo")  # sideways
    assert not is_forward("won", "lost") and not is_forward("lost", "won")
    assert not is_forward("won", "negotiation")


def test_stage_name_keeps_unknown_keys_readable() -> None:
    assert stage_name("demo") == "方案演示"
    assert stage_name("retired_stage") == "retired_stage"


def test_a_configured_pipeline_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError):
        Pipeline((Stage("a", "甲", 0), Stage("b", "甲", 1)))
