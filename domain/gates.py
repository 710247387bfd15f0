"""Stage gates: the evidence items a stage requires, how each can be given, what is still missing.

An item is satisfied by evidence of one of its accepted input modes: 文字 (plain text), 语音 (a voice
clip), 图片 (an image), 文件 (a file through the upload page), or a choice among fixed options.
Template safety (PRODUCT.md §1.3): every required item must be satisfiable from plain text on any
client; ``unsafe_items`` lists the ones that are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TEXT, VOICE, IMAGE, FILE = "文字", "语音", "图片", "文件"
MODES = (TEXT, VOICE, IMAGE, FILE)
BUDGET_OPTIONS = ("已明确", "待确认", "暂不披露")
MIN_PAIN_CHARS = 10


@dataclass(frozen=True)
class Item:
    key: str
    name: str
    modes: tuple[str, ...]
    hint: str  # how to add it, shown when it is missing
    options: tuple[str, ...] = ()  # a choice item accepts exactly one of these as text
    min_chars: int = 1

    def accepts(self, mode: str) -> bool:
        return mode in self.modes

    @property
    def plain_text_ok(self) -> bool:
        return TEXT in self.modes

    def with_modes(self, modes: tuple[str, ...]) -> Item:
        """The item as an admin reconfigured it, with a hint that matches the new modes."""
        return Item(self.key, self.name, modes, _hint_for(self, modes), self.options, self.min_chars)


def _hint_for(item: Item, modes: tuple[str, ...]) -> str:
    if item.options and modes == (TEXT,):
        return "回复 " + "/".join(item.options)
    ways = []
    if TEXT in modes:
        ways.append(f"直接发送文字（至少 {item.min_chars} 个字）" if item.min_chars > 1 else "直接发送文字")
    if VOICE in modes:
        ways.append("发一段语音")
    if IMAGE in modes:
        ways.append("发送图片")
    if FILE in modes:
        ways.append("上传文件")
    return "或".join(ways) + "即可"


ITEMS: dict[str, Item] = {i.key: i for i in (
    Item("pain", "痛点确认", (TEXT, VOICE), "发送客户痛点的文字（至少 10 个字）或发一段语音即可",
         min_chars=MIN_PAIN_CHARS),
    Item("competitor", "竞品对比表", (IMAGE, FILE, TEXT),
         "发送图片或上传文件即可；也可直接发文字版对比，至少 10 个字", min_chars=MIN_PAIN_CHARS),
    Item("budget", "预算情况", (TEXT,), "回复 已明确/待确认/暂不披露", BUDGET_OPTIONS),
    Item("report", "需求诊断报告", (TEXT, FILE), "发送「报告：」开头的文字（至少 10 个字）或上传文件即可",
         min_chars=MIN_PAIN_CHARS),
    Item("contract_no", "合同号", (TEXT,), "回复「合同号 HT2026001」"),
    Item("signed_amount", "签约金额", (TEXT,), "回复「签约金额 150000」"),
    Item("next_step", "下一步计划", (TEXT, VOICE), "发送下一步计划的文字或语音即可"),
)}

ITEM_BY_NAME: dict[str, str] = {}
for _k, _item in ITEMS.items():
    ITEM_BY_NAME[_item.name] = _k
ITEM_BY_NAME.update({"痛点": "pain", "竞品对比": "competitor", "竞品": "competitor", "预算": "budget",
                     "诊断报告": "report", "报告": "report", "下一步": "next_step", "金额": "signed_amount"})

# stage key → required item keys on entering it (PRODUCT.md §1.2)
DEFAULT_GATES: dict[str, tuple[str, ...]] = {
    "diagnosis": ("pain",),
    "solution_confirmed": ("competitor", "budget"),
    "negotiation": ("report",),
    "won": ("contract_no", "signed_amount"),
}

# what a visit log needs to be a quality visit (PRODUCT.md §1.3)
VISIT_REQUIRED: tuple[str, ...] = ("pain", "budget", "next_step")


@dataclass(frozen=True)
class GateConfig:
    """Required items per stage plus per-item mode overrides set by admins."""

    gates: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GATES))
    modes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def item(self, key: str) -> Item:
        base = ITEMS[key]
        override = self.modes.get(key)
        return base.with_modes(tuple(override)) if override else base

    def required(self, stage: str) -> list[Item]:
        return [self.item(k) for k in self.gates.get(stage, ())]


def missing_items(required: Iterable[Item], satisfied: set[str]) -> list[Item]:
    """The required items not yet satisfied, in the configured order."""
    return [i for i in required if i.key not in satisfied]


def missing_text(missing: list[Item]) -> str:
    """`还缺 2 项：① 竞品对比表（发送图片或上传文件即可）② 预算情况（回复 已明确/待确认/暂不披露）`"""
    circled = "①②③④⑤⑥⑦⑧⑨⑩"
    parts = [f"{circled[i] if i < len(circled) else str(i + 1) + '.'} {item.name}（{item.hint}）"
             for i, item in enumerate(missing)]
    return f"还缺 {len(missing)} 项：" + " ".join(parts)


def text_satisfies(item: Item, text: str) -> str | None:
    """The evidence value a plain-text answer gives ``item``, or None when it does not satisfy it."""
    text = text.strip()
    if not item.plain_text_ok:
        return None
    if item.options:
        for opt in item.options:
            if text == opt or text.endswith(opt):
                return opt
        return None
    return text if len(text) >= item.min_chars else None


def parse_requirement(words: list[str]) -> tuple[list[str], dict[str, tuple[str, ...]], str | None]:
    """`竞品对比表:图片/文件 预算` → (item keys, mode overrides, error). Modes: 文字/语音/图片/文件."""
    keys: list[str] = []
    modes: dict[str, tuple[str, ...]] = {}
    for word in words:
        name, _, mode_text = word.replace("：", ":").partition(":")
        key = ITEM_BY_NAME.get(name)
        if key is None:
            known = "、".join(i.name for i in ITEMS.values())
            return [], {}, f"不认识的必填项「{name}」。可选：{known}"
        if mode_text:
            wanted = tuple(m for m in mode_text.replace("、", "/").split("/") if m)
            bad = [m for m in wanted if m not in MODES]
            if bad or not wanted:
                return [], {}, f"不认识的提交方式「{'/'.join(bad) or mode_text}」。可选：文字、语音、图片、文件"
            modes[key] = wanted
        if key not in keys:
            keys.append(key)
    return keys, modes, None


@dataclass(frozen=True)
class SafetyProblem:
    stage: str
    item: Item
    reason: str


def unsafe_items(config: GateConfig) -> list[SafetyProblem]:
    """Required items that a member on a plain-text client could not satisfy."""
    problems: list[SafetyProblem] = []
    for stage, keys in config.gates.items():
        for key in keys:
            item = config.item(key)
            if not item.plain_text_ok:
                problems.append(SafetyProblem(stage, item, f"只能通过{'/'.join(item.modes)}提交，"
                                                           "部分手机或客户端无法完成"))
            if item.key not in ITEMS:
                problems.append(SafetyProblem(stage, item, "没有任何命令可以填写"))
    for key in VISIT_REQUIRED:
        item = config.item(key)
        if not item.plain_text_ok:
            problems.append(SafetyProblem("visit", item, f"拜访记录的必填项只能通过{'/'.join(item.modes)}提交"))
    return problems


def rejection_alert(submissions: Iterable[tuple[bool, list[str]]], threshold: float = 0.3,
                    top: int = 3) -> tuple[float, list[tuple[str, int]]] | None:
    """(rejected share, top missing items with counts) when more than ``threshold`` were rejected."""
    rows = list(submissions)
    if not rows:
        return None
    rejected = [missing for accepted, missing in rows if not accepted]
    share = len(rejected) / len(rows)
    if share <= threshold:
        return None
    counts: dict[str, int] = {}
    for missing in rejected:
        for name in missing:
            counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return share, ranked
