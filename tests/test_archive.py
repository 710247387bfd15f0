"""Archive search (§4.2): Chinese keywords inside sentences, newest first, scoped by role."""

from __future__ import annotations

from storage.models import Member
from tests.harness import Chat


def other_team(chat: Chat) -> None:
    with chat.rt.db.transaction() as s:
        s.add(Member(userid="boss2", name="钱经理", roles=["manager"], region="华南"))
        s.flush()
        s.add(Member(userid="rep2", name="吴九", roles=["rep"], manager_userid="boss2", region="华南"))
    chat.wecom.add_member("boss2", "钱经理")
    chat.wecom.add_member("rep2", "吴九")


def test_keywords_match_inside_sentences_newest_first_with_customer_and_snippet(chat: Chat, company):
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("zhangsan", "拜访 杭州云栖 痛点:客户说明年的采购预算要重新评估 预算:待确认 下一步:演示")
    chat.say("zhangsan", "今天和客户聊了采购预算的事情")  # unknown command, still archived
    found = chat.say("zhangsan", "搜索 采购预算")
    lines = [line for line in found.splitlines() if line.startswith("•")]
    assert len(lines) == 2
    assert "今天和客户聊了采购预算" in lines[0]  # newest first
    assert "杭州云栖科技有限公司" in lines[1] and "采购预算要重新评估" in lines[1]
    assert "「预算」的搜索结果" in chat.say("zhangsan", "搜索 预算")  # two characters work too


def test_a_reps_search_does_not_return_another_teams_messages_but_a_managers_does(chat: Chat, company):
    other_team(chat)
    chat.say("rep2", "新客户 深圳海港物流有限公司")
    chat.say("rep2", "拜访 深圳海港 痛点:仓储系统老旧需要扩容招标 预算:已明确 下一步:报价")
    chat.say("zhangsan", "客户那边也在准备扩容招标")
    mine = chat.say("zhangsan", "搜索 扩容招标")
    assert "客户那边也在准备扩容招标" in mine and "深圳海港" not in mine
    assert "深圳海港物流有限公司" in chat.say("boss2", "搜索 扩容招标")
    assert "客户那边也在准备" not in chat.say("boss2", "搜索 扩容招标")
    assert "客户那边也在准备" in chat.say("wangwu", "搜索 扩容招标")
    everything = chat.say("admin", "搜索 扩容招标")
    assert "深圳海港" in everything and "客户那边也在准备" in everything


def test_customer_and_date_filters(chat: Chat, company):
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("zhangsan", "新客户 北京远景数据有限公司")
    chat.say("zhangsan", "拜访 杭州云栖 痛点:多仓库存无法统一查看 预算:已明确 下一步:演示")
    chat.say("zhangsan", "拜访 北京远景 痛点:多仓库存对账困难 预算:已明确 下一步:演示")
    only = chat.say("zhangsan", "搜索 多仓库存 客户 北京远景")
    assert "北京远景" in only and "杭州云栖" not in only
    assert "没有找到" in chat.say("zhangsan", "搜索 多仓库存 到 2020-01-01")
    assert "没有看懂日期" in chat.say("zhangsan", "搜索 多仓库存 从 昨天晚上")


def test_search_text_is_data_not_sql(chat: Chat, company):
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    for attack in ("'; DROP TABLE inbound_messages; --", '" OR 1=1 --', "%_%", "NEAR(a b)"):
        assert "没有找到" in chat.say("lisi", f"搜索 {attack}")
    assert "杭州云栖" in chat.say("zhangsan", "客户 杭州云栖")


def test_a_search_from_a_day_without_a_year_means_the_latest_such_day(chat: Chat, company):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("zhangsan", "拜访 杭州云栖 痛点:多仓库存无法统一查看 预算:已明确 下一步:演示")
    since = datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=20)
    # 20 days ago without its year: this past day, not the same day next year (which would find nothing)
    assert "多仓库存" in chat.say("zhangsan", f"搜索 多仓库存 从 {since:%m-%d}")
    assert "多仓库存" in chat.say("zhangsan", "搜索 多仓库存 从 上周一")
