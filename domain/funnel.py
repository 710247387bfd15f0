"""The weekly funnel heatmap (PRODUCT.md §1.6): reps × stages, average dwell time against the SLA.

Input is the stage history as intervals: an opportunity of a rep sat in a stage from ``entered_at``
until ``left_at`` (None while it is still there). For the week [start, end) — Monday 00:00 to the
next Monday 00:00 in the team's time zone — an interval counts in its (rep, stage) cell when:

- it *closed in the week*: start <= left_at < end; its dwell is left_at - entered_at;
- or it was *open at week end*: entered_at < end and (left_at is None or left_at >= end); its dwell
  is end - entered_at (aged at week end). An interval that closed later is still open at that week's
  end, so re-running a past week gives the same picture.

Intervals that ended before the week, or began at or after its end, do not count. A cell's value is
the mean dwell in days (86 400 s) of its counted intervals; its ratio is that mean over the stage's
SLA. Columns are the stages that have an SLA, in pipeline order; rows are the team's reps in the
order given, with empty cells for reps without intervals. The 3 cells with the highest ratio
strictly above 1 are flagged (ties: earlier row, then earlier column), each with a suggestion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from domain.stages import (
    DEFAULT_PIPELINE,
    DEMO,
    DIAGNOSIS,
    NEGOTIATION,
    SOLUTION_CONFIRMED,
    Pipeline,
    Stage,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FLAGGED_CELLS = 3
_DAY_SECONDS = 86_400

# User-visible wording (domain may not import the bot's message catalog).
_SUMMARY = "{rep}·{stage}：平均停留 {avg:.1f} 天，是 SLA（{sla:g} 天）的 {ratio:.1f} 倍。"
_SUGGESTION = "{summary}建议：{advice}"
_ADVICE = {
    DIAGNOSIS: "主管陪访一次，用提问清单确认痛点、预算和决策人，补齐需求诊断报告",
    DEMO: "一周内约定演示时间，演示前发送同行业案例，演示后当天跟进客户反馈",
    SOLUTION_CONFIRMED: "补齐竞品对比表和预算情况，请客户确认方案范围和决策流程",
    NEGOTIATION: "主管介入报价策略，明确决策链和签约时间表，必要时申请特价审批",
}
_ADVICE_OTHER = "逐个复盘停留在该阶段的商机，为每个商机约定下一步和完成日期"


@dataclass(frozen=True)
class StageInterval:
    """One stay of one opportunity of ``rep`` in ``stage`` (``left_at`` None: still there)."""

    rep: str
    opportunity: str
    stage: str
    entered_at: datetime
    left_at: datetime | None = None


@dataclass(frozen=True)
class HeatCell:
    """One (rep, stage) cell: ``avg_days`` and ``ratio`` are None when no interval counted."""

    rep: str
    stage: str
    intervals: int
    avg_days: float | None
    sla_days: float
    ratio: float | None
    flagged: bool = False


@dataclass(frozen=True)
class OvertimeCell:
    """A flagged cell, ranked from 1; ``suggestion`` (= ``summary`` + 建议：``advice``) is listed under the image."""

    rank: int
    rep: str
    rep_name: str
    stage: str
    stage_name: str
    avg_days: float
    sla_days: float
    ratio: float
    summary: str
    advice: str
    suggestion: str


@dataclass(frozen=True)
class FunnelHeatmap:
    """The week's grid: ``cells[row][column]`` for ``reps`` × ``stages`` (SLA days in ``stage_slas``);
    ``flagged`` in rank order."""

    week_start: datetime
    week_end: datetime
    reps: tuple[str, ...]
    rep_names: tuple[str, ...]
    stages: tuple[Stage, ...]
    stage_slas: tuple[float, ...]
    cells: tuple[tuple[HeatCell, ...], ...]
    flagged: tuple[OvertimeCell, ...]

    def cell(self, rep: str, stage: str) -> HeatCell:
        """The cell of a rep id and a stage key."""
        row = self.reps.index(rep)
        col = [s.key for s in self.stages].index(stage)
        return self.cells[row][col]


def week_bounds(day: date, tz: tzinfo = SHANGHAI) -> tuple[datetime, datetime]:
    """Monday 00:00 of the week containing ``day`` and the next Monday 00:00, in ``tz``."""
    monday = day - timedelta(days=day.weekday())
    return (
        datetime.combine(monday, time(0), tzinfo=tz),
        datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz),
    )


def previous_week(now: datetime, tz: tzinfo = SHANGHAI) -> tuple[datetime, datetime]:
    """The last full week before ``now`` (what the Monday 09:00 job reports)."""
    local_day = now.astimezone(tz).date()
    return week_bounds(local_day - timedelta(days=7), tz)


def dwell_in_week(interval: StageInterval, start: datetime, end: datetime) -> timedelta | None:
    """The dwell this interval contributes to the week [start, end), or None when it does not count."""
    if interval.entered_at >= end:
        return None
    if interval.left_at is None or interval.left_at >= end:
        return max(end - interval.entered_at, timedelta(0))
    if interval.left_at >= start:
        return max(interval.left_at - interval.entered_at, timedelta(0))
    return None


def stage_advice(stage: str) -> str:
    """What a manager should do about reps who overstay in ``stage``."""
    return _ADVICE.get(stage, _ADVICE_OTHER)


DwellSums = Mapping[tuple[str, str], tuple[float, int]]
"""Per (rep, stage key): the counted intervals' dwell in days summed, and how many counted (see dwell_sums)."""


def _sla_of(pipeline: Pipeline, slas: Mapping[str, float] | None) -> dict[str, float]:
    sla_of = {s.key: float(s.sla_days) for s in pipeline.sla_stages() if s.sla_days is not None}
    if slas:
        sla_of.update({k: float(v) for k, v in slas.items() if v})
    return sla_of


def dwell_sums(intervals: Iterable[StageInterval], reps: Iterable[str], week_start: datetime,
               stages: Iterable[str]) -> dict[tuple[str, str], tuple[float, int]]:
    """Per (rep, stage) of ``reps`` and ``stages``: the sum of the dwell days (seconds / 86 400) of the
    intervals counted in the week, added in the order given, and their count. A float sum depends on its
    order: the heatmap's figures are those of this sum (storage.funnel_queries.stage_dwell_sums gives the
    same floats from SQL, adding in the order of opportunity id and time)."""
    week_end = week_start + timedelta(days=7)
    wanted, columns = set(reps), set(stages)
    sums: dict[tuple[str, str], tuple[float, int]] = {}
    for iv in intervals:
        if iv.rep not in wanted or iv.stage not in columns:
            continue
        dwell = dwell_in_week(iv, week_start, week_end)
        if dwell is None:
            continue
        total, n = sums.get((iv.rep, iv.stage), (0.0, 0))
        sums[(iv.rep, iv.stage)] = (total + dwell.total_seconds() / _DAY_SECONDS, n + 1)
    return sums


def funnel_heatmap(
    intervals: Iterable[StageInterval],
    reps: Sequence[str],
    week_start: datetime,
    *,
    rep_names: Mapping[str, str] | None = None,
    slas: Mapping[str, float] | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
) -> FunnelHeatmap:
    """The heatmap of ``reps`` for the 7-day week starting at ``week_start`` (see module docstring).

    ``slas`` overrides the pipeline's SLA days per stage key; stages without an SLA are not columns.
    """
    sums = dwell_sums(intervals, reps, week_start, _sla_of(pipeline, slas))
    return heatmap_of_sums(sums, reps, week_start, rep_names=rep_names, slas=slas, pipeline=pipeline)


def heatmap_of_sums(
    sums: DwellSums,
    reps: Sequence[str],
    week_start: datetime,
    *,
    rep_names: Mapping[str, str] | None = None,
    slas: Mapping[str, float] | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
) -> FunnelHeatmap:
    """``funnel_heatmap`` from the intervals' ``dwell_sums`` (e.g. summed by the database); sums of other reps
    or stages are ignored."""
    week_end = week_start + timedelta(days=7)
    sla_of = _sla_of(pipeline, slas)
    stages = tuple(s for s in pipeline if s.key in sla_of)
    names = rep_names or {}

    rows: list[list[HeatCell]] = []
    for rep in reps:
        row = []
        for stage in stages:
            total, n = sums.get((rep, stage.key), (0.0, 0))
            sla = sla_of[stage.key]
            avg = total / n if n else None
            row.append(HeatCell(rep, stage.key, n, avg, sla, None if avg is None else avg / sla))
        rows.append(row)

    over = [
        (cell.ratio, r, c)
        for r, row in enumerate(rows)
        for c, cell in enumerate(row)
        if cell.ratio is not None and cell.ratio > 1
    ]
    over.sort(key=lambda t: (-t[0], t[1], t[2]))
    flagged: list[OvertimeCell] = []
    for rank, (ratio, r, c) in enumerate(over[:FLAGGED_CELLS], start=1):
        cell = rows[r][c]
        rows[r][c] = replace(cell, flagged=True)
        rep_name = names.get(cell.rep, cell.rep)
        stage = stages[c]
        assert cell.avg_days is not None  # a ratio implies an average
        summary = _SUMMARY.format(rep=rep_name, stage=stage.name, avg=cell.avg_days, sla=cell.sla_days,
                                  ratio=ratio)
        advice = stage_advice(stage.key)
        flagged.append(
            OvertimeCell(rank, cell.rep, rep_name, stage.key, stage.name, cell.avg_days, cell.sla_days,
                         ratio, summary, advice, _SUGGESTION.format(summary=summary, advice=advice))
        )

    return FunnelHeatmap(
        week_start=week_start,
        week_end=week_end,
        reps=tuple(reps),
        rep_names=tuple(names.get(r, r) for r in reps),
        stages=stages,
        stage_slas=tuple(sla_of[s.key] for s in stages),
        cells=tuple(tuple(row) for row in rows),
        flagged=tuple(flagged),
    )
