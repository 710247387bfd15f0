"""Meeting notes 纪要 → action items (who, what, by when), risks and next steps (PRODUCT.md §5).

Offline extraction, no model, in this order:

1. Paragraphs split on blank lines, sentences on 。；;！!？? and new lines, with list numbering
   (1. / 1、 / ① / - ) dropped; a sentence splits into clauses on commas (，, and a "," that is not
   between two digits, so 1,000 stays whole). A line that is only a heading (下一步： / 风险： / 行动项：)
   makes the rest of its paragraph next steps, risks, or ordinary lines respectively.
2. A clause with a risk cue (担心 担忧 顾虑 疑虑 风险 不放心 害怕 怕 犹豫 质疑 不满 抱怨 反对 阻力 搁置
   推迟 延期 暂缓 卡在 不确定 没把握 超预算 预算不足 预算紧张 太贵 偏贵 竞品 竞争对手) is a risk and
   nothing else. A negated cue (不担心, 没有风险, 哪怕) is not a cue.
3. Otherwise the clause may name an owner at its start, after a connective (然后 另外 同时 并 请 …):
   我们/我方/我司/咱们 (our side), 客户/对方/甲方/他们 (the customer), a prefix 我方X / 客户X / 对方X
   (X's side is the prefix's), a known person from ``people`` (the caller's reps and contacts with
   their side), a surname with a title (王总, 李经理, 张工, 欧阳总监: the customer's, since the rep
   writes 我们/我方 for our side), 小王 / 老李 (side unknown), or 由X负责… . The owner holds for the
   rest of the sentence until another is named.
4. Its due date is the first date ``domain.dates.find_dates`` finds in it (resolved against the day of
   the meeting); a clause with a date but no action (王总，下周三前，提供采购预算) passes the date to the
   next action in the same sentence.
5. What is left after the owner, the date (with 前/之前/为止/内 after and 在/于/截至/最晚 before it) and
   leading auxiliaries (负责 会 将 要 需要 尽快 争取 …) is the "what". It is an action item when it starts
   with an action verb (提供 负责 安排 确认 出 提交 发送 …; one-character verbs like 出/发/给 only at the
   start) or contains a two-character one, has an owner or a due date, and is not already done
   (已/已经/…了) or negated (不/没/未 before the verb).
6. A sentence with 下一步 / 接下来 / 后续 / 约定 / 下次 is a next step (the text after the marker); its
   clauses are still read for action items, so an agreed step with an owner also becomes a reminder.

``parse_model_answer`` reads an OpenAI-compatible model's answer (schema in ``MODEL_SYSTEM_PROMPT``)
into the same ``NotesExtraction`` and raises ``ModelAnswerError`` (a ValueError) on anything off, so
the caller can fall back to ``extract_notes``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from domain.dates import find_dates

# --- user-visible text (Simplified Chinese) ------------------------------------------------------------
HEADING_ACTIONS = "行动项："
HEADING_RISKS = "风险："
HEADING_NEXT = "下一步："
NOTHING_FOUND = "没有从纪要中识别出行动项、风险或下一步。"
NONE_LINE = "（无）"
ACTION_LINE = "{n}. {owner}：{what}（{due}）"
DUE = "截止 {day:%Y-%m-%d} {weekday}"
NO_DUE = "未定日期"
NO_OWNER = "待定"
OWNER_WITH_SIDE = "{owner}（{side}）"
SIDE_LABELS = {"ours": "我方", "customer": "客户", "unknown": "待确认"}
WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
LIST_LINE = "{n}. {text}"

# The model's instructions (sent by integrations/; Chinese, like everything the model reads).
MODEL_SYSTEM_PROMPT = (
    "你是销售会议纪要助手。会议日期：{today:%Y-%m-%d}。从用户给出的纪要中提取行动项、风险和下一步，"
    "只输出一个 JSON 对象，不要输出其他文字：\n"
    '{{"action_items": [{{"owner": "负责人原文或 null", "side": "ours|customer|unknown", '
    '"what": "要做的事", "due": "YYYY-MM-DD 或 null"}}], "risks": ["风险原文"], "next_steps": ["下一步"]}}\n'
    "相对日期（下周三、月底、12月5日）按会议日期换算成具体日期；我们/我方为 ours，客户一方为 customer。"
)

MAX_MODEL_ITEMS = 50
MAX_MODEL_TEXT = 200
MODEL_DUE_WINDOW = timedelta(days=2 * 366)  # a due date further than this from the meeting is made up


class Side(StrEnum):
    OURS = "ours"
    CUSTOMER = "customer"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ActionItem:
    """Who does what by when. ``owner`` as written (王总, 我们) or None; ``due`` None when no date."""

    owner: str | None
    side: Side
    what: str
    due: date | None


@dataclass(frozen=True)
class Risk:
    """A concern raised in the meeting: the clause as written and the cue that marked it (None from a model)."""

    text: str
    cue: str | None = None


@dataclass(frozen=True)
class NotesExtraction:
    action_items: tuple[ActionItem, ...]
    risks: tuple[Risk, ...]
    next_steps: tuple[str, ...]


class ModelAnswerError(ValueError):
    """The model's answer is not what ``MODEL_SYSTEM_PROMPT`` asked for; fall back to offline extraction."""


# --- offline extraction --------------------------------------------------------------------------------

_PARAGRAPHS = re.compile(r"\n\s*\n")
_NUMBERING = re.compile(r"^\s*(?:\d{1,2}[.、)）]|[（(]\d{1,2}[)）]|[①-⑳]|[一二三四五六七八九十][、.]|[-*•·])\s*")
_STEP_HEADINGS = frozenset({"下一步", "接下来", "后续", "后续安排", "下一步计划", "约定"})
_RISK_HEADINGS = frozenset({"风险", "风险点", "顾虑", "客户顾虑", "问题与风险"})
_ACTION_HEADINGS = frozenset({"行动项", "待办", "待办事项", "分工"})
_SENTENCES = re.compile(r"[。；;！!？?\n\r]+")
_CLAUSES = re.compile(r"，|(?<!\d),|,(?!\d)")
_EDGE_PUNCT = " \t:：、,，.。\"'“”‘’（）()【】[]-—…"
_RISK_CUES = (
    "不放心", "担心", "担忧", "顾虑", "疑虑", "风险", "害怕", "犹豫", "质疑", "不满", "抱怨", "反对", "阻力",
    "搁置", "推迟", "延期", "暂缓", "卡在", "不确定", "没把握", "超预算", "预算不足", "预算紧张", "太贵",
    "偏贵", "竞争对手", "竞品", "怕",
)  # fmt: skip
_NEGATIONS = ("不", "没", "无", "没有", "并不", "不用", "不必", "哪")
_NEXT_STEP = re.compile(r"(下一步|接下来|后续|约定|下次)")
_CONNECTIVES = re.compile(r"^(?:然后|另外|此外|同时|并且|而且|还有|以及|最后|首先|其次|再者|请|麻烦|并|且|再|另)+")
_AUXILIARIES = re.compile(
    r"^(?:负责|会(?![议谈])|将(?!来)|要(?![求点])|需要|需(?!求)|来(?!自)|去(?!年)|尽快|争取|务必|必须|可以"
    r"|能(?!力)|再|先(?!生)|也|还|都|统一|帮忙|协助|配合|在|于|之前|前(?!期))+"
)
_DATE_BEFORE = re.compile(r"(?:截止到|截至|截止|最晚|最迟|不晚于|在|于|到)$")
_DATE_AFTER = re.compile(r"^(?:之前|以前|前|为止|截止|之内|以内|内|左右)")
_VERBS_2 = (
    "提供", "负责", "安排", "确认", "提交", "发送", "准备", "整理", "反馈", "回复", "联系", "对接", "协调",
    "跟进", "完成", "落实", "审批", "签署", "签订", "签约", "寄送", "报价", "演示", "汇报", "评估", "组织",
    "约见", "拜访", "推进", "输出", "给出", "出具", "制定", "调研", "测试", "部署", "交付", "申请", "发起",
    "邀请", "补充", "核实", "沟通", "同步", "梳理", "更新", "修改", "发给", "交流", "催办", "走流程",
)  # fmt: skip
_VERBS_1 = ("出", "发", "给", "约", "签", "寄", "做", "交", "定", "报", "找", "带", "订", "拿")
_DONE = re.compile(r"已经|已|(?:" + "|".join(_VERBS_2 + _VERBS_1) + r")[了过]")
_NEGATED_VERB = re.compile(r"(?:不|没有|没|未|别)(?:" + "|".join(_VERBS_2 + _VERBS_1) + r")")

_OURS = ("我们", "我方", "我司", "咱们")
_THEIRS = ("客户方", "客户", "对方", "甲方", "他们")
_SURNAMES_2 = "欧阳 司马 诸葛 上官 东方 慕容 夏侯 皇甫 令狐 司徒 公孙 长孙 尉迟 端木 独孤 南宫 宇文".split()
_SURNAMES_1 = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩佘池麻苑迟邝"
)
_TITLES = (
    "总经理", "董事长", "总监", "总工", "经理", "主任", "主管", "部长", "处长", "科长", "局长", "院长", "校长",
    "老师", "博士", "老板", "助理", "秘书", "总", "董", "工",
)  # fmt: skip
_SURNAME = "(?:" + "|".join(_SURNAMES_2) + "|[" + _SURNAMES_1 + "])"
_TITLED = re.compile("(?!施工)" + _SURNAME + "(?:" + "|".join(_TITLES) + ")")  # 施工 is construction, not Mr 施
_FAMILIAR = re.compile("[小老]" + _SURNAME)
_BY_DEFAULT_VERB = "负责"
_BY = re.compile(r"由(?P<who>[^，,。；]{1,8}?)(?=负责|来|牵头|统一|提供|安排|出|准备|确认|对接)")


@dataclass(frozen=True)
class _Owner:
    name: str
    side: Side
    length: int  # characters of the clause it took


def _owner_at_start(text: str, people: Mapping[str, Side]) -> _Owner | None:
    known = _known_person_at_start(text, people)
    if known is not None:
        return known
    for prefixes, side in ((_OURS, Side.OURS), (_THEIRS, Side.CUSTOMER)):
        for prefix in prefixes:
            if text.startswith(prefix):
                rest = text[len(prefix) :].removeprefix("的")
                inner = _person_at_start(rest, people)
                if inner is not None:
                    return _Owner(inner.name, side, len(text) - len(rest) + inner.length)
                return _Owner(prefix, side, len(prefix))
    return _person_at_start(text, people)


def _known_person_at_start(text: str, people: Mapping[str, Side]) -> _Owner | None:
    for name in sorted(people, key=len, reverse=True):
        if name and text.startswith(name):
            return _Owner(name, people[name], len(name))
    return None


def _person_at_start(text: str, people: Mapping[str, Side]) -> _Owner | None:
    known = _known_person_at_start(text, people)
    if known is not None:
        return known
    m = _TITLED.match(text)
    if m:
        return _Owner(m.group(0), Side.CUSTOMER, m.end())
    m = _FAMILIAR.match(text)
    if m:
        return _Owner(m.group(0), Side.UNKNOWN, m.end())
    return None


def _strip(text: str) -> str:
    return text.strip(_EDGE_PUNCT)


def _risk_cue(clause: str) -> str | None:
    for cue in _RISK_CUES:
        start = clause.find(cue)
        while start >= 0:
            before = clause[:start]
            if cue.startswith("不") or not before.endswith(_NEGATIONS):
                return cue
            start = clause.find(cue, start + 1)
    return None


def _without_dates(text: str, today: date) -> tuple[str, date | None]:
    mentions = find_dates(text, today)
    if not mentions:
        return text, None
    pieces: list[str] = []
    cursor = 0
    for (start, end), _day in mentions:
        before = text[cursor:start]
        m = _DATE_BEFORE.search(before)
        pieces.append(before[: m.start()] if m else before)
        after = _DATE_AFTER.match(text, end)
        cursor = after.end() if after else end
    pieces.append(text[cursor:])
    return "".join(pieces), mentions[0].day


def _is_action(what: str) -> bool:
    if not what or _DONE.search(what) or _NEGATED_VERB.search(what):
        return False
    return what.startswith(_VERBS_2 + _VERBS_1) or any(verb in what for verb in _VERBS_2)


def _clause_action(
    clause: str, today: date, people: Mapping[str, Side], owner: _Owner | None
) -> tuple[_Owner | None, str, date | None]:
    """(the owner in force after this clause, the action's what or "", the clause's date)."""
    text = _CONNECTIVES.sub("", clause)
    by = _BY.search(text)
    if by:
        named = _owner_at_start(by["who"], people)
        owner = named or _Owner(by["who"], Side.UNKNOWN, len(by["who"]))
        after = text[by.end() :]
        body, due = _without_dates(after, today)
        what = _what(body)
        before = _strip(text[: by.start()])
        if before and not _AUXILIARIES.sub("", what):  # 技术对接由我们负责 → 负责技术对接
            what = _BY_DEFAULT_VERB + before
        return owner, what, due
    named = _owner_at_start(text, people)
    if named is not None:
        owner = named
        text = text[named.length :]
    body, due = _without_dates(text, today)
    return owner, _what(body), due


def _what(body: str) -> str:
    """The body without leading auxiliaries (负责出方案 → 出方案), unless they were its only verb
    (负责数据迁移 stays whole)."""
    whole = _strip(body)
    bare = _strip(_AUXILIARIES.sub("", whole))
    return bare if _is_action(bare) or not _is_action(whole) else whole


def _numbering_stripped(sentence: str) -> str:
    return _strip(_NUMBERING.sub("", sentence))


def extract_notes(text: str, today: date, people: Mapping[str, Side] | None = None) -> NotesExtraction:
    """Action items, risks and next steps of meeting notes held on ``today`` (see module docstring)."""
    known = dict(people or {})
    actions: list[ActionItem] = []
    risks: list[Risk] = []
    next_steps: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        heading: str | None = None  # a line that is only 下一步： / 风险： lists what follows
        for sentence in _SENTENCES.split(paragraph):
            sentence = _numbering_stripped(sentence)
            if not sentence:
                continue
            if sentence in _STEP_HEADINGS or sentence in _RISK_HEADINGS or sentence in _ACTION_HEADINGS:
                heading = sentence
                continue
            if heading in _RISK_HEADINGS:
                risks.append(Risk(sentence, _risk_cue(sentence)))
                continue
            marker = _NEXT_STEP.search(sentence)
            if heading in _STEP_HEADINGS:
                next_steps.append(sentence)
            elif marker:
                step = _strip(sentence[marker.end() :].removeprefix("是").removeprefix("为"))
                if step:
                    next_steps.append(step)
            actions.extend(_sentence_actions(sentence, marker, today, known, risks))
    return NotesExtraction(tuple(actions), tuple(risks), tuple(next_steps))


def _sentence_actions(
    sentence: str, marker: re.Match[str] | None, today: date, known: Mapping[str, Side], risks: list[Risk]
) -> list[ActionItem]:
    """The action items of one sentence; its risks are appended to ``risks``."""
    actions: list[ActionItem] = []
    owner: _Owner | None = None
    pending_due: date | None = None
    for raw in _CLAUSES.split(sentence):
        clause = _strip(raw)
        if marker and clause.startswith(marker.group(0)):
            clause = _strip(clause[len(marker.group(0)) :])
        if not clause:
            continue
        cue = _risk_cue(clause)
        if cue is not None:
            risks.append(Risk(clause, cue))
            continue
        owner, what, due = _clause_action(clause, today, known, owner)
        if _is_action(what):
            due = due or pending_due
            pending_due = None
            if owner is not None or due is not None:
                side = owner.side if owner else Side.UNKNOWN
                actions.append(ActionItem(owner.name if owner else None, side, what, due))
        elif due is not None:
            pending_due = due
    return actions


# --- rendering -----------------------------------------------------------------------------------------


def _owner_label(item: ActionItem) -> str:
    if item.owner is None:
        return NO_OWNER
    if item.owner in _OURS or item.owner in _THEIRS:
        return item.owner
    return OWNER_WITH_SIDE.format(owner=item.owner, side=SIDE_LABELS[item.side.value])


def render_notes(extraction: NotesExtraction) -> str:
    """The extraction as the bot's reply: 行动项 (owner：what（截止 date 周X）), 风险, 下一步, numbered."""
    if not (extraction.action_items or extraction.risks or extraction.next_steps):
        return NOTHING_FOUND
    lines = [HEADING_ACTIONS]
    for n, item in enumerate(extraction.action_items, start=1):
        due = DUE.format(day=item.due, weekday=WEEKDAY_NAMES[item.due.weekday()]) if item.due else NO_DUE
        lines.append(ACTION_LINE.format(n=n, owner=_owner_label(item), what=item.what, due=due))
    if not extraction.action_items:
        lines.append(NONE_LINE)
    lines.append(HEADING_RISKS)
    lines.extend(LIST_LINE.format(n=n, text=r.text) for n, r in enumerate(extraction.risks, start=1))
    if not extraction.risks:
        lines.append(NONE_LINE)
    lines.append(HEADING_NEXT)
    lines.extend(LIST_LINE.format(n=n, text=s) for n, s in enumerate(extraction.next_steps, start=1))
    if not extraction.next_steps:
        lines.append(NONE_LINE)
    return "\n".join(lines)


# --- a model's answer ----------------------------------------------------------------------------------

_FENCE = re.compile(r"^```(?:json)?\s*\n(?P<body>.*)\n\s*```$", re.DOTALL)
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOP_KEYS = frozenset({"action_items", "risks", "next_steps"})
_ITEM_KEYS = frozenset({"owner", "side", "what", "due"})


def _text(value: object, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ModelAnswerError(f"{where}: expected a non-empty string, got {value!r}")
    if len(value) > MAX_MODEL_TEXT:
        raise ModelAnswerError(f"{where}: longer than {MAX_MODEL_TEXT} characters")
    return value.strip()


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise ModelAnswerError(f"{where}: expected a list, got {type(value).__name__}")
    if len(value) > MAX_MODEL_ITEMS:
        raise ModelAnswerError(f"{where}: more than {MAX_MODEL_ITEMS} entries")
    return value


def _due(value: object, where: str, today: date) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        raise ModelAnswerError(f"{where}: expected YYYY-MM-DD or null, got {value!r}")
    try:
        day = date.fromisoformat(value)
    except ValueError as error:
        raise ModelAnswerError(f"{where}: {value!r} is not a calendar date") from error
    if abs(day - today) > MODEL_DUE_WINDOW:
        raise ModelAnswerError(f"{where}: {value} is too far from the meeting day {today}")
    return day


def _action(value: object, where: str, today: date) -> ActionItem:
    if not isinstance(value, dict) or set(value) != _ITEM_KEYS:
        raise ModelAnswerError(f"{where}: expected an object with exactly {sorted(_ITEM_KEYS)}")
    side = value["side"]
    if side not in {s.value for s in Side}:
        raise ModelAnswerError(f"{where}.side: {side!r} is not one of ours/customer/unknown")
    what = _text(value["what"], f"{where}.what")
    assert what is not None
    return ActionItem(
        _text(value["owner"], f"{where}.owner", optional=True), Side(side), what,
        _due(value["due"], f"{where}.due", today),
    )


def parse_model_answer(answer: str, today: date) -> NotesExtraction:
    """The model's JSON answer (see ``MODEL_SYSTEM_PROMPT``; one ```json fence around it is allowed) as a
    ``NotesExtraction``; raises ``ModelAnswerError`` for invalid JSON, missing or extra keys, wrong types,
    empty or over-long strings, more than ``MAX_MODEL_ITEMS`` entries, or a due date that is not an ISO
    calendar day within ``MODEL_DUE_WINDOW`` of ``today``."""
    body = answer.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced["body"]
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ModelAnswerError(f"not JSON: {error}") from error
    if not isinstance(data, dict) or set(data) != _TOP_KEYS:
        raise ModelAnswerError(f"expected an object with exactly {sorted(_TOP_KEYS)}")
    actions = tuple(
        _action(item, f"action_items[{i}]", today)
        for i, item in enumerate(_list(data["action_items"], "action_items"))
    )
    risks = tuple(
        Risk(str(_text(item, f"risks[{i}]"))) for i, item in enumerate(_list(data["risks"], "risks"))
    )
    steps = tuple(
        str(_text(item, f"next_steps[{i}]")) for i, item in enumerate(_list(data["next_steps"], "next_steps"))
    )
    return NotesExtraction(actions, risks, steps)
