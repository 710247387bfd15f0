"""The 12-item sales-process health check: scores with how they were computed, the weakest, the radar PNG."""

import re
import struct
import warnings
from dataclasses import replace
from decimal import Decimal as D

import pytest
from matplotlib.ft2font import FT2Font

from domain.fonts import find_cjk_font
from domain.healthcheck import (
    LABELS,
    STEPS,
    HealthCheckConfig,
    HealthCheckInputError,
    HealthCheckInputs,
    HealthItem,
    health_check,
    render_health_check,
)
from domain.healthcheck_chart import DPI, SIZE_INCHES, TITLE, TITLE_NO_DATA, render_radar_png
from tests.domain.test_funnel_chart import glyph_warnings, png_size

# A month of a three-rep team.
TEAM_MONTH = HealthCheckInputs(
    visits_logged=45, visits_complete=40,
    quality_visits=60, active_reps=3, weeks=D(4),
    stage_intervals=20, stage_intervals_within_sla=12,
    opportunities_won=3, opportunities_lost=9,
    promises=10, c_grade_promises=6,
    forecast_accuracy=D("0.82"),
    month_end_concentration=D("0.35"),
    receivables_outstanding=D("500000.00"), receivables_overdue=D("120000.00"),
    collaboration_requests=5, collaboration_confirmed=4,
    active_customers=12, customers_with_health_score=9,
    customers=12, customers_in_duplicate_pairs=2,
    followup_reminders=8, followups_on_time=6,
)  # fmt: skip


def scores(check):
    return {i.item: i.score for i in check.items}


def test_twelve_items_each_with_its_score_and_how():
    check = health_check(TEAM_MONTH)
    assert [i.item for i in check.items] == list(HealthItem)
    assert scores(check) == {
        HealthItem.VISIT_COMPLETENESS: 89,  # 40 / 45
        HealthItem.QUALITY_VISITS: 63,  # 60 / 3 / 4 = 5 a week, of 8
        HealthItem.STAGE_DWELL: 60,
        HealthItem.CONVERSION: 83,  # 25% won, of 30%
        HealthItem.C_GRADE_SHARE: 40,  # 60% C
        HealthItem.FORECAST_ACCURACY: 82,
        HealthItem.MONTH_END_CONCENTRATION: 38,  # (50 − 35) / (50 − 10)
        HealthItem.OVERDUE_RECEIVABLES: 76,
        HealthItem.COLLABORATION: 80,
        HealthItem.HEALTH_COVERAGE: 75,
        HealthItem.DUPLICATE_CUSTOMERS: 0,  # 16.7% ≥ 10%
        HealthItem.FOLLOWUP_TIMELINESS: 75,
    }
    how = {i.item: i.how for i in check.items}
    assert how[HealthItem.VISIT_COMPLETENESS] == "必填齐全的拜访 40 / 全部拜访 45 = 89%"
    assert how[HealthItem.QUALITY_VISITS] == "高质量拜访 60 次 ÷ 3 人 ÷ 4 周 = 每人每周 5 次（8 次记满分）"
    assert how[HealthItem.OVERDUE_RECEIVABLES] == (
        "逾期应收 ¥120,000.00 / 未收应收 ¥500,000.00 = 24%，得分 = 100 − 占比"
    )
    assert how[HealthItem.DUPLICATE_CUSTOMERS] == "疑似重复客户 2 / 客户 12 = 16.7%（0 满分，≥ 10% 为 0 分）"
    assert all(i.label == LABELS[i.item] and i.step == STEPS[i.item] for i in check.items)


def test_the_three_weakest_come_with_the_step_to_take():
    check = health_check(TEAM_MONTH)
    assert [(i.item, i.score) for i in check.weakest] == [
        (HealthItem.DUPLICATE_CUSTOMERS, 0),
        (HealthItem.MONTH_END_CONCENTRATION, 38),
        (HealthItem.C_GRADE_SHARE, 40),
    ]
    text = render_health_check(check)
    assert "① 重复客户率（0 分）：管理员发送「查重」" in text
    assert text.splitlines()[0] == "销售过程健康度体检（综合 63 分）"  # (89+63+60+83+40+82+38+76+80+75+0+75) / 12
    assert len([line for line in text.splitlines() if re.match(r"\d{1,2}\. ", line)]) == 12


def test_missing_data_shows_as_no_data_and_is_never_among_the_weakest():
    partial = replace(TEAM_MONTH, customers=None, customers_in_duplicate_pairs=None, promises=0, c_grade_promises=0)
    check = health_check(partial)
    by_item = {i.item: i for i in check.items}
    assert by_item[HealthItem.DUPLICATE_CUSTOMERS].score is None
    assert by_item[HealthItem.DUPLICATE_CUSTOMERS].how == "无数据：没有客户"
    assert by_item[HealthItem.C_GRADE_SHARE].score is None
    assert [i.item for i in check.weakest] == [
        HealthItem.MONTH_END_CONCENTRATION, HealthItem.STAGE_DWELL, HealthItem.QUALITY_VISITS,
    ]
    assert "12. 跟进及时率：75 分" in render_health_check(check)
    assert "11. 重复客户率：无数据 —— 无数据：没有客户" in render_health_check(check)


def test_nothing_known_means_no_overall_score_and_no_weakest():
    check = health_check(HealthCheckInputs())
    assert len(check.items) == 12 and all(i.score is None for i in check.items)
    assert check.weakest == () and check.overall is None
    assert render_health_check(check).splitlines()[0] == "销售过程健康度体检（综合 无数据）"


def test_full_marks_are_not_weak_points():
    check = health_check(HealthCheckInputs(visits_logged=10, visits_complete=10, forecast_accuracy=D(1),
                                           month_end_concentration=D("0.05"), opportunities_won=1,
                                           opportunities_lost=0))
    assert check.weakest == () and check.overall == 100


@pytest.mark.parametrize(
    ("share", "points"), [(D("0"), 100), (D("0.10"), 100), (D("0.30"), 50), (D("0.50"), 0), (D("0.82"), 0)]
)
def test_month_end_concentration_is_full_at_a_natural_share_and_zero_at_the_flag(share, points):
    check = health_check(HealthCheckInputs(month_end_concentration=share))
    assert scores(check)[HealthItem.MONTH_END_CONCENTRATION] == points


def test_conversion_and_quality_visits_are_capped_at_full_marks_and_configurable():
    inputs = HealthCheckInputs(opportunities_won=6, opportunities_lost=4, quality_visits=100, active_reps=2, weeks=D(4))
    assert scores(health_check(inputs))[HealthItem.CONVERSION] == 100
    assert scores(health_check(inputs))[HealthItem.QUALITY_VISITS] == 100
    strict = HealthCheckConfig(conversion_target=D("0.80"), quality_visits_per_week=D(25))
    assert scores(health_check(inputs, strict))[HealthItem.CONVERSION] == 75
    assert scores(health_check(inputs, strict))[HealthItem.QUALITY_VISITS] == 50


@pytest.mark.parametrize(
    "inputs",
    [
        HealthCheckInputs(visits_logged=5, visits_complete=6),
        HealthCheckInputs(promises=-1, c_grade_promises=0),
        HealthCheckInputs(forecast_accuracy=D("1.2")),
        HealthCheckInputs(month_end_concentration=D("-0.1")),
        HealthCheckInputs(opportunities_won=-1, opportunities_lost=3),
    ],
)
def test_impossible_inputs_are_refused(inputs):
    with pytest.raises(HealthCheckInputError):
        health_check(inputs)


# --- radar chart ---------------------------------------------------------------------------------------


def test_the_radar_png_has_the_twelve_chinese_labels_without_missing_glyphs():
    check = health_check(TEAM_MONTH)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_radar_png(check)
    assert glyph_warnings(caught) == []
    assert png_size(png) == (round(SIZE_INCHES[0] * DPI), round(SIZE_INCHES[1] * DPI))


def test_a_radar_with_no_data_still_renders():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_radar_png(health_check(HealthCheckInputs()), dpi=60)
    assert glyph_warnings(caught) == []
    assert png_size(png) == (450, 450)


def test_the_font_has_every_character_the_radar_writes():
    font = FT2Font(str(find_cjk_font()))
    text = "".join(LABELS.values()) + TITLE + TITLE_NO_DATA + "无数据0123456789"
    missing = [ch for ch in set(text) if not ch.isspace() and ch not in "{}" and font.get_char_index(ord(ch)) == 0]
    assert missing == []


def test_png_size_reads_the_header():
    # guards png_size itself: a hand-made IHDR of 3 × 2
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 3, 2)
    assert png_size(header) == (3, 2)
