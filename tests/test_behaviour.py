"""Issue 5, the parts that live on the wire: tracked links, product events, automatic upgrades,
follow-up reminders, and the rules admins write by chat."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from jobs.link_clicks import drain
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.behaviour import CustomerEvent
from storage.sales import Opportunity, StageChange
from tests.harness import Chat

SECRET = "hook-secret"
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh ColorScheme/Light")
PREVIEW_UA = "wxwork/4.1.22 CFNetwork/1410.0.3 Darwin/22.6.0"
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def bot(make_runtime, wecom, company):
    from bot.app import create_app

    rt = make_runtime(hooks__product_events_secret=SECRET)
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司 信用代码 91330100716105852F 行业 软件")
    chat.say("zhangsan", "新商机 杭州云栖 15万 方案演示")
    chat.say("admin", "资料 新增 竞品对比白皮书 https://docs.example.com/compare.pdf?v=2 竞品对比")
    chat.say("admin", "资料 新增 产品手册 https://docs.example.com/manual.pdf 手册")
    return chat


def settle(chat: Chat) -> None:
    """Store the queued clicks and let the follow-ups finish (the periodic jobs catch anything pending)."""
    chat.flush_clicks()  # what the redirects buffered, into the queue
    drain(chat.rt, wait_s=30)
    run_job(chat.rt, load_jobs()["customer_events"], f"settle-{uuid.uuid4().hex}")
    chat.deliver()


def link(chat: Chat, item: str) -> str:
    reply = chat.say("zhangsan", f"链接 杭州云栖 {item}")
    return reply.split("127.0.0.1:8000", 1)[1].split()[0]


def clicks(chat: Chat, kind: str = "link_click") -> int:
    chat.flush_clicks()  # the redirect buffers the click, the flush queues it, the drain stores it
    drain(chat.rt, followups=0, wait_s=30)
    with chat.rt.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(CustomerEvent).where(CustomerEvent.type == kind)))


def post_event(chat: Chat, body: dict | str, secret: str = SECRET, sign: bool = True):
    raw = (json.dumps(body, ensure_ascii=False) if isinstance(body, dict) else body).encode()
    sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest() if sign else "0" * 64
    return chat.app.test_client().post("/hooks/product-events", data=raw, content_type="application/json",
                                       headers={"X-Salesbot-Signature": f"sha256={sig}"})


def event(customer: str, etype: str, at: datetime, eid: str | None = None, **data) -> dict:
    return {"id": eid or uuid.uuid4().hex, "customer": customer, "type": etype, "occurred_at": at.isoformat(),
            "data": data}


def opp(chat: Chat) -> Opportunity:
    with chat.rt.db.sessions() as s:
        return s.scalar(select(Opportunity))


def test_a_phone_click_counts_a_preview_does_not_and_the_target_is_the_stored_url(bot: Chat):
    path = link(bot, "竞品对比")
    client = bot.app.test_client()
    resp = client.get(path, headers={"User-Agent": PHONE_UA})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "https://docs.example.com/compare.pdf?v=2"
    preview = client.get(path, headers={"User-Agent": PREVIEW_UA})
    assert preview.status_code == 302
    assert clicks(bot) == 1 and clicks(bot, "link_preview") == 1
    # nothing in the request can change where it goes
    sneaky = client.get(path + "?url=https://evil.example/&next=//evil.example", headers={"User-Agent": PHONE_UA})
    assert sneaky.headers["Location"] == "https://docs.example.com/compare.pdf?v=2"


def test_unknown_or_removed_links_are_a_404_page(bot: Chat):
    assert bot.app.test_client().get("/t/doesnotexist").status_code == 404
    path = link(bot, "产品手册")
    bot.say("admin", "资料 删除 产品手册")
    resp = bot.app.test_client().get(path, headers={"User-Agent": PHONE_UA})
    assert resp.status_code == 404 and "链接不存在" in resp.get_data(as_text=True)


def test_tokens_are_long_and_random(bot: Chat):
    tokens = {link(bot, "产品手册").rsplit("/", 1)[1] for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) >= 22 for t in tokens)


def test_competitor_click_reminds_the_owner_once_a_day(bot: Chat):
    path = link(bot, "竞品对比")
    for _ in range(3):
        bot.app.test_client().get(path, headers={"User-Agent": PHONE_UA})
    settle(bot)
    reminders = [m.body["content"] for m in bot.inbox("zhangsan") if "客户刚查看了" in m.body.get("content", "")]
    assert reminders == ["【杭州云栖科技有限公司】客户刚查看了《竞品对比白皮书》，建议 2 小时内发送我方差异化对比"]
    bot.app.test_client().get(link(bot, "产品手册"), headers={"User-Agent": PHONE_UA})
    settle(bot)
    assert not any("产品手册" in m.body.get("content", "") for m in bot.inbox("zhangsan"))  # manuals don't remind


def test_trial_plus_three_logins_moves_to_solution_confirmed_once_and_tells_the_manager(bot: Chat):
    code = "91330100716105852F"
    start = datetime.now(SH) - timedelta(days=2)
    events = [event(code, "trial_requested", start, "e1")] + [
        event(code, "login", start + timedelta(hours=i + 1), f"l{i}") for i in range(3)]
    for e in events[:3]:
        assert post_event(bot, e).status_code == 202
    settle(bot)
    assert opp(bot).stage == "demo"  # two logins are not enough
    assert post_event(bot, events[3]).status_code == 202
    settle(bot)
    o = opp(bot)
    assert o.stage == "solution_confirmed"
    with bot.rt.db.sessions() as s:
        history = list(s.scalars(select(StageChange).where(StageChange.opportunity_id == o.id)))
    assert history[-1].rule == "申请试用>=1 且 申请试用后登录>=3 则 方案确认" and history[-1].actor is None
    cards = bot.cards("wangwu")
    assert len(cards) == 1 and cards[0].body["main_title"]["title"] == "商机自动跃迁"
    assert any("已从「方案演示」推进到「方案确认」" in m.body.get("content", "") for m in bot.inbox("zhangsan"))
    # the same events replayed change nothing
    for e in events:
        resp = post_event(bot, e)
        assert resp.status_code == 200 and resp.json == {"status": "duplicate"}
    settle(bot)
    assert len(bot.cards("wangwu")) == 1
    with bot.rt.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(StageChange)) == len(history)


def test_a_frozen_opportunity_is_not_moved(bot: Chat):
    with bot.rt.db.transaction() as s:
        s.scalar(select(Opportunity)).frozen = True
    start = datetime.now(SH) - timedelta(days=1)
    post_event(bot, event("91330100716105852F", "trial_requested", start))
    for i in range(4):
        post_event(bot, event("91330100716105852F", "login", start + timedelta(hours=i + 1)))
    settle(bot)
    assert opp(bot).stage == "demo" and bot.cards("wangwu") == []


def test_manager_can_revert_an_automatic_move_from_the_card(bot: Chat):
    start = datetime.now(SH) - timedelta(days=1)
    post_event(bot, event("91330100716105852F", "trial_requested", start))
    for i in range(3):
        post_event(bot, event("91330100716105852F", "login", start + timedelta(hours=i + 1)))
    settle(bot)
    card = bot.cards("wangwu")[0]
    assert "无权" in bot.click("zhangsan", card.task_id, "revert").text
    assert opp(bot).stage == "solution_confirmed"
    assert bot.click("wangwu", card.task_id, "revert").reply["ReplaceName"] == "已退回"
    assert opp(bot).stage == "demo"
    settle(bot)
    assert opp(bot).stage == "demo"  # the rule does not fire again for the same move


def test_admin_rule_fires_invalid_rules_are_refused_with_the_position_and_reps_cannot_add(bot: Chat):
    added = bot.say("admin", "规则 新增 竞品对比 点击>=2 且 登录>=1 则 报价谈判")
    assert "已添加规则" in added and "竞品对比 点击>=2 且 登录>=1 则 报价谈判" in added
    bad = bot.say("admin", "规则 新增 登录>=abc 则 报价谈判")
    assert "第 5 个字" in bad
    assert "仅限管理员" in bot.say("zhangsan", "规则 新增 登录>=1 则 报价谈判")
    listed = bot.say("admin", "规则 列表")
    assert "申请试用>=1 且 申请试用后登录>=3 则 方案确认" in listed and "则 报价谈判" in listed
    path = link(bot, "竞品对比")
    for _ in range(2):
        bot.app.test_client().get(path, headers={"User-Agent": PHONE_UA})
    post_event(bot, event("91330100716105852F", "login", datetime.now(SH)))
    settle(bot)
    assert opp(bot).stage == "negotiation"


def test_product_event_webhook_checks_signature_and_fields(bot: Chat):
    now = datetime.now(SH)
    assert post_event(bot, event("91330100716105852F", "login", now), sign=False).status_code == 401
    assert post_event(bot, event("91330100716105852F", "login", now), secret="wrong").status_code == 401
    resp = post_event(bot, "{not json")
    assert resp.status_code == 400 and resp.json["field"] == "body"
    missing_type = event("91330100716105852F", "login", now)
    del missing_type["type"]
    assert post_event(bot, missing_type).json["field"] == "type"
    naive = event("91330100716105852F", "login", now)
    naive["occurred_at"] = "2026-11-28 10:00:00"
    assert post_event(bot, naive).json["field"] == "occurred_at"
    assert post_event(bot, event("NOPE", "login", now)).json["field"] == "customer"
    assert clicks(bot, "login") == 0
    assert post_event(bot, event("91330100716105852F", "login", now, "x1")).status_code == 202
    assert post_event(bot, event("91330100716105852F", "login", now, "x1")).json == {"status": "duplicate"}
    assert clicks(bot, "login") == 1


def test_hot_product_event_reminds_the_owner(bot: Chat):
    post_event(bot, event("91330100716105852F", "trial_requested", datetime.now(SH)))
    settle(bot)
    assert any("客户刚申请了试用" in m.body.get("content", "") for m in bot.inbox("zhangsan"))


def test_profile_shows_the_behaviour_trail(bot: Chat):
    bot.app.test_client().get(link(bot, "竞品对比"), headers={"User-Agent": PHONE_UA})
    post_event(bot, event("91330100716105852F", "login", datetime.now(SH)))
    settle(bot)
    profile = bot.say("zhangsan", "客户 杭州云栖")
    assert "客户行为" in profile and "打开了《竞品对比白皮书》" in profile and "登录产品" in profile


def test_library_management_is_for_admins(bot: Chat):
    assert "仅限管理员" in bot.say("zhangsan", "资料 新增 报价单 https://x.example/p.pdf 报价")
    assert "不是有效的" in bot.say("admin", "资料 新增 报价单 javascript:alert(1) 报价")
    assert "不认识的类别" in bot.say("admin", "资料 新增 报价单 https://x.example/p.pdf 价目")
    assert "《竞品对比白皮书》" in bot.say("zhangsan", "资料 列表")
