"""Automatic stage upgrades (PRODUCT.md §1.4): a small, safe rule language, its evaluation, and the
forward-only decision.

A rule counts the customer's events and names the stage to move to. It is parsed by hand (no eval);
anything else is refused with a ``RuleError`` that names the character position and what was expected.

Grammar (whitespace may stand between any two tokens; full-width ASCII such as ＞＝３ is accepted)::

    rule      := condition { AND condition } THEN stage
    AND       := "且" | "并且"
    THEN      := "则"
    condition := [ "近" INT ("天" | "日") ] [ event ("之后" | "以后" | "后") ] event OP INT [ "次" ]
    event     := category "点击"            -- a click on a tracked link of that category
               | "点击" [ category ]        -- "点击" alone: a click on any tracked link
               | "登录" | "登陆"             -- product event ``login``
               | "申请试用"                  -- product event ``trial_requested``
               | NAME                       -- any product event type by its English name
    category  := "报价" | "案例" | "竞品对比" | "手册" | "视频" | "其他"
    NAME      := [A-Za-z][A-Za-z0-9_.-]*    (matched case-insensitively)
    OP        := ">=" | ">" | "<=" | "<" | "=" | "==" | "≥" | "≤"
    INT       := 0 … 100000;  the window is 1 … 3650 days
    stage     := a stage name or key (方案确认 / solution_confirmed); not the first stage, not closed

Meaning, evaluated at a time ``now`` over the customer's events (events after ``now`` are ignored):

- ``登录>=3``: at least 3 ``login`` events up to ``now``.
- ``近7天登录>=3``: the window keeps events with ``now - 7 days < occurred_at <= now``.
- ``申请试用后登录>=3``: counts only events strictly after the customer's *first* ``trial_requested``;
  while the customer has no such event the condition is false, whatever the comparison.
- conditions joined by ``且`` must all hold.

Examples: ``竞品对比 点击>=2 且 登录>=1 则 报价谈判``; the default rule ``DEFAULT_RULE_TEXT``
(trial requested, then at least 3 logins since that request → 方案确认).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.stages import DEFAULT_PIPELINE, Pipeline, Stage, is_forward

LINK_CLICK = "link_click"
LOGIN = "login"
TRIAL_REQUESTED = "trial_requested"

PRICING = "pricing"
CASE = "case"
COMPETITOR = "competitor"
MANUAL = "manual"
VIDEO = "video"
OTHER = "other"

# Link-library categories (PRODUCT.md §1.7), key → the word admins and rules use.
LINK_CATEGORIES: dict[str, str] = {
    PRICING: "报价",
    CASE: "案例",
    COMPETITOR: "竞品对比",
    MANUAL: "手册",
    VIDEO: "视频",
    OTHER: "其他",
}
_CATEGORY_BY_WORD = {word: key for key, word in LINK_CATEGORIES.items()}
_CLICK_WORD = "点击"
_EVENT_WORDS = {"登录": LOGIN, "登陆": LOGIN, "申请试用": TRIAL_REQUESTED}
_EVENT_TEXT = {LOGIN: "登录", TRIAL_REQUESTED: "申请试用"}
_OPS = {">=": ">=", "≥": ">=", "<=": "<=", "≤": "<=", "==": "=", ">": ">", "<": "<", "=": "="}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")

MAX_RULE_CHARS = 200
MAX_CONDITIONS = 8
MAX_COUNT = 100_000
MAX_WINDOW_DAYS = 3650

DEFAULT_RULE_TEXT = "申请试用>=1 且 申请试用后登录>=3 则 方案确认"

# User-visible wording of refusals (kept here: domain may not import the bot's message catalog).
_ERROR = "规则第 {n} 个字处有误：应为{expected}，{found}。例如：竞品对比 点击>=2 且 登录>=1 则 报价谈判"
_FOUND_TEXT = "实际是「{text}」"
_FOUND_END = "但规则到这里就结束了"
_EXPECT_CONDITION = "条件（如 登录>=3、竞品对比 点击>=2、近7天登录>=3、申请试用后登录>=3）"
_EXPECT_EVENT = "事件（登录、申请试用、点击、报价/案例/竞品对比/手册/视频/其他 点击，或产品事件英文名）"
_EXPECT_CLICK = "「点击」"
_EXPECT_OP = "比较符号（>=、>、<=、<、=）"
_EXPECT_COUNT = f"次数（0 到 {MAX_COUNT} 的整数）"
_EXPECT_DAYS = f"天数（1 到 {MAX_WINDOW_DAYS} 的整数）"
_EXPECT_DAY_UNIT = "「天」"
_EXPECT_JOIN = "「且」（再加一个条件）或「则」（接目标阶段）"
_EXPECT_STAGE = "目标阶段（{names}）"
_EXPECT_SHORTER = f"不超过 {MAX_RULE_CHARS} 个字的规则"
_EXPECT_FEWER = f"不超过 {MAX_CONDITIONS} 个条件，此处应为「则」"


class RuleError(ValueError):
    """A rule that cannot be parsed: ``position`` is the 0-based character index, ``expected`` what fits."""

    def __init__(self, text: str, position: int, expected: str) -> None:
        self.position = position
        self.expected = expected
        snippet = text[position : position + 6]
        found = _FOUND_TEXT.format(text=snippet) if snippet.strip() else _FOUND_END
        super().__init__(_ERROR.format(n=position + 1, expected=expected, found=found))

    @property
    def message(self) -> str:
        """The Chinese sentence to show the admin."""
        return str(self)


@dataclass(frozen=True)
class EventKind:
    """Which customer events count: a type, and for link clicks optionally a link category."""

    type: str
    category: str | None = None

    def matches(self, event: CustomerEvent) -> bool:
        if event.type.lower() != self.type:
            return False
        return self.category is None or event.category == self.category


@dataclass(frozen=True)
class Condition:
    """``count(event) op threshold``, optionally within the last ``window_days`` or after ``since``."""

    event: EventKind
    op: str
    threshold: int
    window_days: int | None = None
    since: EventKind | None = None


@dataclass(frozen=True)
class Rule:
    """All ``conditions`` hold → move the open opportunity to stage ``target`` (a stage key)."""

    conditions: tuple[Condition, ...]
    target: str


@dataclass(frozen=True)
class CustomerEvent:
    """A recorded customer event: ``link_click`` (with its link ``category``) or a product event type."""

    type: str
    occurred_at: datetime
    category: str | None = None


@dataclass(frozen=True)
class UpgradeDecision:
    """Whether to move; ``reason`` is one of move / frozen / closed / not_forward / unknown_stage."""

    move: bool
    reason: str


# ---------------------------------------------------------------------------------------------- parsing


def _normalize(text: str) -> str:
    """Full-width ASCII → ASCII, ideographic space → space; one character for one, so positions hold."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        elif ch == "\u3000":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


class _Parser:
    def __init__(self, text: str, pipeline: Pipeline) -> None:
        self.text = _normalize(text)
        self.pos = 0
        self.pipeline = pipeline

    def fail(self, expected: str, at: int | None = None) -> RuleError:
        return RuleError(self.text, self.pos if at is None else at, expected)

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def take(self, *words: str) -> str | None:
        """Consume the longest of ``words`` found at the cursor."""
        for word in sorted(words, key=len, reverse=True):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return word
        return None

    def integer(self, expected: str, low: int, high: int) -> int:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in "0123456789":
            self.pos += 1
        digits = self.text[start : self.pos]
        if not digits:
            raise self.fail(expected)
        if len(digits) > len(str(high)) or not low <= int(digits) <= high:
            raise self.fail(expected, at=start)
        return int(digits)

    def rule(self) -> Rule:
        if len(self.text) > MAX_RULE_CHARS:
            raise self.fail(_EXPECT_SHORTER, at=MAX_RULE_CHARS)
        conditions = [self.condition()]
        while True:
            self.skip_ws()
            if self.take("并且", "且"):
                if len(conditions) >= MAX_CONDITIONS:
                    raise self.fail(_EXPECT_FEWER, at=self.pos - 1)
                conditions.append(self.condition())
            elif self.take("则"):
                break
            else:
                raise self.fail(_EXPECT_JOIN)
        return Rule(tuple(conditions), self.target())

    def condition(self) -> Condition:
        self.skip_ws()
        window: int | None = None
        if self.take("近"):
            self.skip_ws()
            window = self.integer(_EXPECT_DAYS, 1, MAX_WINDOW_DAYS)
            self.skip_ws()
            if not self.take("天", "日"):
                raise self.fail(_EXPECT_DAY_UNIT)
            self.skip_ws()
        event = self.event(_EXPECT_CONDITION if window is None else _EXPECT_EVENT)
        since: EventKind | None = None
        self.skip_ws()
        if self.take("之后", "以后", "后"):
            since = event
            self.skip_ws()
            event = self.event(_EXPECT_EVENT)
            self.skip_ws()
        op_word = self.take(*_OPS)
        if op_word is None:
            raise self.fail(_EXPECT_OP)
        self.skip_ws()
        threshold = self.integer(_EXPECT_COUNT, 0, MAX_COUNT)
        self.skip_ws()
        self.take("次")
        return Condition(event, _OPS[op_word], threshold, window, since)

    def event(self, expected: str) -> EventKind:
        word = self.take(*_CATEGORY_BY_WORD, _CLICK_WORD, *_EVENT_WORDS)
        if word in _CATEGORY_BY_WORD:
            self.skip_ws()
            if not self.take(_CLICK_WORD):
                raise self.fail(_EXPECT_CLICK)
            return EventKind(LINK_CLICK, _CATEGORY_BY_WORD[word])
        if word == _CLICK_WORD:
            save = self.pos
            self.skip_ws()
            category = self.take(*_CATEGORY_BY_WORD)
            if category is None:
                self.pos = save
                return EventKind(LINK_CLICK)
            return EventKind(LINK_CLICK, _CATEGORY_BY_WORD[category])
        if word is not None:
            return EventKind(_EVENT_WORDS[word])
        m = _NAME.match(self.text, self.pos)
        if m is None:
            raise self.fail(expected)
        self.pos = m.end()
        return EventKind(m.group().lower())

    def target(self) -> str:
        self.skip_ws()
        start = self.pos
        allowed = _rule_targets(self.pipeline)
        expected = _EXPECT_STAGE.format(names="、".join(s.name for s in allowed))
        stage = self.pipeline.resolve(self.text[start:])
        if stage is None or stage not in allowed:
            raise self.fail(expected, at=start)
        return stage.key


def _rule_targets(pipeline: Pipeline) -> list[Stage]:
    """The stages a rule may move to: open ones after the first (a rule never closes a deal)."""
    first = min(s.rank for s in pipeline)
    return [s for s in pipeline.open_stages() if s.rank > first]


def parse_rule(text: str, pipeline: Pipeline = DEFAULT_PIPELINE) -> Rule:
    """Parse an admin's rule text; raises ``RuleError`` (and nothing else) when it is not a valid rule."""
    return _Parser(text, pipeline).rule()


def default_rule(pipeline: Pipeline = DEFAULT_PIPELINE) -> Rule:
    """The built-in rule: trial requested, then ≥3 logins since that request → 方案确认."""
    return parse_rule(DEFAULT_RULE_TEXT, pipeline)


# --------------------------------------------------------------------------------------------- printing


def event_text(kind: EventKind) -> str:
    """How an event kind is written in a rule (``竞品对比 点击``, ``登录``, ``feature_used``)."""
    if kind.type == LINK_CLICK:
        return _CLICK_WORD if kind.category is None else f"{LINK_CATEGORIES[kind.category]} {_CLICK_WORD}"
    return _EVENT_TEXT.get(kind.type, kind.type)


def condition_text(cond: Condition) -> str:
    """The canonical text of one condition, e.g. ``近7天申请试用后登录>=3``."""
    window = f"近{cond.window_days}天" if cond.window_days is not None else ""
    since = f"{event_text(cond.since)}后" if cond.since is not None else ""
    return f"{window}{since}{event_text(cond.event)}{cond.op}{cond.threshold}"


def rule_text(rule: Rule, pipeline: Pipeline = DEFAULT_PIPELINE) -> str:
    """The canonical text of a rule (what ``规则 列表`` shows); ``parse_rule`` reads it back unchanged."""
    joined = " 且 ".join(condition_text(c) for c in rule.conditions)
    return f"{joined} 则 {pipeline.get(rule.target).name}"


# ------------------------------------------------------------------------------------------- evaluation


def count_events(cond: Condition, events: Iterable[CustomerEvent], now: datetime) -> int | None:
    """How many events ``cond`` counts at ``now``; None when its ``since`` event has not happened.

    Counted: matches ``cond.event``, occurred_at <= now, and occurred_at > now - window_days (if set),
    and occurred_at > the first ``since`` event's time (if set).
    """
    seen = [e for e in events if e.occurred_at <= now]
    after: datetime | None = None
    if cond.since is not None:
        anchors = [e.occurred_at for e in seen if cond.since.matches(e)]
        if not anchors:
            return None
        after = min(anchors)
    start = now - timedelta(days=cond.window_days) if cond.window_days is not None else None
    return sum(
        1
        for e in seen
        if cond.event.matches(e)
        and (start is None or e.occurred_at > start)
        and (after is None or e.occurred_at > after)
    )


def count_holds(cond: Condition, n: int | None) -> bool:
    """True when ``n`` (what ``count_events`` returns for ``cond``) compares to the threshold as the
    condition says; None (its ``since`` event has not happened) never holds."""
    if n is None:
        return False
    t = cond.threshold
    return {">=": n >= t, ">": n > t, "<=": n <= t, "<": n < t, "=": n == t}[cond.op]


def condition_holds(cond: Condition, events: Iterable[CustomerEvent], now: datetime) -> bool:
    """True when the counted events compare to the threshold as the condition says."""
    return count_holds(cond, count_events(cond, events, now))


def rule_matches(rule: Rule, events: Iterable[CustomerEvent], now: datetime) -> bool:
    """True when every condition of the rule holds over ``events`` at ``now``."""
    history = list(events)
    return all(condition_holds(c, history, now) for c in rule.conditions)


def decide_upgrade(
    current: str, target: str, *, frozen: bool, pipeline: Pipeline = DEFAULT_PIPELINE
) -> UpgradeDecision:
    """May an automatic rule move an opportunity from ``current`` to ``target``?

    Never when frozen, never out of a closed stage (赢单/输单), never backwards or sideways.
    """
    try:
        closed = pipeline.get(current).closed
        pipeline.get(target)
    except KeyError:
        return UpgradeDecision(False, "unknown_stage")
    if closed:
        return UpgradeDecision(False, "closed")
    if frozen:
        return UpgradeDecision(False, "frozen")
    if not is_forward(current, target, pipeline):
        return UpgradeDecision(False, "not_forward")
    return UpgradeDecision(True, "move")


def select_upgrade(
    rules: Sequence[Rule],
    events: Iterable[CustomerEvent],
    now: datetime,
    *,
    current: str,
    frozen: bool,
    pipeline: Pipeline = DEFAULT_PIPELINE,
) -> Rule | None:
    """The rule to apply to an opportunity now, or None.

    Among the rules that match and whose move ``decide_upgrade`` allows, the one with the furthest
    target; on a tie, the first in ``rules``.
    """
    history = list(events)
    return _furthest(rules, lambda rule: rule_matches(rule, history, now), current=current, frozen=frozen,
                     pipeline=pipeline)


def select_upgrade_counted(
    rules: Sequence[Rule],
    counts: Mapping[Condition, int | None],
    *,
    current: str,
    frozen: bool,
    pipeline: Pipeline = DEFAULT_PIPELINE,
) -> Rule | None:
    """``select_upgrade`` from the counts already made: ``counts[cond]`` is what ``count_events(cond, events,
    now)`` gives for the customer's events (for a store that counts many customers at once, e.g. in SQL).
    A condition missing from ``counts`` does not hold."""
    return _furthest(rules, lambda rule: all(count_holds(c, counts.get(c)) for c in rule.conditions),
                     current=current, frozen=frozen, pipeline=pipeline)


def movable_stages(targets: Iterable[str], pipeline: Pipeline = DEFAULT_PIPELINE) -> list[str]:
    """The keys of the stages out of which some rule target in ``targets`` is an allowed move (not frozen)."""
    wanted = list(targets)
    return [s.key for s in pipeline if any(decide_upgrade(s.key, t, frozen=False, pipeline=pipeline).move
                                           for t in wanted)]


def _furthest(rules: Sequence[Rule], matches: Callable[[Rule], bool], *, current: str, frozen: bool,
              pipeline: Pipeline) -> Rule | None:
    best: Rule | None = None
    for rule in rules:
        if not decide_upgrade(current, rule.target, frozen=frozen, pipeline=pipeline).move:
            continue
        if not matches(rule):
            continue
        if best is None or pipeline.get(rule.target).rank > pipeline.get(best.target).rank:
            best = rule
    return best
