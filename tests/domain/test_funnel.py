"""The weekly funnel heatmap: which intervals count, cell averages, ratios and the 3 flagged cells."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from domain.funnel import (
    SHANGHAI,
    StageInterval,
    dwell_in_week,
    funnel_heatmap,
    previous_week,
    week_bounds,
)

# The seeded week: Monday 2026-03-02 00:00 to Monday 2026-03-09 00:00, Asia/Shanghai.
START, END = week_bounds(date(2026, 3, 4))
NAMES = {"zhangsan": "张三", "lisi": "李四", "wangwu": "王五"}
REPS = ["zhangsan", "lisi", "wangwu"]


def at(day: float) -> datetime:
    """``day`` days after the week's start (negative: before it)."""
    return START + timedelta(days=day)


def stay(rep: str, opp: str, stage: str, entered: float, left: float | None = None) -> StageInterval:
    return StageInterval(rep, opp, stage, at(entered), None if left is None else at(left))


SEEDED_WEEK = [
    # 张三: two diagnoses that closed in the week (14 d and 10 d → 12 d, 1.71× of 7 d)
    stay("zhangsan", "A", "diagnosis", -12, 2),
    stay("zhangsan", "B", "diagnosis", -7, 3),
    # 张三: a demo still open at week end, entered 20 days before it (27 d → 2.7× of 10 d)
    stay("zhangsan", "C", "demo", -20),
    # 李四: negotiation closed in the week after 35 d (2.5× of 14 d)
    stay("lisi", "D", "negotiation", -30, 5),
    # 李四: solution confirmed, closed in the week after 4 d (0.57×)
    stay("lisi", "E", "solution_confirmed", -3, 1),
    # 王五: a diagnosis that left *after* the week: open at week end, aged 8 d (1.14×)
    stay("wangwu", "F", "diagnosis", -1, 10),
    # 王五: a demo of exactly 10 d: ratio 1.0, not overtime
    stay("wangwu", "G", "demo", -5, 5),
    # not counted: ended before the week, began after it, a stage without SLA, a rep of another team
    stay("wangwu", "H", "negotiation", -40, -1),
    stay("wangwu", "I", "negotiation", 7.5),
    stay("lisi", "J", "lead", -50, 2),
    stay("zhaoliu", "K", "diagnosis", -60),
]


def test_the_week_runs_monday_to_monday_in_shanghai() -> None:
    assert START == datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI)
    assert END == datetime(2026, 3, 9, 0, 0, tzinfo=SHANGHAI)
    # Monday 09:00 of the next week reports this one
    assert previous_week(datetime(2026, 3, 9, 9, 0, tzinfo=SHANGHAI)) == (START, END)


def test_seeded_week_cell_values() -> None:
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)

    assert [s.key for s in heatmap.stages] == ["diagnosis", "demo", "solution_confirmed", "negotiation"]
    assert heatmap.stage_slas == (7.0, 10.0, 7.0, 14.0)
    assert heatmap.rep_names == ("张三", "李四", "王五")

    table = [[None if c.avg_days is None else round(c.avg_days, 2) for c in row] for row in heatmap.cells]
    assert table == [
        [12.0, 27.0, None, None],
        [None, None, 4.0, 35.0],
        [8.0, 10.0, None, None],
    ]
    assert heatmap.cell("zhangsan", "diagnosis").intervals == 2
    assert heatmap.cell("zhangsan", "diagnosis").ratio == pytest.approx(12 / 7)
    assert heatmap.cell("wangwu", "demo").ratio == pytest.approx(1.0)
    assert heatmap.cell("wangwu", "negotiation").intervals == 0


def test_seeded_week_flags_the_three_worst_overtime_cells() -> None:
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)

    assert [(f.rank, f.rep, f.stage) for f in heatmap.flagged] == [
        (1, "zhangsan", "demo"),
        (2, "lisi", "negotiation"),
        (3, "zhangsan", "diagnosis"),
    ]
    # 王五's diagnosis is over SLA too (1.14×) but only the top 3 are flagged
    assert not heatmap.cell("wangwu", "diagnosis").flagged
    flagged_cells = {(c.rep, c.stage) for row in heatmap.cells for c in row if c.flagged}
    assert flagged_cells == {("zhangsan", "demo"), ("lisi", "negotiation"), ("zhangsan", "diagnosis")}

    top = heatmap.flagged[0]
    assert top.ratio == pytest.approx(2.7)
    assert top.suggestion.startswith("张三·方案演示：平均停留 27.0 天，是 SLA（10 天）的 2.7 倍。建议：")
    assert "演示" in top.advice


def test_only_ratios_strictly_above_one_are_flagged() -> None:
    heatmap = funnel_heatmap([stay("lisi", "X", "demo", -5, 5)], ["lisi"], START)
    assert heatmap.cell("lisi", "demo").ratio == pytest.approx(1.0)
    assert heatmap.flagged == ()


def test_equal_ratios_rank_by_row_then_column() -> None:
    intervals = [stay(rep, rep + stage, stage, -sla, 1) for rep in ("b", "a")
                 for stage, sla in (("diagnosis", 13), ("solution_confirmed", 13))]
    heatmap = funnel_heatmap(intervals, ["a", "b"], START)
    assert [(f.rep, f.stage) for f in heatmap.flagged] == [
        ("a", "diagnosis"), ("a", "solution_confirmed"), ("b", "diagnosis"),
    ]


def test_a_rep_without_intervals_has_an_empty_row() -> None:
    heatmap = funnel_heatmap(SEEDED_WEEK, ["newbie"], START)
    assert all(c.avg_days is None and c.ratio is None for c in heatmap.cells[0])


def test_sla_overrides_change_ratio_and_flags() -> None:
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, slas={"demo": 30})
    assert heatmap.cell("zhangsan", "demo").ratio == pytest.approx(0.9)
    assert ("zhangsan", "demo") not in {(f.rep, f.stage) for f in heatmap.flagged}


@pytest.mark.parametrize(
    ("entered", "left", "dwell_days"),
    [
        (-3, 0, 3),  # left exactly at the week's start: counts
        (-3, -0.001, None),  # left just before: does not
        (1, 7, 6),  # left exactly at week end: open at week end, aged 6 days
        (7, None, None),  # entered at week end: not in this week
        (-2, None, 9),  # open: aged at week end
    ],
)
def test_which_intervals_count(entered: float, left: float | None, dwell_days: float | None) -> None:
    dwell = dwell_in_week(stay("r", "o", "demo", entered, left), START, END)
    assert (None if dwell is None else dwell / timedelta(days=1)) == (
        None if dwell_days is None else pytest.approx(dwell_days)
    )
