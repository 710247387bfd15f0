"""Visit logs typed in one message: `拜访 <客户> 痛点:… 预算:已明确 下一步:… 联系人:…`."""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELD_NAMES = {"痛点": "pain", "预算": "budget", "下一步": "next_step", "联系人": "contacts", "报告": "report"}
_LABELS = "|".join(FIELD_NAMES)
_FIELD_RE = re.compile(rf"({_LABELS})\s*[:：]")


@dataclass(frozen=True)
class VisitText:
    customer: str  # what precedes the first field: the customer as typed
    fields: dict[str, str]  # field key → value


def parse_visit_text(text: str) -> VisitText:
    """Split `<客户> 痛点:… 预算:…` into the customer part and the labelled fields (later labels win)."""
    matches = list(_FIELD_RE.finditer(text))
    if not matches:
        return VisitText(text.strip(), {})
    customer = text[: matches[0].start()].strip()
    fields: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[m.end(): end].strip().strip("，,；;。")
        if value:
            fields[FIELD_NAMES[m.group(1)]] = value
    return VisitText(customer, fields)


_LEADING_LABEL_RE = re.compile(rf"({_LABELS})[\s\u3000]+(\S.*)$", re.S)


def labelled_fields(text: str) -> dict[str, str]:
    """Only the labelled fields of a message (`预算:已明确 下一步:演示`), for answers inside a dialog. An
    answer that starts with a label and a space instead of a colon (`联系人 王总 CTO`) is that one field."""
    if _FIELD_RE.search(text):
        return parse_visit_text(text).fields
    m = _LEADING_LABEL_RE.match(text.strip())
    return {FIELD_NAMES[m.group(1)]: m.group(2).strip().strip("，,；;。")} if m else {}
