"""Follow-up reminders (智能跟单提醒, PRODUCT.md §1.7): which customer events remind the owner, the
concrete suggestion, and the key that keeps it to one reminder per customer per item per day.

- A click on a tracked link of category 报价 (pricing) or 竞品对比 (competitor) reminds; other
  categories do not.
- A product event reminds when it is hot: its ``data`` carries ``"hot": true`` (the product marks it),
  or its type is in the configured hot types (by default ``trial_requested``).
- The item is ``link:<item id>`` for clicks and ``event:<type>`` for product events; the day is the
  calendar day in Asia/Shanghai of the event, so the dedup key is
  ``followup:<customer>:<item>:<YYYY-MM-DD>`` — store it with a unique constraint (or SET NX).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from domain.rules import COMPETITOR, PRICING, TRIAL_REQUESTED

SHANGHAI = ZoneInfo("Asia/Shanghai")
REMINDER_CATEGORIES = frozenset({PRICING, COMPETITOR})
DEFAULT_HOT_EVENTS = frozenset({TRIAL_REQUESTED})

# User-visible wording (domain may not import the bot's message catalog).
_CLICK_SUGGESTION = {
    COMPETITOR: "客户刚查看了《{item}》，建议 2 小时内发送我方差异化对比",
    PRICING: "客户刚查看了《{item}》，建议 2 小时内电话沟通预算和采购时间，确认报价是否需要调整",
}
_EVENT_SUGGESTION = {
    TRIAL_REQUESTED: "客户刚申请了试用，建议 1 小时内联系客户，协助开通试用并约定演示时间",
}
_EVENT_SUGGESTION_OTHER = "客户刚在产品中触发了「{event}」，建议尽快联系，了解背后的需求"
_MESSAGE = "【{customer}】{suggestion}"


@dataclass(frozen=True)
class FollowUpReminder:
    """A reminder for the customer's owner: ``message`` is what they read; send it once per ``dedup_key``."""

    customer: str
    item: str
    suggestion: str
    message: str
    dedup_key: str


def click_needs_reminder(category: str | None) -> bool:
    """True for clicks on pricing (报价) and competitor-comparison (竞品对比) items."""
    return category in REMINDER_CATEGORIES


def is_hot_event(
    event_type: str, data: Mapping[str, object] | None, hot_types: Collection[str] = DEFAULT_HOT_EVENTS
) -> bool:
    """True when the product marked the event hot (``data["hot"]`` true) or its type is a hot type."""
    flag = (data or {}).get("hot")
    marked = (
        flag is True
        or (type(flag) is int and flag == 1)
        or (isinstance(flag, str) and flag.strip().lower() in {"true", "1", "yes"})
    )
    return marked or event_type.lower() in {t.lower() for t in hot_types}


def reminder_day(at: datetime, tz: tzinfo = SHANGHAI) -> date:
    """The calendar day, in ``tz``, that a reminder for an event at ``at`` belongs to."""
    return at.astimezone(tz).date()


def reminder_dedup_key(customer: str, item: str, at: datetime, tz: tzinfo = SHANGHAI) -> str:
    """``followup:<customer>:<item>:<day>``: equal for every reminder that must be sent only once."""
    return f"followup:{customer}:{item}:{reminder_day(at, tz).isoformat()}"


def click_reminder(
    *,
    customer_id: str,
    customer_name: str,
    item_id: str,
    item_name: str,
    category: str | None,
    clicked_at: datetime,
    tz: tzinfo = SHANGHAI,
) -> FollowUpReminder | None:
    """The reminder a link click should raise, or None when its category does not remind."""
    if category is None or not click_needs_reminder(category):
        return None
    suggestion = _CLICK_SUGGESTION[category].format(item=item_name)
    item = f"link:{item_id}"
    return FollowUpReminder(
        customer=customer_id,
        item=item,
        suggestion=suggestion,
        message=_MESSAGE.format(customer=customer_name, suggestion=suggestion),
        dedup_key=reminder_dedup_key(customer_id, item, clicked_at, tz),
    )


def product_event_reminder(
    *,
    customer_id: str,
    customer_name: str,
    event_type: str,
    data: Mapping[str, object] | None,
    occurred_at: datetime,
    hot_types: Collection[str] = DEFAULT_HOT_EVENTS,
    tz: tzinfo = SHANGHAI,
) -> FollowUpReminder | None:
    """The reminder a product event should raise, or None when it is not hot."""
    if not is_hot_event(event_type, data, hot_types):
        return None
    kind = event_type.lower()
    template = _EVENT_SUGGESTION.get(kind, _EVENT_SUGGESTION_OTHER)
    suggestion = template.format(event=event_type)
    item = f"event:{kind}"
    return FollowUpReminder(
        customer=customer_id,
        item=item,
        suggestion=suggestion,
        message=_MESSAGE.format(customer=customer_name, suggestion=suggestion),
        dedup_key=reminder_dedup_key(customer_id, item, occurred_at, tz),
    )
