"""The 12-item sales-process health check 销售过程健康度测评 (PRODUCT.md §5, ``体检``).

Each item scores 0–100, where 100 is healthy, from plain aggregates a handler counts with SQL
(``HealthCheckInputs``; one period, one team or the whole company):

1. 拜访完整率 = visits with every required field / visits logged × 100
2. 人均高质量拜访 = min(1, quality visits / reps / weeks / 8) × 100 (8 a week is §3's full mark)
3. 阶段停留达标 = stage intervals within their SLA / stage intervals × 100
4. 商机转化率 = min(1, won / closed (won + lost) / ``conversion_target``) × 100 (default 30%)
5. C级承诺占比 = (1 − C-grade promises / promises) × 100
6. 预测准确率 = forecast accuracy (``domain.forecast.forecast_accuracy``, 0–1) × 100
7. 月底集中度: share c of the base-scenario amount due in a month's last 3 days (§2.4);
   100 when c ≤ 10% (3 days of 30), 0 when c ≥ 50% (§2.4's flag), linear between
8. 逾期应收 = (1 − overdue amount / outstanding amount) × 100
9. 协同确认率 = collaboration requests confirmed by the CSM / requests sent × 100
10. 健康分覆盖率 = active customers with a health score / active customers × 100
11. 重复客户率: share d of customers in a candidate duplicate pair (``domain.master_data``);
    100 at d = 0, 0 at d ≥ 10%, linear between
12. 跟进及时率 = follow-up reminders acted on within their window / reminders × 100

Scores are rounded half-up to whole points. An item whose inputs are missing (None) or whose
denominator is 0 shows 无数据: it is left out of the weakest items and of the overall score (the mean
of the items with data), since "no data" is not the same as "bad". The weakest are the
``WEAKEST`` lowest-scoring items below 100 (ties in the order above), each with the step to take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from domain.money import format_percent, format_yuan

WEAKEST = 3
ONE = Decimal(1)
HUNDRED = Decimal(100)


class HealthItem(StrEnum):
    VISIT_COMPLETENESS = "visit_completeness"
    QUALITY_VISITS = "quality_visits"
    STAGE_DWELL = "stage_dwell"
    CONVERSION = "conversion"
    C_GRADE_SHARE = "c_grade_share"
    FORECAST_ACCURACY = "forecast_accuracy"
    MONTH_END_CONCENTRATION = "month_end_concentration"
    OVERDUE_RECEIVABLES = "overdue_receivables"
    COLLABORATION = "collaboration"
    HEALTH_COVERAGE = "health_coverage"
    DUPLICATE_CUSTOMERS = "duplicate_customers"
    FOLLOWUP_TIMELINESS = "followup_timeliness"


# --- user-visible text (Simplified Chinese) ------------------------------------------------------------
LABELS: dict[HealthItem, str] = {
    HealthItem.VISIT_COMPLETENESS: "拜访完整率",
    HealthItem.QUALITY_VISITS: "人均高质量拜访",
    HealthItem.STAGE_DWELL: "阶段停留达标",
    HealthItem.CONVERSION: "商机转化率",
    HealthItem.C_GRADE_SHARE: "C级承诺占比",
    HealthItem.FORECAST_ACCURACY: "预测准确率",
    HealthItem.MONTH_END_CONCENTRATION: "月底集中度",
    HealthItem.OVERDUE_RECEIVABLES: "逾期应收",
    HealthItem.COLLABORATION: "协同确认率",
    HealthItem.HEALTH_COVERAGE: "健康分覆盖率",
    HealthItem.DUPLICATE_CUSTOMERS: "重复客户率",
    HealthItem.FOLLOWUP_TIMELINESS: "跟进及时率",
}
STEPS: dict[HealthItem, str] = {
    HealthItem.VISIT_COMPLETENESS: "要求拜访当天补齐痛点、预算、下一步等必填项；主管每周抽查缺项最多的人。",
    HealthItem.QUALITY_VISITS: "为每位销售排定每周 8 次高质量拜访，周会逐人复盘拜访计划。",
    HealthItem.STAGE_DWELL: "逐一过停留超 SLA 的商机，明确推进动作和截止日期，推不动的及时降级或关闭。",
    HealthItem.CONVERSION: "复盘近期输单原因，在需求诊断阶段加强资格判断，减少无效商机。",
    HealthItem.C_GRADE_SHARE: "把 C 级口头承诺升级：关联合同分期请主管审批（B 级），或索取盖章付款承诺函（A 级）。",
    HealthItem.FORECAST_ACCURACY: "月初逐笔核对回款预测，只把 A 级和已批准的 B 级承诺计入财务预测。",
    HealthItem.MONTH_END_CONCENTRATION: "把回款节点前移、分散到全月，月中设置回款检查点。",
    HealthItem.OVERDUE_RECEIVABLES: "按账龄逐笔催收逾期应收，超过 60 天的升级给主管和财务。",
    HealthItem.COLLABORATION: "协同请求写清客户、需求和期望时间，发出前与客户成功对齐，复盘被婉拒的请求。",
    HealthItem.HEALTH_COVERAGE: "为活跃客户补齐 NPS、登录、工单等健康分数据来源。",
    HealthItem.DUPLICATE_CUSTOMERS: "管理员发送「查重」，逐对核实后用「合并」清理重复客户。",
    HealthItem.FOLLOWUP_TIMELINESS: "收到跟单提醒后 2 小时内联系客户，并在拜访记录中登记。",
}
HOW_RATIO = "{part_label} {part} / {whole_label} {whole} = {percent}"
HOW_INVERSE = "{part_label} {part} / {whole_label} {whole} = {percent}，得分 = 100 − 占比"
HOW_QUALITY = "高质量拜访 {visits} 次 ÷ {reps} 人 ÷ {weeks} 周 = 每人每周 {rate} 次（{target} 次记满分）"
HOW_CONVERSION = "赢单 {won} / 已结束商机 {closed} = 赢单率 {percent}（达到 {target} 记满分）"
HOW_FORECAST = "回款预测准确率 {percent}（1 − |预测 − 实收| ÷ 实收）"
HOW_MONTH_END = "月底最后 3 天的回款占比 {percent}（≤ {full} 满分，≥ {zero} 为 0 分）"
HOW_DUPLICATES = "疑似重复客户 {part} / 客户 {whole} = {percent}（0 满分，≥ {zero} 为 0 分）"
NO_DATA = "无数据"
NO_DATA_HOW = "无数据：{what}"
NO_DATA_WHY: dict[HealthItem, str] = {
    HealthItem.VISIT_COMPLETENESS: "本期没有拜访记录",
    HealthItem.QUALITY_VISITS: "本期没有在岗销售或统计周数",
    HealthItem.STAGE_DWELL: "本期没有阶段停留记录",
    HealthItem.CONVERSION: "本期没有赢单或输单的商机",
    HealthItem.C_GRADE_SHARE: "本期没有回款承诺",
    HealthItem.FORECAST_ACCURACY: "还没有可比较的月度预测",
    HealthItem.MONTH_END_CONCENTRATION: "没有未来的回款计划",
    HealthItem.OVERDUE_RECEIVABLES: "没有未收应收",
    HealthItem.COLLABORATION: "本期没有协同请求",
    HealthItem.HEALTH_COVERAGE: "没有活跃客户",
    HealthItem.DUPLICATE_CUSTOMERS: "没有客户",
    HealthItem.FOLLOWUP_TIMELINESS: "本期没有跟单提醒",
}
REPORT_TITLE = "销售过程健康度体检（综合 {overall}）"
OVERALL_POINTS = "{score} 分"
ITEM_LINE = "{n}. {label}：{score} —— {how}"
ITEM_SCORE = "{score} 分"
WEAKEST_HEADING = "最需要改进的 {n} 项："
WEAKEST_LINE = "{mark} {label}（{score} 分）：{step}"
ALL_HEALTHY = "12 项全部满分，继续保持。"
RANK_MARKS = "①②③④⑤"


@dataclass(frozen=True)
class HealthCheckConfig:
    quality_visits_per_week: Decimal = Decimal(8)
    conversion_target: Decimal = Decimal("0.30")
    month_end_full_marks: Decimal = Decimal("0.10")
    month_end_zero: Decimal = Decimal("0.50")
    duplicate_rate_zero: Decimal = Decimal("0.10")


DEFAULT_HEALTH_CHECK_CONFIG = HealthCheckConfig()


@dataclass(frozen=True)
class HealthCheckInputs:
    """The aggregates of one period; None = not known. Amounts are Decimal yuan, shares 0–1."""

    visits_logged: int | None = None
    visits_complete: int | None = None
    quality_visits: int | None = None
    active_reps: int | None = None
    weeks: Decimal | None = None
    stage_intervals: int | None = None
    stage_intervals_within_sla: int | None = None
    opportunities_won: int | None = None
    opportunities_lost: int | None = None
    promises: int | None = None
    c_grade_promises: int | None = None
    forecast_accuracy: Decimal | None = None
    month_end_concentration: Decimal | None = None
    receivables_outstanding: Decimal | None = None
    receivables_overdue: Decimal | None = None
    collaboration_requests: int | None = None
    collaboration_confirmed: int | None = None
    active_customers: int | None = None
    customers_with_health_score: int | None = None
    customers: int | None = None
    customers_in_duplicate_pairs: int | None = None
    followup_reminders: int | None = None
    followups_on_time: int | None = None


@dataclass(frozen=True)
class HealthItemResult:
    item: HealthItem
    label: str
    score: int | None  # None = 无数据
    how: str  # how it was computed, with the numbers
    step: str  # what to do when it is weak


@dataclass(frozen=True)
class HealthCheck:
    items: tuple[HealthItemResult, ...]  # all 12, in ``HealthItem`` order
    weakest: tuple[HealthItemResult, ...]  # up to ``WEAKEST``, lowest first
    overall: int | None  # mean of the scores that have data


class HealthCheckInputError(ValueError):
    """Inputs that cannot be right (a negative count, more complete visits than visits …)."""


def _clamp01(x: Decimal) -> Decimal:
    return max(Decimal(0), min(ONE, x))


def _points(ratio: Decimal) -> int:
    return int((_clamp01(ratio) * HUNDRED).quantize(ONE, rounding=ROUND_HALF_UP))


def _checked_part(name: str, part: int | Decimal | None, whole: int | Decimal | None) -> bool:
    """True when both are known and the whole is positive; raises on impossible values."""
    if part is None or whole is None:
        return False
    if part < 0 or whole < 0 or part > whole:
        raise HealthCheckInputError(f"{name}: {part} of {whole} is impossible")
    return whole > 0


_Scorer = Callable[[HealthCheckInputs, HealthCheckConfig], "tuple[int, str] | None"]


def _ratio(part_attr: str, whole_attr: str, part_label: str, whole_label: str, inverse: bool = False) -> _Scorer:
    def score(x: HealthCheckInputs, _c: HealthCheckConfig) -> tuple[int, str] | None:
        part, whole = getattr(x, part_attr), getattr(x, whole_attr)
        if not _checked_part(part_attr, part, whole):
            return None
        share = Decimal(part) / Decimal(whole)
        shown = (format_yuan(part), format_yuan(whole)) if isinstance(part, Decimal) else (part, whole)
        template = HOW_INVERSE if inverse else HOW_RATIO
        how = template.format(part_label=part_label, part=shown[0], whole_label=whole_label, whole=shown[1],
                              percent=format_percent(share))
        return _points(ONE - share if inverse else share), how

    return score


def _quality(x: HealthCheckInputs, c: HealthCheckConfig) -> tuple[int, str] | None:
    if x.quality_visits is None or not x.active_reps or not x.weeks or x.weeks <= 0:
        return None
    if x.quality_visits < 0 or x.active_reps < 0:
        raise HealthCheckInputError("quality_visits and active_reps must not be negative")
    rate = Decimal(x.quality_visits) / x.active_reps / x.weeks
    how = HOW_QUALITY.format(visits=x.quality_visits, reps=x.active_reps, weeks=_plain(x.weeks),
                             rate=_plain(rate.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)),
                             target=_plain(c.quality_visits_per_week))
    return _points(rate / c.quality_visits_per_week), how


def _conversion(x: HealthCheckInputs, c: HealthCheckConfig) -> tuple[int, str] | None:
    if x.opportunities_won is None or x.opportunities_lost is None:
        return None
    if x.opportunities_won < 0 or x.opportunities_lost < 0:
        raise HealthCheckInputError("won and lost opportunities must not be negative")
    closed = x.opportunities_won + x.opportunities_lost
    if closed == 0:
        return None
    rate = Decimal(x.opportunities_won) / closed
    how = HOW_CONVERSION.format(won=x.opportunities_won, closed=closed, percent=format_percent(rate),
                                target=format_percent(c.conversion_target))
    return _points(rate / c.conversion_target), how


def _share(name: str, value: Decimal | None) -> Decimal | None:
    if value is not None and not 0 <= value <= 1:
        raise HealthCheckInputError(f"{name} must be between 0 and 1, got {value}")
    return value


def _forecast(x: HealthCheckInputs, _c: HealthCheckConfig) -> tuple[int, str] | None:
    accuracy = _share("forecast_accuracy", x.forecast_accuracy)
    if accuracy is None:
        return None
    return _points(accuracy), HOW_FORECAST.format(percent=format_percent(accuracy))


def _month_end(x: HealthCheckInputs, c: HealthCheckConfig) -> tuple[int, str] | None:
    share = _share("month_end_concentration", x.month_end_concentration)
    if share is None:
        return None
    ratio = (c.month_end_zero - share) / (c.month_end_zero - c.month_end_full_marks)
    how = HOW_MONTH_END.format(percent=format_percent(share), full=format_percent(c.month_end_full_marks),
                               zero=format_percent(c.month_end_zero))
    return _points(ratio), how


def _duplicates(x: HealthCheckInputs, c: HealthCheckConfig) -> tuple[int, str] | None:
    if not _checked_part("customers_in_duplicate_pairs", x.customers_in_duplicate_pairs, x.customers):
        return None
    assert x.customers_in_duplicate_pairs is not None and x.customers is not None
    share = Decimal(x.customers_in_duplicate_pairs) / x.customers
    how = HOW_DUPLICATES.format(part=x.customers_in_duplicate_pairs, whole=x.customers,
                                percent=format_percent(share, 1), zero=format_percent(c.duplicate_rate_zero))
    return _points(ONE - share / c.duplicate_rate_zero), how


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


_SCORERS: dict[HealthItem, _Scorer] = {
    HealthItem.VISIT_COMPLETENESS: _ratio("visits_complete", "visits_logged", "必填齐全的拜访", "全部拜访"),
    HealthItem.QUALITY_VISITS: _quality,
    HealthItem.STAGE_DWELL: _ratio("stage_intervals_within_sla", "stage_intervals", "SLA 内的阶段停留", "全部停留"),
    HealthItem.CONVERSION: _conversion,
    HealthItem.C_GRADE_SHARE: _ratio("c_grade_promises", "promises", "C 级承诺", "全部承诺", inverse=True),
    HealthItem.FORECAST_ACCURACY: _forecast,
    HealthItem.MONTH_END_CONCENTRATION: _month_end,
    HealthItem.OVERDUE_RECEIVABLES: _ratio("receivables_overdue", "receivables_outstanding", "逾期应收",
                                           "未收应收", inverse=True),
    HealthItem.COLLABORATION: _ratio("collaboration_confirmed", "collaboration_requests", "被确认的协同请求",
                                     "发出的协同请求"),
    HealthItem.HEALTH_COVERAGE: _ratio("customers_with_health_score", "active_customers", "有健康分的活跃客户",
                                       "活跃客户"),
    HealthItem.DUPLICATE_CUSTOMERS: _duplicates,
    HealthItem.FOLLOWUP_TIMELINESS: _ratio("followups_on_time", "followup_reminders", "按时跟进的提醒", "全部提醒"),
}


def health_check(
    inputs: HealthCheckInputs, config: HealthCheckConfig = DEFAULT_HEALTH_CHECK_CONFIG
) -> HealthCheck:
    """All 12 items, the weakest (see module docstring) and the overall mean; raises
    ``HealthCheckInputError`` for impossible inputs."""
    items: list[HealthItemResult] = []
    for item in HealthItem:
        scored = _SCORERS[item](inputs, config)
        if scored is None:
            items.append(HealthItemResult(item, LABELS[item], None, NO_DATA_HOW.format(what=NO_DATA_WHY[item]),
                                          STEPS[item]))
        else:
            items.append(HealthItemResult(item, LABELS[item], scored[0], scored[1], STEPS[item]))
    order = list(HealthItem)
    scored_items = [i for i in items if i.score is not None]
    weak = sorted((i for i in scored_items if i.score is not None and i.score < 100),
                  key=lambda i: (i.score, order.index(i.item)))
    overall = None
    if scored_items:
        total = sum(Decimal(i.score or 0) for i in scored_items)
        overall = int((total / len(scored_items)).quantize(ONE, rounding=ROUND_HALF_UP))
    return HealthCheck(tuple(items), tuple(weak[:WEAKEST]), overall)


def score_label(result: HealthItemResult) -> str:
    """``87 分`` or ``无数据``."""
    return NO_DATA if result.score is None else ITEM_SCORE.format(score=result.score)


def render_health_check(check: HealthCheck) -> str:
    """The ``体检`` text: the title with the overall score, the 12 items with how, the weakest with steps."""
    overall = NO_DATA if check.overall is None else OVERALL_POINTS.format(score=check.overall)
    lines = [REPORT_TITLE.format(overall=overall)]
    lines.extend(
        ITEM_LINE.format(n=n, label=i.label, score=score_label(i), how=i.how)
        for n, i in enumerate(check.items, start=1)
    )
    if check.weakest:
        lines.append(WEAKEST_HEADING.format(n=len(check.weakest)))
        lines.extend(
            WEAKEST_LINE.format(mark=RANK_MARKS[k], label=i.label, score=i.score, step=i.step)
            for k, i in enumerate(check.weakest)
        )
    elif check.overall == 100 and all(i.score is not None for i in check.items):
        lines.append(ALL_HEALTHY)
    return "\n".join(lines)
