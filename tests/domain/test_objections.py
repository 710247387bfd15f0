"""Objection handling: the type, the competitor and figures named, and three scripts using the customer's data."""

from decimal import Decimal as D

import pytest

from domain.money import format_yuan
from domain.objections import (
    STRATEGIES,
    CustomerContext,
    ObjectionType,
    classify_objection,
    extract_amount,
    extract_competitor,
    extract_percent,
    handle_objection,
    instalments,
    price_gap,
    render_advice,
)

YUNQI = CustomerContext(
    name="杭州云栖科技", industry="制造", amount=D("360000.00"), products=("销售云", "回款管家")
)


def test_the_issue_s_price_objection_names_the_competitor_and_the_three_price_strategies():
    advice = handle_objection("你们价格比XX家贵30%", YUNQI)
    assert advice.analysis.type is ObjectionType.PRICE
    assert advice.analysis.competitor == "XX家"
    assert advice.analysis.percent == D(30)
    assert [s.name for s in advice.strategies] == ["成本拆解法", "价值量化法", "分期支付法"]
    for strategy in advice.strategies:
        assert "XX家" in strategy.script, strategy.name
        assert "杭州云栖科技" in strategy.script, strategy.name


def test_price_scripts_use_the_opportunity_amount_in_yuan():
    cost, value, instalment = handle_objection("你们价格比XX家贵30%", YUNQI).strategies
    assert "¥360,000.00" in cost.script and "¥10,000.00" in cost.script  # 360,000 / 36 months
    assert "差价约¥83,076.92" in cost.script  # 360,000 × 30 / 130
    assert "¥120,000.00" in value.script and "贵30%" in value.script and "制造行业" in value.script
    assert "¥144,000.00" in instalment.script and "¥72,000.00" in instalment.script
    assert "销售云和回款管家" in value.script


def test_the_rendered_reply_lists_type_competitor_and_each_script():
    text = render_advice(handle_objection("你们价格比XX家贵30%", YUNQI))
    lines = text.splitlines()
    assert lines[:3] == ["【杭州云栖科技】异议类型：价格", "提到的竞品：XX家", "1. 成本拆解法：把总价拆到每月、每个环节，让客户看清钱花在哪里"]
    assert sum(line.startswith("   话术：") for line in lines) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你们价格比XX家贵30%", ObjectionType.PRICE),
        ("太贵了，预算不够", ObjectionType.PRICE),
        ("竞品金蝶报价更低，功能也差不多", ObjectionType.COMPETITOR),
        ("我们现在用的是纷享销客，挺好用的", ObjectionType.COMPETITOR),
        ("这个要领导拍板，我做不了主", ObjectionType.AUTHORITY),
        ("得先跟集团汇报一下", ObjectionType.AUTHORITY),
        ("明年再说吧，现在不急", ObjectionType.TIMING),
        ("下半年再考虑，暂时没空", ObjectionType.TIMING),
        ("我们用Excel够用了，不需要", ObjectionType.NEED),
        ("贵司的方案挺好", ObjectionType.NEED),  # 贵司 is polite, not "expensive"; no cue → 需求
    ],
)
def test_each_type_is_recognised(text, expected):
    assert classify_objection(text).type is expected


def test_scores_explain_the_choice_and_ties_follow_the_type_order():
    analysis = classify_objection("你们价格比XX家贵30%")
    assert dict(analysis.scores) == {
        ObjectionType.PRICE: 7, ObjectionType.COMPETITOR: 2, ObjectionType.AUTHORITY: 0,
        ObjectionType.TIMING: 0, ObjectionType.NEED: 0,
    }
    assert set(analysis.cues) == {"价格", "贵"}
    # 领导 (决策权 3) against 明年 (时机 3): 决策权 comes first in the order
    assert classify_objection("领导说明年").type is ObjectionType.AUTHORITY
    nothing = classify_objection("好的")
    assert nothing.type is ObjectionType.NEED and nothing.cues == ()


@pytest.mark.parametrize(
    ("text", "competitor"),
    [
        ("你们价格比XX家贵30%", "XX家"),
        ("比用友贵不少", "用友"),
        ("你们比金蝶的报价还高", "金蝶"),
        ("竞品金蝶报价更低", "金蝶"),
        ("竞争对手华为云给了五折", "华为云"),
        ("我们用的是纷享销客，挺好用", "纷享销客"),
        ("A家只要一半的钱", "A家"),
        ("比别家贵", None),
        ("比去年贵了", None),
        ("比市场价高", None),
        ("太贵了", None),
    ],
)
def test_the_competitor_named(text, competitor):
    assert extract_competitor(text) == competitor


def test_a_known_competitor_list_wins_over_patterns():
    assert extract_competitor("销售易和比XX家都便宜", ("销售易",)) == "销售易"


def test_figures_in_the_objection():
    assert extract_percent("贵30%") == D(30)
    assert extract_percent("高了12.5％") == D("12.5")
    assert extract_percent("贵了百分之二十") == D(20)
    assert extract_percent("贵了 5 个点") == D(5)
    assert extract_percent("贵了一些") is None
    assert extract_amount("比XX家贵了5万") == D("50000.00")
    assert extract_amount("预算只有两万元") == D("20000.00")
    assert extract_amount("差了¥3,000") == D("3000.00")
    assert extract_amount("贵30%") is None
    assert extract_amount("千万别这么报价") is None


def test_the_price_gap_is_the_amount_said_or_the_percentage_of_our_price():
    said = classify_objection("比XX家贵了5万")
    assert price_gap(said, D("360000")) == D("50000.00")
    by_percent = classify_objection("比XX家贵30%")
    assert price_gap(by_percent, D("130000")) == D("30000.00")
    assert price_gap(by_percent, None) is None
    script = handle_objection("比XX家贵了5万", YUNQI).strategies[0].script
    assert "差价约¥50,000.00" in script


def test_instalments_add_up_to_the_fen():
    for amount in (D("360000.00"), D("100000.01"), D("0.05"), D("999999.99")):
        parts = instalments(amount)
        assert sum(parts) == amount
        assert parts[0] == parts[1]


def test_scripts_without_amount_industry_or_products_still_read_and_invent_nothing():
    bare = CustomerContext(name="某客户")
    for kind in ObjectionType:
        cue = {"价格": "太贵", "竞品": "竞品金蝶更好", "决策权": "领导拍板", "时机": "明年再说", "需求": "不需要"}[kind.value]
        advice = handle_objection(cue, bare)
        assert advice.analysis.type is kind
        for s in advice.strategies:
            assert "¥" not in s.script and "None" not in s.script and "{" not in s.script
            assert "某客户" in s.script or kind is ObjectionType.AUTHORITY


def test_every_type_has_three_distinct_strategies_that_use_the_customer_s_data():
    ctx = CustomerContext("杭州云栖科技", "制造", D("360000"), ("销售云",), competitor="金蝶")
    for kind, templates in STRATEGIES.items():
        assert len({name for name, _, _ in templates}) == 3
        cue = {"价格": "太贵", "竞品": "你们不如竞品", "决策权": "领导拍板", "时机": "明年再说", "需求": "不需要"}[kind.value]
        advice = handle_objection(cue, ctx)
        assert advice.analysis.type is kind
        scripts = " ".join(s.script for s in advice.strategies)
        assert "杭州云栖科技" in scripts
        assert "制造" in scripts or "销售云" in scripts or format_yuan(ctx.amount) in scripts
    competitor_scripts = handle_objection("你们不如竞品", ctx).strategies
    assert all("金蝶" in s.script for s in competitor_scripts)  # the customer's known competitor
