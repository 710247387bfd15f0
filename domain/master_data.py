"""Customer master data 客户主数据 (PRODUCT.md §4.1): candidate duplicates and merge plans.

Candidate duplicates, strongest reason first (a pair is listed once, with its strongest reason):

1. ``SAME_CODE``: the same unified social credit code (upper-cased, half-width, spaces and dashes
   dropped) — §4.1 "same code → same customer";
2. ``SAME_NAME``: the same ``domain.names.normalise_company_name`` (full/half width, spaces, brackets,
   （中国）, legal suffixes), so 阿里巴巴（中国）网络技术有限公司 and 阿里巴巴(中国)网络技术 有限公司 pair up;
3. ``NAME_CONTAINS``: one normalised name contains the other, and the shorter has at least
   ``min_contained_chars`` characters (default 4, so 杭州云栖 ⊂ 杭州云栖科技 counts and 云栖 does not).

Two customers with *different* credit codes are never candidates by name: the codes say they are two
legal entities (a 分公司 has its own code), and a code was checked when it was entered.

A merge plan keeps one customer (``kept_customer``): the only one of the two with a credit code,
otherwise the older (earlier ``created``; unknown counts as newest), otherwise the lower id. For every
field the merged value is the one both agree on, or the only one given, or — when both give different
values — the kept customer's, and the disagreement is a ``FieldConflict`` (冲突点) with both values and
their sources for review. Values that differ only in full/half width or whitespace agree. The plan is
data only: the caller moves the linked records, writes the audit, and checks the record counts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from itertools import combinations

from domain.names import normalise_company_name, to_halfwidth

MIN_CONTAINED_CHARS = 4

# --- user-visible text (Simplified Chinese) ------------------------------------------------------------
REASON_SAME_CODE = "统一社会信用代码相同（{code}）"
REASON_SAME_NAME = "名称规范化后相同（{name}）"
REASON_NAME_CONTAINS = "名称包含：「{short}」⊂「{long}」"
PAIR_LINE = "{n}. #{a} {a_name} ↔ #{b} {b_name}：{reason}"
NO_PAIRS = "没有发现疑似重复的客户。"
KEPT_WITH_CODE = "保留 #{id}（有统一社会信用代码）"
KEPT_OLDER = "保留 #{id}（建档更早）"
KEPT_LOWER_ID = "保留 #{id}（编号更小）"
PLAN_HEADING = "合并 #{removed} → #{kept}：{why}"
CONFLICT_HEADING = "冲突点（{n} 项，已采用保留客户的值）："
CONFLICT_LINE = "· {field}：{kept}（{kept_source}）vs {other}（{other_source}）"
NO_CONFLICTS = "没有冲突字段。"
FILLED_LINE = "· {field}：补充为 {value}（{source}）"
DIFFERENT_CODES = "两个客户的统一社会信用代码不同（{a} / {b}），是两家不同的法人，不能合并。请先核对代码。"
SAME_CUSTOMER = "不能把客户和自己合并。"
EMPTY_VALUE = "（空）"
FIELD_LABELS = {
    "name": "名称", "credit_code": "统一社会信用代码", "phone": "电话", "owner": "负责人", "industry": "行业",
    "region": "区域", "address": "地址", "email": "邮箱", "contact": "联系人",
}  # fmt: skip

CREDIT_CODE_FIELD = "credit_code"
_CODE_NOISE = re.compile(r"[\s\-]")
_WHITESPACE = re.compile(r"\s+")


class DuplicateReason(IntEnum):
    """Why two customers may be one; a smaller value is a stronger reason."""

    SAME_CODE = 1
    SAME_NAME = 2
    NAME_CONTAINS = 3


@dataclass(frozen=True)
class CustomerIdentity:
    id: int
    name: str
    credit_code: str | None = None


@dataclass(frozen=True)
class DuplicatePair:
    """Two customers that may be one (``first.id < second.id``) and why, in Chinese (``detail``)."""

    first: CustomerIdentity
    second: CustomerIdentity
    reason: DuplicateReason
    detail: str


def comparable_code(code: str | None) -> str | None:
    """A credit code as compared here: half-width, upper-case, no spaces or dashes; None when empty."""
    if code is None:
        return None
    cleaned = _CODE_NOISE.sub("", to_halfwidth(code)).upper()
    return cleaned or None


def duplicate_candidates(
    customers: Iterable[CustomerIdentity], *, min_contained_chars: int = MIN_CONTAINED_CHARS
) -> list[DuplicatePair]:
    """Every candidate pair (see module docstring), by reason, then by the pair's ids."""
    people = sorted(customers, key=lambda c: c.id)
    codes = {c.id: comparable_code(c.credit_code) for c in people}
    names = {c.id: normalise_company_name(c.name) for c in people}
    found: dict[tuple[int, int], tuple[DuplicateReason, str]] = {}

    def note(a: CustomerIdentity, b: CustomerIdentity, reason: DuplicateReason, detail: str) -> None:
        key = (min(a.id, b.id), max(a.id, b.id))
        if key[0] == key[1]:
            return
        if reason is not DuplicateReason.SAME_CODE and codes[a.id] and codes[b.id] and codes[a.id] != codes[b.id]:
            return
        if key not in found or reason < found[key][0]:
            found[key] = (reason, detail)

    for group in _groups(people, codes).values():
        for a, b in combinations(group, 2):
            note(a, b, DuplicateReason.SAME_CODE, REASON_SAME_CODE.format(code=codes[a.id]))
    for group in _groups(people, names).values():
        for a, b in combinations(group, 2):
            note(a, b, DuplicateReason.SAME_NAME, REASON_SAME_NAME.format(name=names[a.id]))
    for short, long in _containments(people, names, max(1, min_contained_chars)):
        note(short, long, DuplicateReason.NAME_CONTAINS,
             REASON_NAME_CONTAINS.format(short=names[short.id], long=names[long.id]))

    by_id = {c.id: c for c in people}
    pairs = [DuplicatePair(by_id[a], by_id[b], reason, detail) for (a, b), (reason, detail) in found.items()]
    return sorted(pairs, key=lambda p: (p.reason, p.first.id, p.second.id))


def _groups(
    people: list[CustomerIdentity], keys: Mapping[int, str | None]
) -> dict[str, list[CustomerIdentity]]:
    groups: dict[str, list[CustomerIdentity]] = defaultdict(list)
    for c in people:
        key = keys[c.id]
        if key:
            groups[key].append(c)
    return groups


def _containments(
    people: list[CustomerIdentity], names: Mapping[int, str], n: int
) -> Iterable[tuple[CustomerIdentity, CustomerIdentity]]:
    """(shorter, longer) pairs where the longer name strictly contains the shorter one (≥ n chars).

    Indexed by n-grams, so a shorter name is only compared with names that contain its first n
    characters: near-linear for thousands of customers instead of every pair.
    """
    index: dict[str, set[int]] = defaultdict(set)
    for c in people:
        name = names[c.id]
        for i in range(len(name) - n + 1):
            index[name[i : i + n]].add(c.id)
    by_id = {c.id: c for c in people}
    for c in people:
        name = names[c.id]
        if len(name) < n:
            continue
        for other_id in sorted(index.get(name[:n], ())):
            other = names[other_id]
            if other_id != c.id and len(other) > len(name) and name in other:
                yield c, by_id[other_id]


def render_duplicates(pairs: Iterable[DuplicatePair]) -> str:
    """The ``查重`` reply: one numbered line per pair, or ``NO_PAIRS``."""
    lines = [
        PAIR_LINE.format(n=n, a=p.first.id, a_name=p.first.name, b=p.second.id, b_name=p.second.name,
                         reason=p.detail)
        for n, p in enumerate(pairs, start=1)
    ]
    return "\n".join(lines) or NO_PAIRS


# --- merging -------------------------------------------------------------------------------------------

SourcedValue = tuple[str | None, str]  # (value, where it came from: "rep 张三 2026-05-01", "ERP 导入" …)


@dataclass(frozen=True)
class CustomerRecord:
    """A customer's fields, each with its source; ``created`` is when the customer was first recorded."""

    id: int
    fields: Mapping[str, SourcedValue]
    created: date | datetime | None = None

    @property
    def credit_code(self) -> str | None:
        value = self.fields.get(CREDIT_CODE_FIELD)
        return comparable_code(value[0]) if value else None


@dataclass(frozen=True)
class FieldConflict:
    """A field both customers filled differently (冲突点); the kept customer's value was used."""

    field: str
    kept_value: str
    kept_source: str
    other_value: str
    other_source: str


@dataclass(frozen=True)
class MergePlan:
    kept_id: int
    removed_id: int
    why_kept: str  # Chinese, e.g. 保留 #1（有统一社会信用代码）
    merged: Mapping[str, SourcedValue]
    conflicts: tuple[FieldConflict, ...]
    filled: tuple[str, ...]  # fields only the removed customer had, now taken over


class MergeRefused(ValueError):
    """The two customers must not be merged; ``str(error)`` says why in Chinese."""


def _sort_time(created: date | datetime | None) -> tuple[int, datetime]:
    if created is None:
        return (1, datetime.max)
    if isinstance(created, datetime):
        return (0, created.replace(tzinfo=None))
    return (0, datetime(created.year, created.month, created.day))


def kept_customer(a: CustomerRecord, b: CustomerRecord) -> tuple[CustomerRecord, CustomerRecord, str]:
    """(kept, removed, why in Chinese): the only one with a credit code, else the older, else the lower id."""
    if bool(a.credit_code) != bool(b.credit_code):
        kept, removed = (a, b) if a.credit_code else (b, a)
        return kept, removed, KEPT_WITH_CODE.format(id=kept.id)
    if _sort_time(a.created) != _sort_time(b.created):
        kept, removed = (a, b) if _sort_time(a.created) < _sort_time(b.created) else (b, a)
        return kept, removed, KEPT_OLDER.format(id=kept.id)
    kept, removed = (a, b) if a.id < b.id else (b, a)
    return kept, removed, KEPT_LOWER_ID.format(id=kept.id)


def _present(value: SourcedValue | None) -> bool:
    return value is not None and value[0] is not None and value[0].strip() != ""


def values_agree(x: str, y: str) -> bool:
    """Equal once full-width forms are half-width and whitespace is gone (（中国） == (中国))."""
    return _WHITESPACE.sub("", to_halfwidth(x)) == _WHITESPACE.sub("", to_halfwidth(y))


def plan_merge(a: CustomerRecord, b: CustomerRecord) -> MergePlan:
    """Which customer stays, the merged fields and the conflicts (see module docstring).

    Raises ``MergeRefused`` for a customer merged with itself or two different credit codes.
    """
    if a.id == b.id:
        raise MergeRefused(SAME_CUSTOMER)
    if a.credit_code and b.credit_code and a.credit_code != b.credit_code:
        raise MergeRefused(DIFFERENT_CODES.format(a=a.credit_code, b=b.credit_code))
    kept, removed, why = kept_customer(a, b)
    merged: dict[str, SourcedValue] = {}
    conflicts: list[FieldConflict] = []
    filled: list[str] = []
    for field in [*kept.fields, *(f for f in removed.fields if f not in kept.fields)]:
        mine, theirs = kept.fields.get(field), removed.fields.get(field)
        if _present(mine) and mine is not None:
            merged[field] = mine
            if _present(theirs) and theirs is not None and not values_agree(str(mine[0]), str(theirs[0])):
                conflicts.append(FieldConflict(field, str(mine[0]), mine[1], str(theirs[0]), theirs[1]))
        elif _present(theirs) and theirs is not None:
            merged[field] = theirs
            filled.append(field)
        elif mine is not None:
            merged[field] = mine
        elif theirs is not None:
            merged[field] = theirs
    return MergePlan(kept.id, removed.id, why, merged, tuple(conflicts), tuple(filled))


def field_label(field: str) -> str:
    """The Chinese name of a customer field (``FIELD_LABELS``), or the key itself."""
    return FIELD_LABELS.get(field, field)


def render_merge_plan(plan: MergePlan) -> str:
    """The ``合并 … 预览`` reply: who stays and why, the conflicts with both sources, the filled fields."""
    lines = [PLAN_HEADING.format(removed=plan.removed_id, kept=plan.kept_id, why=plan.why_kept)]
    if plan.conflicts:
        lines.append(CONFLICT_HEADING.format(n=len(plan.conflicts)))
        lines.extend(
            CONFLICT_LINE.format(field=field_label(c.field), kept=c.kept_value, kept_source=c.kept_source,
                                 other=c.other_value, other_source=c.other_source)
            for c in plan.conflicts
        )
    else:
        lines.append(NO_CONFLICTS)
    for field in plan.filled:
        value, source = plan.merged[field]
        lines.append(FILLED_LINE.format(field=field_label(field), value=value or EMPTY_VALUE, source=source))
    return "\n".join(lines)


def record_count_mismatches(
    before_kept: Mapping[str, int], before_removed: Mapping[str, int], after_kept: Mapping[str, int]
) -> dict[str, tuple[int, int]]:
    """Per linked table, (records before = kept + removed, records after on the kept customer) where they
    differ; empty when the merge moved every record. Tables missing from a mapping count as 0."""
    tables = set(before_kept) | set(before_removed) | set(after_kept)
    result: dict[str, tuple[int, int]] = {}
    for table in sorted(tables):
        before = before_kept.get(table, 0) + before_removed.get(table, 0)
        after = after_kept.get(table, 0)
        if before != after:
            result[table] = (before, after)
    return result
