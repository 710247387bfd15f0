"""Follow-up reminders: what reminds the owner, the concrete suggestion, one per customer per item per day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.followup import (
    FollowUpReminder,
    click_needs_reminder,
    click_reminder,
    is_hot_event,
    product_event_reminder,
    reminder_dedup_key,
)

AT = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai


def competitor_click(at: datetime = AT, item_id: str = "17") -> FollowUpReminder | None:
    return click_reminder(customer_id="c-42", customer_name="华康医疗", item_id=item_id,
                          item_name="竞品对比白皮书", category="competitor", clicked_at=at)


def test_a_competitor_comparison_click_suggests_sending_our_comparison_within_two_hours() -> None:
    reminder = competitor_click()
    assert reminder is not None
    assert reminder.suggestion == "客户刚查看了《竞品对比白皮书》，建议 2 小时内发送我方差异化对比"
    assert reminder.message == "【华康医疗】客户刚查看了《竞品对比白皮书》，建议 2 小时内发送我方差异化对比"
    assert reminder.dedup_key == "followup:c-42:link:17:2026-03-04"


def test_a_pricing_click_reminds_with_its_own_suggestion() -> None:
    reminder = click_reminder(customer_id="c-42", customer_name="华康医疗", item_id="3", item_name="2026 报价单",
                              category="pricing", clicked_at=AT)
    assert reminder is not None
    assert reminder.suggestion.startswith("客户刚查看了《2026 报价单》，建议 2 小时内")


@pytest.mark.parametrize("category", ["case", "manual", "video", "other", None])
def test_other_categories_do_not_remind(category: str | None) -> None:
    assert not click_needs_reminder(category)
    assert click_reminder(customer_id="c-42", customer_name="华康医疗", item_id="5", item_name="案例集",
                          category=category, clicked_at=AT) is None


def test_two_clicks_on_the_same_shanghai_day_share_one_key() -> None:
    morning = competitor_click(datetime(2026, 3, 4, 0, 5, tzinfo=UTC))  # 08:05 Shanghai
    night = competitor_click(datetime(2026, 3, 4, 15, 59, tzinfo=UTC))  # 23:59 Shanghai
    assert morning is not None and night is not None
    assert morning.dedup_key == night.dedup_key


def test_the_day_turns_at_midnight_in_shanghai_not_utc() -> None:
    before = reminder_dedup_key("c-42", "link:17", datetime(2026, 3, 4, 15, 59, tzinfo=UTC))
    after = reminder_dedup_key("c-42", "link:17", datetime(2026, 3, 4, 16, 1, tzinfo=UTC))  # 00:01 on the 5th
    assert before.endswith("2026-03-04") and after.endswith("2026-03-05")


def test_another_item_or_customer_gets_its_own_key() -> None:
    first, other_item = competitor_click(), competitor_click(item_id="18")
    assert first is not None and other_item is not None
    assert first.dedup_key != other_item.dedup_key
    assert reminder_dedup_key("c-43", "link:17", AT) != first.dedup_key


def test_a_trial_request_is_hot_by_default() -> None:
    reminder = product_event_reminder(customer_id="c-42", customer_name="华康医疗", event_type="trial_requested",
                                      data={}, occurred_at=AT)
    assert reminder is not None
    assert "申请了试用" in reminder.suggestion
    assert reminder.dedup_key == "followup:c-42:event:trial_requested:2026-03-04"


@pytest.mark.parametrize(("data", "hot"), [({"hot": True}, True), ({"hot": "true"}, True), ({"hot": 1}, True),
                                           ({"hot": False}, False), ({}, False), (None, False),
                                           ({"hot": "no"}, False)])
def test_a_product_event_reminds_when_marked_hot(data: dict[str, object] | None, hot: bool) -> None:
    assert is_hot_event("export_report", data) == hot
    reminder = product_event_reminder(customer_id="c-42", customer_name="华康医疗", event_type="export_report",
                                      data=data, occurred_at=AT)
    assert (reminder is not None) == hot
    if reminder is not None:
        assert "「export_report」" in reminder.suggestion


def test_configured_hot_types() -> None:
    assert is_hot_event("Pricing_Page_Viewed", {}, hot_types={"pricing_page_viewed"})
    assert not is_hot_event("trial_requested", {}, hot_types={"pricing_page_viewed"})
