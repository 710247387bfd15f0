"""Collaboration points: +2 once per confirmed request, redemption never below zero."""

from domain.points import (
    CONFIRMATION_POINTS,
    PointsEntry,
    PointsReason,
    Redemption,
    balance,
    confirmation_credit,
    redeem,
)

CATALOGUE = {"咖啡券": 4, "电影票": 10}


def test_a_csm_clicking_confirm_twice_credits_the_rep_2_points_once():
    ledger: list[PointsEntry] = []
    for _click in range(2):
        entry = confirmation_credit(ledger, request_id="REQ-7", rep="lisi", note="星河科技 · 上线培训")
        if entry is not None:
            ledger.append(entry)
    assert ledger == [PointsEntry("lisi", 2, PointsReason.COLLABORATION, "REQ-7", "星河科技 · 上线培训")]
    assert balance(ledger, "lisi") == CONFIRMATION_POINTS == 2


def test_each_distinct_request_earns_its_own_points():
    ledger = [confirmation_credit([], "REQ-1", "lisi")]
    ledger.append(confirmation_credit(ledger, "REQ-2", "lisi"))
    assert balance(ledger, "lisi") == 4


def test_balance_is_per_member():
    ledger = [confirmation_credit([], "REQ-1", "lisi"), confirmation_credit([], "REQ-2", "wangwu")]
    assert balance(ledger, "lisi") == 2
    assert balance(ledger, "zhaoliu") == 0


def earned(points: int) -> list[PointsEntry]:
    return [PointsEntry("lisi", 2, PointsReason.COLLABORATION, f"REQ-{i}") for i in range(points // 2)]


def test_redeeming_with_enough_points_books_the_cost():
    ledger = earned(6)
    outcome = redeem(ledger, "lisi", "咖啡券", CATALOGUE, ref="MSG-1")
    assert outcome == Redemption(entry=PointsEntry("lisi", -4, PointsReason.REDEMPTION, "MSG-1", "咖啡券"))
    assert balance([*ledger, outcome.entry], "lisi") == 2


def test_redeeming_exactly_the_balance_leaves_zero():
    ledger = earned(4)
    outcome = redeem(ledger, "lisi", " 咖啡券 ", CATALOGUE, ref="MSG-1")
    assert balance([*ledger, outcome.entry], "lisi") == 0


def test_redemption_that_would_go_below_zero_is_refused_with_the_reason():
    outcome = redeem(earned(6), "lisi", "电影票", CATALOGUE, ref="MSG-2")
    assert outcome.entry is None
    assert outcome.refusal == "积分不足：兑换「电影票」需要 10 分，您当前余额 6 分，还差 4 分。"


def test_an_unknown_item_is_refused_listing_the_catalogue():
    outcome = redeem(earned(20), "lisi", "机票", CATALOGUE, ref="MSG-3")
    assert outcome.entry is None
    assert outcome.refusal == "没有找到兑换项「机票」。可兑换：咖啡券（4 分）、电影票（10 分）"


def test_an_empty_catalogue_says_to_ask_the_admin():
    outcome = redeem(earned(20), "lisi", "机票", {}, ref="MSG-3")
    assert "联系管理员" in outcome.refusal


def test_a_retried_redemption_message_books_nothing_more():
    ledger = earned(10)
    first = redeem(ledger, "lisi", "咖啡券", CATALOGUE, ref="MSG-4")
    ledger.append(first.entry)
    assert redeem(ledger, "lisi", "咖啡券", CATALOGUE, ref="MSG-4") == Redemption(entry=None, refusal=None)
    assert balance(ledger, "lisi") == 6


def test_another_members_points_cannot_be_spent():
    ledger = [PointsEntry("wangwu", 20, PointsReason.COLLABORATION, "REQ-9")]
    assert redeem(ledger, "lisi", "咖啡券", CATALOGUE, ref="MSG-5").refusal is not None


def test_one_point_short_is_still_refused():
    outcome = redeem(
        earned(2) + [PointsEntry("lisi", 1, PointsReason.COLLABORATION, "REQ-odd")],
        "lisi",
        "咖啡券",
        CATALOGUE,
        ref="MSG-6",
    )
    assert outcome.entry is None
    assert outcome.refusal == "积分不足：兑换「咖啡券」需要 4 分，您当前余额 3 分，还差 1 分。"
