"""Issue 7's worked example (November 2026, rep 李四) through the chat, the webhook, the bank and the jobs."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import create_app
from integrations.bank import Line
from jobs.bank import ingest, match_pending
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.incentives import BonusLedgerRow, MonthlyScore, PointsLedgerRow
from storage.pipeline import record_move
from storage.sales import Customer, Evidence, Opportunity, Visit
from tests.harness import Chat, Clock

SH = ZoneInfo("Asia/Shanghai")
SECRET = "hook"


@pytest.fixture
def bot(make_runtime, wecom, company, monkeypatch):
    rt = make_runtime(hooks__product_events_secret=SECRET)
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.clock = Clock(monkeypatch, rt)
    chat.clock.set("2026-11-28")
    return chat


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=SH)


def job(chat: Chat, name: str) -> str | None:
    out = run_job(chat.rt, load_jobs()[name], f"{name}-{uuid.uuid4().hex}")
    chat.deliver()
    return out


def customer(chat: Chat, owner: str, name: str, health: str | None = None) -> int:
    chat.say(owner, f"新客户 {name}")
    with chat.rt.db.transaction() as s:
        c = s.scalar(select(Customer).where(Customer.name == name))
        if health is not None:
            c.health_score = Decimal(health)
        return c.id


def won_deal(chat: Chat, cid: int, owner: str, kind: str, amount: str, day: str) -> None:
    with chat.rt.db.transaction() as s:
        opp = Opportunity(customer_id=cid, owner_userid=owner, amount=Decimal(amount), kind=kind, stage="negotiation",
                          stage_entered_at=at("2026-10-01"), signed_amount=Decimal(amount))
        s.add(opp)
        s.flush()
        record_move(s, opp, "won", at(day), actor=owner)


def seed_lisi_november(chat: Chat) -> dict[str, int]:
    """Visits 10/8/6/8 a week, 4 opportunities entering 需求诊断 (3 with reports), four won deals."""
    ids = {"new": customer(chat, "lisi", "新签客户有限公司"),
           "r55": customer(chat, "lisi", "续费五五有限公司", "55"),
           "r80": customer(chat, "lisi", "续费八零有限公司", "80"),
           "up": customer(chat, "lisi", "增购客户有限公司")}
    with chat.rt.db.transaction() as s:
        for monday, n in (("2026-11-02", 10), ("2026-11-09", 8), ("2026-11-16", 6), ("2026-11-23", 8)):
            for i in range(n):
                day = date.fromisoformat(monday) + timedelta(days=i % 5)
                s.add(Visit(customer_id=ids["new"], rep_userid="lisi", pain_point="x" * 12, budget="已明确",
                            next_step="y", quality=True, status="done", created_at=at(day.isoformat()),
                            completed_at=at(day.isoformat())))
        for i in range(4):
            opp = Opportunity(customer_id=ids["new"], owner_userid="lisi", amount=Decimal("10000"), kind="new",
                              stage="lead", stage_entered_at=at("2026-10-20"))
            s.add(opp)
            s.flush()
            record_move(s, opp, "diagnosis", at(f"2026-11-{5 + i:02d}"), actor="lisi")
            if i < 3:
                s.add(Evidence(opportunity_id=opp.id, item="report", text="诊断报告内容齐全", by_userid="lisi"))
    won_deal(chat, ids["new"], "lisi", "new", "80000", "2026-11-20")
    won_deal(chat, ids["r55"], "lisi", "renewal", "40000", "2026-11-21")
    won_deal(chat, ids["r80"], "lisi", "renewal", "10000", "2026-11-22")
    won_deal(chat, ids["up"], "lisi", "upsell", "20000", "2026-11-23")
    assert "已设置 李四 2026-11 的目标" in chat.say("admin", "目标 lisi 2026-11 新签 100000 续费 50000 增购 50000")
    return ids


def test_dual_track_month_close_reproduces_the_worked_example(bot: Chat):
    seed_lisi_november(bot)
    bot.clock.set("2026-12-01")
    assert job(bot, "incentive_close").startswith("2026-11:")
    with bot.rt.db.sessions() as s:
        row = s.scalar(select(MonthlyScore).where(MonthlyScore.userid == "lisi", MonthlyScore.month == "2026-11"))
    assert (row.process, row.result, row.total) == (Decimal("87.50"), Decimal("73.87"), Decimal("82.05"))
    assert row.attained == Decimal("138000.00")  # 80,000 + 38,000 (renewal′) + 20,000


def test_my_board_shows_rank_kpi_progress_points_and_bonus(bot: Chat):
    seed_lisi_november(bot)
    board = bot.say("lisi", "我的看板")
    assert "82.05" in board  # month to date on 11-28 equals the month here
    assert "团队排名 第1名（共1人）" in board  # 张三 and 赵六 have no target: not ranked
    assert "新签 ¥80,000 / ¥100,000（80%）" in board
    kinds = [m.msgtype for m in bot.inbox("lisi")]
    assert "image" in kinds
    team = bot.say("wangwu", "团队看板")
    assert "李四" in team and "82.05" in team
    assert "仅限销售主管" in bot.say("lisi", "团队看板")


def _signed_event(chat: Chat, body: dict):
    raw = json.dumps(body).encode()
    sig = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return chat.app.test_client().post("/hooks/product-events", data=raw, content_type="application/json",
                                       headers={"X-Salesbot-Signature": sig})


def test_health_score_from_product_events_receivables_and_visits_is_76_15_yellow(bot: Chat):
    cid = customer(bot, "zhangsan", "健康测试有限公司")
    events = []
    for i, score in enumerate([10, 10, 9, 9, 10, 9, 8, 7, 3, 5]):  # 60% promoters − 20% detractors = NPS 40
        events.append(("nps", {"score": score}, 20 + i))
    events += [("login", {}, d) for d in range(1, 28, 28 // 12)][:12]  # 12 logins in 28 days = 3 a week
    events += [("ticket_opened", {}, 30 + i) for i in range(10)] + [("ticket_resolved", {}, 30 + i) for i in range(9)]
    events += [("feature_used", {"feature": f"f{i}", "licensed_features": 10}, 2 + i) for i in range(5)]
    now = datetime(2026, 11, 28, 9, tzinfo=SH)
    for kind, data, days_ago in events:
        assert _signed_event(bot, {"id": uuid.uuid4().hex, "customer": cid, "type": kind, "data": data,
                                   "occurred_at": (now - timedelta(days=days_ago)).isoformat()}).status_code == 202
    bot.say("zhangsan", f"合同 #{cid} HT-H-0001 10000 分期 10000@2026-11-10")
    with bot.rt.db.transaction() as s:
        from storage.payments import Receivable

        s.scalar(select(Receivable)).paid_on = date(2026, 11, 9)  # paid before its due date
        s.scalar(select(Receivable)).outstanding = Decimal("0")
        s.get(Customer, cid).last_contact_at = now - timedelta(days=10)
    job(bot, "customer_events")
    assert job(bot, "health_scores").endswith("customers scored")
    with bot.rt.db.sessions() as s:
        c = s.get(Customer, cid)
        assert (c.health_score, c.health_band, c.licensed_features) == (Decimal("76.15"), "yellow", 10)
    assert "76.15 分（黄）" in bot.say("zhangsan", "客户 健康测试")


def test_bonus_credited_once_per_payment_and_announced_then_clawed_back(bot: Chat):
    new_id = customer(bot, "lisi", "新签客户有限公司")
    r55 = customer(bot, "lisi", "续费五五有限公司", "55")
    bot.say("lisi", f"合同 #{new_id} HT-N-0001 100000 新签")
    bot.say("lisi", f"合同 #{r55} HT-R-0001 40000 续费")
    lines = [Line("6222", "B1", date(2026, 11, 27), Decimal("100000.00"), "新签客户有限公司", "HT-N-0001"),
             Line("6222", "B2", date(2026, 11, 27), Decimal("40000.00"), "续费五五有限公司", "HT-R-0001")]
    ingest(bot.rt, lines, "import")
    assert match_pending(bot.rt)["matched"] == 2
    ingest(bot.rt, lines, "import")  # the same lines again
    match_pending(bot.rt)
    assert job(bot, "bonus") == "0 bonus entries"
    with bot.rt.db.sessions() as s:
        amounts = sorted(r.amount for r in s.scalars(select(BonusLedgerRow)))
    assert amounts == [Decimal("840.00"), Decimal("3000.00")]
    told = [m.body.get("content", "") for m in bot.inbox("lisi")]
    assert "恭喜！您促成的新签客户有限公司客户完成新签，奖金¥3,000已发放" in told
    assert any("续费五五有限公司" in t and "¥840" in t for t in told)
    assert "仅限财务" in bot.say("lisi", "冲销 6222 B1")
    assert "已冲销" in bot.say("qianqi", "冲销 6222 B1")
    with bot.rt.db.sessions() as s:
        rows = {(r.kind, r.amount) for r in s.scalars(select(BonusLedgerRow))}
    assert ("clawback", Decimal("-3000.00")) in rows
    assert any("已扣回" in m.body.get("content", "") for m in bot.inbox("lisi"))


def test_collaboration_confirmed_twice_credits_two_points_once_and_redemption_never_goes_negative(bot: Chat):
    assert bot.say("lisi", "积分") == ("协作积分：0 分，还没有积分记录。发送「协同 <客户> <需要什么>」请客户成功协同，"
                                      "对方确认后您得 2 分。")
    customer(bot, "lisi", "协同客户有限公司")
    assert "已请客户成功 孙八" in bot.say("lisi", "协同 协同客户 需要协助上线培训")
    card = bot.cards("sunba")[-1]
    assert "无权" in bot.click("lisi", card.task_id, "confirm").text
    bot.click("sunba", card.task_id, "confirm")
    bot.click("sunba", card.task_id, "confirm")
    with bot.rt.db.sessions() as s:
        assert [r.delta for r in s.scalars(select(PointsLedgerRow))] == [2]
    assert "协作积分：2 分" in bot.say("lisi", "积分")
    bot.say("admin", "兑换项 新增 咖啡券 10")
    bot.say("admin", "兑换项 新增 贴纸 2")
    refused = bot.say("lisi", "兑换 咖啡券")
    assert "10" in refused and "2" in refused
    assert "剩余 0 分" in bot.say("lisi", "兑换 贴纸")
    assert "贴纸" in bot.say("lisi", "兑换 贴纸") and "协作积分：0 分" in bot.say("lisi", "积分")


def test_new_hire_three_months_below_protected_target_alerts_the_manager_once(bot: Chat):
    for month in ("2026-08", "2026-09", "2026-10", "2026-11"):
        for who in ("zhangsan", "zhaoliu"):
            bot.say("admin", f"目标 {who} {month} 新签 100000 续费 50000 增购 50000")
    # 李四 (hired 2026-08-15) signs nothing in September, October, November
    bot.clock.set("2026-12-02")
    assert job(bot, "newhire_check") == "1 alerts"
    alert = [m.body["content"] for m in bot.inbox("wangwu") if "新人保护" in m.body.get("content", "")]
    assert len(alert) == 1 and "李四" in alert[0] and "¥160,000" in alert[0]
    assert job(bot, "newhire_check") == "0 alerts"


def test_a_target_can_name_only_some_tracks_and_the_others_keep_their_value(bot: Chat):
    assert bot.say("admin", "目标 lisi 2026-12 新签 10万") == (
        "已设置 李四 2026-12 的目标：新签 ¥100,000.00｜续费 ¥0.00｜增购 ¥0.00。")
    assert bot.say("admin", "目标 lisi 2026-12 增购 2万 续费 50000") == (
        "已设置 李四 2026-12 的目标：新签 ¥100,000.00｜续费 ¥50,000.00｜增购 ¥20,000.00。")
    for bad in ("目标 lisi 2026-12", "目标 lisi 2026-12 新签 1万 新签 2万", "目标 lisi 2026-12 奖金 1万",
                "目标 lisi 2026-12 新签"):
        assert bot.say("admin", bad).startswith("用法：目标 <成员> <YYYY-MM>"), bad


def test_redeem_alone_lists_the_catalogue_and_a_command_without_its_customer_shows_its_own_example(bot: Chat):
    assert bot.say("lisi", "兑换") == "目前还没有可兑换的项目，请联系管理员用「兑换项 新增」添加。"
    bot.say("admin", "兑换项 新增 咖啡券 10")
    bot.say("admin", "兑换项 新增 贴纸 2")
    assert bot.say("lisi", "兑换") == "可兑换：贴纸（2 分）、咖啡券（10 分）。发送「兑换 <名称>」兑换，例如：兑换 贴纸"
    assert bot.say("lisi", "话术") == "请说明是哪位客户，例如：话术 杭州云栖"
