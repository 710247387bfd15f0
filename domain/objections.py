"""Objection handling 异议处理 (PRODUCT.md §5): the type of a customer's objection and three strategies.

Classification: each type has cue patterns with weights (``CUES``); a type's score is the sum of the
weights of its cues present in the text (each cue counted once). A named competitor adds
``NAMED_COMPETITOR_WEIGHT`` to 竞品 and a percentage or amount adds ``FIGURE_WEIGHT`` to 价格, so
"你们价格比XX家贵30%" is 价格 (价格 3 + 贵 3 + 30% 1 = 7) with competitor XX家, not 竞品 (2). The
highest score wins; ties go to the earlier type in ``ObjectionType`` order (价格, 竞品, 决策权, 时机,
需求). No cue at all → 需求 (the customer has not yet seen why they need it) with ``cues == ()``.

Competitor: a name from ``known`` (the caller's competitor list) found in the text; else the X of
比X贵/便宜/高/… (with a 家 after X kept: 比XX家贵 → XX家), 竞品X / 竞争对手X / 友商X, 用的是X / 在用X /
选了X / 换成X / 签了X, or a Latin-letter X家 (A家, XX家). Words like 别家, 同行, 市场价, 去年 are not names.

Scripts use the customer's data (``CustomerContext``): name, industry, products, the opportunity
amount (``format_yuan``) and the competitor (named in the objection, else the customer's known one).
Money figures in scripts: monthly cost = amount / ``AMORTISATION_MONTHS`` (36); the price gap = the
amount in the objection (贵了5万), else amount × p / (100 + p) for "p% more expensive"; the instalment
plan is 40% / 40% / rest, subject to finance's approval, as the script says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from domain.money import AmountError, format_yuan, parse_amount, quantize_yuan

AMORTISATION_MONTHS = 36
INSTALMENT_SHARES = (Decimal("0.4"), Decimal("0.4"))  # the third instalment is the rest
NAMED_COMPETITOR_WEIGHT = 2
FIGURE_WEIGHT = 1


class ObjectionType(StrEnum):
    PRICE = "价格"
    COMPETITOR = "竞品"
    AUTHORITY = "决策权"
    TIMING = "时机"
    NEED = "需求"


# --- user-visible text (Simplified Chinese) ------------------------------------------------------------
HEADING = "【{customer}】异议类型：{type}"
COMPETITOR_LINE = "提到的竞品：{competitor}"
STRATEGY_LINE = "{n}. {name}：{idea}"
SCRIPT_LINE = "   话术：{script}"
NO_CUE_NOTE = "（没有识别出明确的异议类型，按需求异议处理）"
DEFAULT_PRODUCT = "我们的方案"
PRODUCT_JOINER = "和"
DEFAULT_INDUSTRY = "同行业"
INDUSTRY_SUFFIX = "行业"

# (name, idea, script). Placeholders: {customer} {industry} {product} and the optional sentences below,
# which are empty when their data is missing.
STRATEGIES: dict[ObjectionType, tuple[tuple[str, str, str], ...]] = {
    ObjectionType.PRICE: (
        ("成本拆解法", "把总价拆到每月、每个环节，让客户看清钱花在哪里",
         "{customer}您好，我们把报价逐项拆开看：软件、实施、培训和售后各占多少。{amount_monthly}{gap_monthly}"
         "您看哪一项{customer}觉得可以调整，我们逐项讨论。"),
        ("价值量化法", "用客户自己的数据算回报，把讨论从价格转到价值",
         "在{industry}，{product}带来的价值主要在人效、回款周期和差错率上。我们用{customer}自己的数据算一笔账："
         "{payback}{gap_value}"),
        ("分期支付法", "降低一次性付款压力，让预算不再是障碍",
         "考虑到{customer}的预算节奏，我们可以申请分期付款（以公司财务审批为准）：{instalments}{vs_instalment}"),
    ),
    ObjectionType.COMPETITOR: (
        ("差异对比法", "不贬低对手，只列出对客户最重要的三点差异",
         "{vs_compare}我们整理了一份对比表，重点看{industry}客户最在意的三点：实施周期、数据安全和售后响应。"
         "您看{customer}最看重哪一点，我们就那一点做深入演示。"),
        ("案例背书法", "用同行客户的真实结果说话",
         "{industry}有和{customer}规模相近的客户，{vs_case}选了{product}，上线后的效果我们可以安排您和对方直接交流。"),
        ("试点验证法", "小范围并行试点，让数据做决定",
         "与其比较宣传材料，不如在{customer}选一个部门做两周试点，{vs_pilot}用真实数据对比{product}的效果。"),
    ),
    ObjectionType.AUTHORITY: (
        ("决策链梳理法", "弄清谁拍板、谁影响、谁使用，逐个争取",
         "理解，这么重要的事确实需要领导决定。方便介绍一下{customer}这类采购一般由哪几位参与吗？"
         "我们可以分别准备他们关心的材料。"),
        ("汇报助攻法", "替对接人准备一页汇报材料，让他好推动",
         "我们帮您准备一页纸的汇报材料：{customer}的现状、{product}能解决的问题、{amount_plain}投入和回报测算，"
         "{vs_brief}方便您向领导汇报。"),
        ("高层对接法", "安排我方高层与客户决策人直接沟通",
         "如果领导有顾虑，我们可以安排公司分管{industry}客户的负责人和贵司领导当面交流，半小时就够。"),
    ),
    ObjectionType.TIMING: (
        ("延迟成本法", "算出每晚一个月的损失，制造合理的紧迫感",
         "理解{customer}现在事情多。不过按测算，{delay_cost}问题每多存在一个月，损失就多一个月。"),
        ("分阶段启动法", "先上最急需的一小块，降低启动门槛",
         "我们可以先从一个部门、一个场景启动{product}，投入小、见效快，等{customer}忙完再全面推广。"),
        ("锁定条件法", "现在锁定价格和资源，上线时间按客户节奏",
         "可以先把合同签下来锁定今年的价格和实施资源{amount_lock}，上线时间按{customer}的节奏来定。{vs_lock}"),
    ),
    ObjectionType.NEED: (
        ("痛点追问法", "用问题让客户自己说出痛点",
         "想请教一下，{customer}现在处理这块业务大概要几个人、花多长时间？哪个环节最容易出错？"
         "{industry}很多客户一开始也觉得够用，后来发现最大的成本藏在这些环节里。"),
        ("同行案例法", "用同行的变化说明需求真实存在",
         "{industry}和{customer}情况类似的客户，用了{product}之后主要改善在效率和管控上，我可以把案例发给您参考。"),
        ("免费试用法", "零风险体验，让需求自己浮现",
         "要不我们给{customer}开两周免费试用{product}，用真实业务跑一跑，有没有价值您说了算。{vs_trial}"),
    ),
}
AMOUNT_MONTHLY = "这次整体投入{amount}，按{months}个月使用期摊下来每月约{monthly}。"
GAP_MONTHLY = "和{competitor}的差价约{gap}，摊到每月只有约{gap_monthly}，换来的是更完整的实施和服务。"
GAP_MONTHLY_NO_FIGURE = "和{competitor}相比，我们把差价对应的服务逐项列给您看，哪些是对方报价里没有包含的。"
PAYBACK = "投入{amount}，只要每年带来约{yearly}的节省或增收，{years}年就能回本。"
PAYBACK_NO_AMOUNT = "把效率提升、差错减少和回款加快折算成金额，通常一年内就能看到回报。"
GAP_VALUE = "和{competitor}相比我们{dearer}，但只要{product}多带来的价值超过差价，选我们反而更划算。"
DEARER_BY = "贵{figure}"
DEARER = "报价高一些"
INSTALMENTS = "签约付{first}，上线验收付{second}，稳定运行三个月后付{third}。"
INSTALMENTS_NO_AMOUNT = "签约付 40%，上线验收付 40%，稳定运行三个月后付 20%。"
VS_INSTALMENT = "这样前期只需付首期，现金压力可能比选{competitor}还小。"
VS_COMPARE = "{competitor}也是不错的产品，"
VS_CASE = "他们当时也对比过{competitor}，最后"
VS_PILOT = "和{competitor}放在一起，"
VS_BRIEF = "其中也附上和{competitor}的对比，"
VS_LOCK = "{competitor}如果有更好的条件，我们也可以一起比一比。"
VS_TRIAL = "也可以和{competitor}并行对比。"
DELAY_COST = "{amount}的投入大约{years}年回本，相当于每月约{monthly}的收益，"
DELAY_COST_NO_AMOUNT = "效率和管控上的"
AMOUNT_LOCK = "（{amount}）"
AMOUNT_PLAIN = "{amount}的"

# Cue patterns and weights, per type (see module docstring). 贵 is not the honorific 贵司/贵公司.
CUES: dict[ObjectionType, tuple[tuple[str, int], ...]] = {
    ObjectionType.PRICE: (
        (r"贵(?!司|公司|方|单位|行|校|院|姓)", 3), (r"价格|价钱|价位", 3), (r"便宜", 3), (r"折扣|打折|降价", 3),
        (r"预算不够|预算有限|超预算|没预算|预算紧", 3), (r"报价", 2), (r"优惠", 2), (r"成本|费用", 2),
        (r"性价比", 2), (r"多少钱", 2), (r"太高", 1), (r"钱", 1),
    ),
    ObjectionType.COMPETITOR: (
        (r"竞品|竞争对手|友商", 3), (r"别家|其他家|其它家|别的厂|别的公司", 3), (r"已经在用|用的是|正在用", 2),
        (r"对比|比较", 2), (r"更好用|更成熟|口碑", 2), (r"人家", 1), (r"替换|换掉", 1),
    ),
    ObjectionType.AUTHORITY: (
        (r"做不了主|说了不算|定不了", 4), (r"领导|老板|董事会|拍板", 3), (r"请示|决策", 3), (r"决定|审批|签字", 2),
        (r"汇报|商量|上面|集团|总部|采购部", 2), (r"流程", 1),
    ),
    ObjectionType.TIMING: (
        (r"以后再说|不急|等等看|等一等|过段时间|观望|年后|节后|时机", 3), (r"明年", 3),
        (r"再说吧|暂时|下半年|现在不|太忙|没空|还早|预算周期", 2), (r"今年|规划", 1),
    ),
    ObjectionType.NEED: (
        (r"不需要|用不上|用不到|没必要|没需求|没有需求", 4), (r"够用|不适合", 3), (r"不痛|必要性", 3),
        (r"现有|不合适|没用|痛点|Excel|excel", 2), (r"功能|人工|效果", 1),
    ),
}
_CUES = {t: tuple((re.compile(p), w) for p, w in cues) for t, cues in CUES.items()}

_NOT_NAMES = frozenset(
    "别 别的 别人 人 人家 其他 其它 其他家 其它家 同行 市场 市场价 去年 今年 之前 以前 原来 预算 我们 他们 你们 "
    "竞品 友商 对手 竞争对手 行业 平均 同类 一般 上次 外面 网上 隔壁 这 那 哪 这家 那家 哪家 各 大家 自己 想象".split()
)
_NAME = r"[A-Za-z0-9\u4e00-\u9fff·&]"
_STOP = (r"的|家|那边|那里|报价|价格|产品|系统|平台|软件|方案|便宜|贵|更|还|也|都|只|才|给|要|比|低|高|好|差|强|"
         r"挺|很|了|在|已经|做|功能|用|，|,|。|；|;|！|!|？|\?|\s|$")
_COMPETITOR_PATTERNS = (
    re.compile(r"比(?P<name>" + _NAME + r"{1,12}?)(?P<jia>家)?(?:的)?(?:产品|报价|价格|方案|系统|价)?"
               r"(?:还|更|要|都|足足|整整)?(?:贵|便宜|高|低|好|强|划算|实惠|优惠|少|多)"),
    re.compile(r"(?:竞品|竞争对手|友商)(?:是|有|：|:)?(?!" + _STOP + r")(?P<name>" + _NAME + r"{2,12}?)(?=" + _STOP + r")"),
    re.compile(r"(?:用的是|正在用|在用|选了|选择了|换成|签了|买了)(?!" + _STOP + r")(?P<name>" + _NAME + r"{2,12}?)(?="
               + _STOP + r")"),
    re.compile(r"(?<![A-Za-z0-9])(?P<name>[A-Za-z][A-Za-z0-9]{0,15})(?P<jia>家)"),
)
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*(?:%|％|个点)")
_PERCENT_WORDS = re.compile(r"百分之([一二两三四五六七八九十]{1,3})")
_AMOUNT = re.compile(r"(?:[¥￥]\s*\d[\d,]*(?:\.\d+)?\s*(?:万|亿|千|k|w)?|\d[\d,]*(?:\.\d+)?\s*(?:万|亿|千|k|w|元|块)"
                     r"|[一二两三四五六七八九十百千]+[万亿][一二两三四五六七八九]?)(?:元|块)?")
_CN = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


@dataclass(frozen=True)
class CustomerContext:
    """What the scripts may say about the customer; ``amount`` is the open opportunity's amount."""

    name: str
    industry: str | None = None
    amount: Decimal | None = None
    products: tuple[str, ...] = ()
    competitor: str | None = None


@dataclass(frozen=True)
class ObjectionAnalysis:
    type: ObjectionType
    scores: tuple[tuple[ObjectionType, int], ...]  # every type, in ``ObjectionType`` order
    cues: tuple[str, ...]  # the cue texts found for the winning type
    competitor: str | None
    percent: Decimal | None  # "贵30%" → 30
    amount: Decimal | None  # "贵了5万" → 50000.00


@dataclass(frozen=True)
class Strategy:
    name: str
    idea: str
    script: str


@dataclass(frozen=True)
class ObjectionAdvice:
    analysis: ObjectionAnalysis
    customer: CustomerContext
    strategies: tuple[Strategy, Strategy, Strategy]


def extract_competitor(text: str, known: tuple[str, ...] = ()) -> str | None:
    """The competitor the objection names, or None (see module docstring for the patterns)."""
    hits = [(text.find(name), name) for name in known if name and name in text]
    if hits:
        return min(hits)[1]
    for pattern in _COMPETITOR_PATTERNS:
        for m in pattern.finditer(text):
            name = m["name"]
            if name not in _NOT_NAMES and not name.isdigit():
                return name + (m.groupdict().get("jia") or "")
    return None


def extract_percent(text: str) -> Decimal | None:
    """The first percentage in the text: 30% / 30％ / 30个点 / 百分之三十 → Decimal(30)."""
    m = _PERCENT.search(text)
    if m:
        return Decimal(m[1])
    w = _PERCENT_WORDS.search(text)
    if w:
        tens, _, ones = w[1].partition("十")
        if "十" not in w[1]:
            return Decimal(_CN[w[1]]) if w[1] in _CN else None
        if (tens and tens not in _CN) or (ones and ones not in _CN):
            return None
        return Decimal((_CN[tens] if tens else 1) * 10 + (_CN[ones] if ones else 0))
    return None


def extract_amount(text: str) -> Decimal | None:
    """The first readable amount with a unit or currency sign (5万, ¥3,000, 两万元); a bare 30 is not one."""
    for m in _AMOUNT.finditer(text):
        try:
            return parse_amount(m.group(0))
        except AmountError:
            continue
    return None


def classify_objection(text: str, known_competitors: tuple[str, ...] = ()) -> ObjectionAnalysis:
    """The objection's type by cue scores, with the competitor, percentage and amount it names."""
    competitor = extract_competitor(text, known_competitors)
    percent, amount = extract_percent(text), extract_amount(text)
    scores: dict[ObjectionType, int] = {}
    found: dict[ObjectionType, list[str]] = {}
    for kind, cues in _CUES.items():
        hits = [(m.group(0), weight) for pattern, weight in cues if (m := pattern.search(text))]
        found[kind] = [hit for hit, _ in hits]
        scores[kind] = sum(weight for _, weight in hits)
    if competitor:
        scores[ObjectionType.COMPETITOR] += NAMED_COMPETITOR_WEIGHT
    if percent is not None or amount is not None:
        scores[ObjectionType.PRICE] += FIGURE_WEIGHT
    order = list(ObjectionType)
    best = max(order, key=lambda t: (scores[t], -order.index(t)))
    if scores[best] == 0:
        best = ObjectionType.NEED
    return ObjectionAnalysis(
        best, tuple((t, scores[t]) for t in order), tuple(found[best]), competitor, percent, amount
    )


def _industry(ctx: CustomerContext) -> str:
    if not ctx.industry:
        return DEFAULT_INDUSTRY
    return ctx.industry if ctx.industry.endswith(INDUSTRY_SUFFIX) else ctx.industry + INDUSTRY_SUFFIX


def price_gap(analysis: ObjectionAnalysis, amount: Decimal | None) -> Decimal | None:
    """The price difference the customer means: their amount, else amount × p / (100 + p), else None."""
    if analysis.amount is not None:
        return analysis.amount
    if analysis.percent is not None and amount is not None and analysis.percent > 0:
        return quantize_yuan(amount * analysis.percent / (100 + analysis.percent))
    return None


def instalments(amount: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """40% / 40% / the rest, to the fen, summing exactly to ``amount``."""
    first, second = (quantize_yuan(amount * share) for share in INSTALMENT_SHARES)
    return first, second, amount - first - second


def _fragments(
    analysis: ObjectionAnalysis, ctx: CustomerContext, competitor: str | None, product: str
) -> dict[str, str]:
    amount = ctx.amount if ctx.amount is not None and ctx.amount > 0 else None
    years = AMORTISATION_MONTHS // 12
    gap = price_gap(analysis, amount)

    def vs(template: str) -> str:
        return template.format(competitor=competitor) if competitor else ""

    f = {key: vs(template) for key, template in (
        ("vs_instalment", VS_INSTALMENT), ("vs_compare", VS_COMPARE), ("vs_case", VS_CASE),
        ("vs_pilot", VS_PILOT), ("vs_brief", VS_BRIEF), ("vs_lock", VS_LOCK), ("vs_trial", VS_TRIAL),
    )}
    f["amount_monthly"] = f["payback"] = f["amount_lock"] = f["amount_plain"] = ""
    f["instalments"], f["delay_cost"], f["payback"] = INSTALMENTS_NO_AMOUNT, DELAY_COST_NO_AMOUNT, PAYBACK_NO_AMOUNT
    if amount is not None:
        monthly = format_yuan(amount / AMORTISATION_MONTHS)
        shown = format_yuan(amount)
        f["amount_monthly"] = AMOUNT_MONTHLY.format(amount=shown, months=AMORTISATION_MONTHS, monthly=monthly)
        f["payback"] = PAYBACK.format(amount=shown, yearly=format_yuan(amount / years), years=years)
        first, second, third = (format_yuan(x) for x in instalments(amount))
        f["instalments"] = INSTALMENTS.format(first=first, second=second, third=third)
        f["delay_cost"] = DELAY_COST.format(amount=shown, years=years, monthly=monthly)
        f["amount_lock"] = AMOUNT_LOCK.format(amount=shown)
        f["amount_plain"] = AMOUNT_PLAIN.format(amount=shown)
    f["gap_monthly"] = f["gap_value"] = ""
    if competitor:
        if gap is not None:
            f["gap_monthly"] = GAP_MONTHLY.format(
                competitor=competitor, gap=format_yuan(gap), gap_monthly=format_yuan(gap / AMORTISATION_MONTHS)
            )
        else:
            f["gap_monthly"] = GAP_MONTHLY_NO_FIGURE.format(competitor=competitor)
        if analysis.percent is not None:
            dearer = DEARER_BY.format(figure=f"{analysis.percent.normalize():f}%")
        elif gap is not None:
            dearer = DEARER_BY.format(figure=format_yuan(gap))
        else:
            dearer = DEARER
        f["gap_value"] = GAP_VALUE.format(competitor=competitor, dearer=dearer, product=product)
    return f


def strategies(analysis: ObjectionAnalysis, ctx: CustomerContext) -> tuple[Strategy, Strategy, Strategy]:
    """The three strategies for the analysed type, their scripts filled with the customer's data."""
    competitor = analysis.competitor or ctx.competitor
    product = PRODUCT_JOINER.join(ctx.products) or DEFAULT_PRODUCT
    values = _fragments(analysis, ctx, competitor, product)
    values.update(customer=ctx.name, industry=_industry(ctx), product=product)
    first, second, third = (
        Strategy(name, idea, script.format(**values)) for name, idea, script in STRATEGIES[analysis.type]
    )
    return first, second, third


def handle_objection(text: str, ctx: CustomerContext, known_competitors: tuple[str, ...] = ()) -> ObjectionAdvice:
    """Classify ``text`` and build the three strategies for ``ctx``."""
    analysis = classify_objection(text, known_competitors)
    return ObjectionAdvice(analysis, ctx, strategies(analysis, ctx))


def render_advice(advice: ObjectionAdvice) -> str:
    """The ``异议`` reply: the type, the competitor if any, and each strategy with its idea and script."""
    lines = [HEADING.format(customer=advice.customer.name, type=advice.analysis.type.value)]
    if not advice.analysis.cues and advice.analysis.type is ObjectionType.NEED:
        lines.append(NO_CUE_NOTE)
    competitor = advice.analysis.competitor or advice.customer.competitor
    if competitor:
        lines.append(COMPETITOR_LINE.format(competitor=competitor))
    for n, s in enumerate(advice.strategies, start=1):
        lines.append(STRATEGY_LINE.format(n=n, name=s.name, idea=s.idea))
        lines.append(SCRIPT_LINE.format(script=s.script))
    return "\n".join(lines)
