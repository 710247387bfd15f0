"""storage.search.search_messages on known messages: which ones a keyword finds, newest first, within the
asker's scope, whatever path the database takes (text index, newest-first walk, short keywords)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.models import InboundMessage
from storage.sales import Customer
from storage.search import search_messages

T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)

# (sender, customer, type, text); message k is sent at T0 + k hours
MESSAGES = [
    ("zhangsan", "a", "text", "客户说明年的采购预算要重新评估"),  # 0
    ("zhangsan", None, "text", "今天和客户聊了采购预算的事情"),  # 1
    ("lisi", "b", "text", "北京远景的预算已经批了，合同下周签"),  # 2
    ("lisi", "a", "text", "帮张三问了一下杭州云栖的采购预算"),  # 3 lisi about zhangsan's customer
    ("zhaoliu", None, "text", "采购预算 100% 确认，折扣_再谈"),  # 4
    ("zhangsan", "a", "voice", "语音：采购预算下周确认"),  # 5
    ("zhangsan", "a", "image", ""),  # 6
    ("zhangsan", "a", "event", ""),  # 7
    ("wangwu", None, "text", "大家月底前把采购预算都确认一下"),  # 8
    ("admin", None, "text", "Salesforce 的报价比我们高"),  # 9
    ("zhangsan", "a", "text", "区块链存证的需求，客户只提了一次"),  # 10
]


@pytest.fixture
def archive(rt, company):  # noqa: ANN001, ANN201
    with rt.db.transaction() as s:
        a = Customer(name="杭州云栖科技有限公司", name_key="杭州云栖", owner_userid="zhangsan")
        b = Customer(name="北京远景数据有限公司", name_key="北京远景", owner_userid="lisi")
        s.add_all([a, b])
        s.flush()
        ids = {"a": a.id, "b": b.id}
        for k, (sender, customer, kind, text) in enumerate(MESSAGES):
            s.add(InboundMessage(callback_key=f"search-test:{k}", msg_id=str(k), from_user=sender, msg_type=kind,
                                 content=text, raw={}, sent_at=T0 + timedelta(hours=k),
                                 customer_id=ids[customer] if customer else None))
        s.flush()
        # the same second twice: the later id first
        s.add(InboundMessage(callback_key="search-test:tie", msg_id="tie", from_user="zhangsan", msg_type="text",
                             content="同一秒的采购预算", raw={}, sent_at=T0 + timedelta(hours=5),
                             customer_id=ids["a"]))
    return rt, ids


def found(rt, keyword: str, owners=None, owned=None, **kw) -> list[str]:  # noqa: ANN001
    with rt.db.sessions() as s:
        hits = search_messages(s, keyword, owners=owners, owned_customers=owned, **kw)
    return [h.content for h in hits]


def test_everything_newest_first_text_and_voice_only(archive):
    rt, _ = archive
    assert found(rt, "采购预算") == [MESSAGES[8][3], "同一秒的采购预算", MESSAGES[5][3], MESSAGES[4][3],
                                  MESSAGES[3][3], MESSAGES[1][3], MESSAGES[0][3]]
    assert found(rt, "预算") == [MESSAGES[8][3], "同一秒的采购预算", MESSAGES[5][3], MESSAGES[4][3],
                               MESSAGES[3][3], MESSAGES[2][3], MESSAGES[1][3], MESSAGES[0][3]]
    assert found(rt, "预算", limit=3) == [MESSAGES[8][3], "同一秒的采购预算", MESSAGES[5][3]]
    assert found(rt, "区块链") == [MESSAGES[10][3]]
    assert found(rt, "salesforce") == [MESSAGES[9][3]]  # case does not matter
    assert found(rt, "量子纠缠") == [] and found(rt, "合") == [MESSAGES[2][3]]
    assert found(rt, "100%") == [MESSAGES[4][3]] and found(rt, "折扣_") == [MESSAGES[4][3]]
    assert found(rt, "0%确") == [] and found(rt, "扣%再") == []  # % and _ are text, not wildcards


def test_scope_of_a_rep_and_a_manager(archive):
    rt, ids = archive
    mine = found(rt, "采购预算", owners={"zhangsan"}, owned={ids["a"]})
    assert mine == ["同一秒的采购预算", MESSAGES[5][3], MESSAGES[3][3], MESSAGES[1][3], MESSAGES[0][3]]
    assert found(rt, "预算", owners={"lisi"}, owned={ids["b"]}) == [MESSAGES[3][3], MESSAGES[2][3]]
    assert found(rt, "预算", owners={"zhaoliu"}, owned=set()) == [MESSAGES[4][3]]
    team = {"wangwu", "zhangsan", "lisi", "zhaoliu"}
    assert found(rt, "采购预算", owners=team, owned={ids["a"], ids["b"]}) == found(rt, "采购预算")
    assert found(rt, "Salesforce", owners=team, owned={ids["a"], ids["b"]}) == []


def test_customer_and_dates(archive):
    rt, ids = archive
    assert found(rt, "预算", customer_id=ids["b"]) == [MESSAGES[2][3]]
    assert found(rt, "采购预算", since=T0 + timedelta(hours=3), until=T0 + timedelta(hours=5)) == [
        MESSAGES[4][3], MESSAGES[3][3]]
    assert found(rt, "预算", owners={"zhangsan"}, owned={ids["a"]}, since=T0 + timedelta(hours=5)) == [
        "同一秒的采购预算", MESSAGES[5][3]]
