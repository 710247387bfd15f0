"""The sales stages of an opportunity: keys, Chinese names, order, closed stages and dwell-time SLAs.

The default pipeline is 线索 lead → 需求诊断 diagnosis → 方案演示 demo → 方案确认 solution_confirmed →
报价谈判 negotiation → 赢单 won | 输单 lost (PRODUCT.md §1.2). 赢单 and 输单 share the last rank: both
close the opportunity, and neither is "ahead" of the other. A ``Pipeline`` holds a configured set;
every function takes one and defaults to ``DEFAULT_PIPELINE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

LEAD = "lead"
DIAGNOSIS = "diagnosis"
DEMO = "demo"
SOLUTION_CONFIRMED = "solution_confirmed"
NEGOTIATION = "negotiation"
WON = "won"
LOST = "lost"


@dataclass(frozen=True)
class Stage:
    """One stage: ``rank`` orders the pipeline; ``sla_days`` is the expected maximum dwell time."""

    key: str
    name: str
    rank: int
    closed: bool = False
    sla_days: int | None = None


@dataclass(frozen=True)
class Pipeline:
    """An ordered set of stages (keys and names unique)."""

    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        keys = [s.key for s in self.stages]
        names = [s.name for s in self.stages]
        if len(set(keys)) != len(keys) or len(set(names)) != len(names):
            raise ValueError("stage keys and names must be unique")

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def get(self, key: str) -> Stage:
        """The stage with this key; KeyError when there is none."""
        for s in self.stages:
            if s.key == key:
                return s
        raise KeyError(key)

    def resolve(self, text: str) -> Stage | None:
        """The stage a user means by ``text``: its Chinese name or its key (case, spaces, '-' ignored)."""
        cleaned = text.strip()
        for s in self.stages:
            if cleaned == s.name:
                return s
        folded = _fold_key(cleaned)
        for s in self.stages:
            if folded == s.key:
                return s
        return None

    def open_stages(self) -> tuple[Stage, ...]:
        """The stages an opportunity can still leave, in pipeline order."""
        return tuple(s for s in self.stages if not s.closed)

    def sla_stages(self) -> tuple[Stage, ...]:
        """The stages that have a dwell-time SLA, in pipeline order (the heatmap's columns)."""
        return tuple(s for s in self.stages if s.sla_days is not None)


DEFAULT_PIPELINE = Pipeline(
    (
        Stage(LEAD, "线索", 0),
        Stage(DIAGNOSIS, "需求诊断", 1, sla_days=7),
        Stage(DEMO, "方案演示", 2, sla_days=10),
        Stage(SOLUTION_CONFIRMED, "方案确认", 3, sla_days=7),
        Stage(NEGOTIATION, "报价谈判", 4, sla_days=14),
        Stage(WON, "赢单", 5, closed=True),
        Stage(LOST, "输单", 5, closed=True),
    )
)


def _fold_key(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def resolve_stage(text: str, pipeline: Pipeline = DEFAULT_PIPELINE) -> Stage | None:
    """The stage named by what a user typed (``方案确认``, ``solution_confirmed``, ``Solution Confirmed``)."""
    return pipeline.resolve(text)


def stage_name(key: str, pipeline: Pipeline = DEFAULT_PIPELINE) -> str:
    """The Chinese name of a stage key (the key itself when unknown, so old history still reads)."""
    try:
        return pipeline.get(key).name
    except KeyError:
        return key


def is_closed(key: str, pipeline: Pipeline = DEFAULT_PIPELINE) -> bool:
    """True for 赢单 / 输单 (and any stage configured as closed)."""
    return pipeline.get(key).closed


def is_forward(current: str, target: str, pipeline: Pipeline = DEFAULT_PIPELINE) -> bool:
    """True when moving from ``current`` to ``target`` goes strictly forward out of an open stage.

    rank(target) > rank(current) and current is not closed; so never backwards, never sideways
    (same stage, or 赢单 ↔ 输单), never out of 赢单 / 输单.
    """
    cur, tgt = pipeline.get(current), pipeline.get(target)
    return not cur.closed and tgt.rank > cur.rank


def sla_days(key: str, pipeline: Pipeline = DEFAULT_PIPELINE) -> int | None:
    """The dwell-time SLA of a stage in days (None for 线索 and closed stages by default)."""
    return pipeline.get(key).sla_days
