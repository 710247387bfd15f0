"""The demo company's seed: idempotent, valid master data, every stage, and what the bot shows for it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.emulator.seed import DEMO_CUSTOMERS, DEMO_MEMBERS, seed_demo
from bot.runtime import Runtime
from domain.credit_code import normalise_credit_code
from domain.names import normalise_company_name
from domain.stages import DEFAULT_PIPELINE
from storage.all_models import behaviour, incentives, models, payments, sales
from storage.sales import Customer, Opportunity, StageChange
from tests.harness import Chat

TABLES = (models.Member, sales.Customer, sales.Contact, sales.Opportunity, sales.StageChange, sales.Evidence,
          sales.Visit, sales.Attachment, sales.Blob, payments.Contract, payments.Receivable, payments.Promise,
          payments.BankLine, payments.Allocation, payments.CreditRating, behaviour.LinkItem, behaviour.TalkTrack,
          incentives.Target, incentives.RedemptionItem)


def counts(rt: Runtime) -> dict[str, int]:
    with rt.db.transaction() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


def test_seeding_twice_adds_nothing_the_second_time(rt: Runtime) -> None:
    with rt.db.transaction() as s:
        first = seed_demo(s)
    after_first = counts(rt)
    with rt.db.transaction() as s:
        second = seed_demo(s)
    assert after_first == counts(rt)
    assert not any(second.values()), second
    assert first["members"] == len(DEMO_MEMBERS) and first["customers"] == len(DEMO_CUSTOMERS) == 12
    assert all(first[k] >= 2 for k in ("contacts", "visits", "contracts", "promises", "credit ratings"))
    assert first["links"] == 5 and 6 <= first["talk tracks"] <= 8
    assert first["targets"] == 3 and 2 <= first["redemption items"] <= 3


def test_customers_are_valid_and_every_stage_has_a_deal(rt: Runtime) -> None:
    with rt.db.transaction() as s:
        seed_demo(s)
    with rt.db.transaction() as s:
        customers = list(s.scalars(select(Customer)))
        assert len(customers) == 12
        for c in customers:
            assert c.credit_code is not None and normalise_credit_code(c.credit_code) == c.credit_code
            assert c.name_key == normalise_company_name(c.name)
        assert {c.owner_userid for c in customers} == {m.userid for m in DEMO_MEMBERS if "rep" in m.roles}
        assert len({c.industry for c in customers}) >= 7 and len({c.region for c in customers}) >= 4
        opps = list(s.scalars(select(Opportunity)))
        assert {s.key for s in DEFAULT_PIPELINE} <= {o.stage for o in opps}
        assert {o.kind for o in opps} == {"new", "renewal", "upsell"}
        for o in opps:  # the history starts at 线索 and ends where the deal is
            history = list(s.scalars(select(StageChange).where(StageChange.opportunity_id == o.id)
                                     .order_by(StageChange.at)))
            assert history[0].from_stage is None and history[0].to_stage == "lead"
            assert history[-1].to_stage == o.stage and o.stage_entered_at == history[-1].at
            assert o.stage_entered_at.tzinfo is not None
        overdue = [r for r in s.scalars(select(payments.Receivable))
                   if r.collectible_on and r.outstanding > 0 and r.collectible_on < datetime.now(ZoneInfo("Asia/Shanghai")).date()]
        assert overdue
        assert any(0 < r.outstanding < r.amount for r in s.scalars(select(payments.Receivable)))


def test_the_bot_shows_the_demo_company(chat: Chat, rt: Runtime) -> None:
    """The demo members differ from the conftest company: WeCom must know them too."""
    with rt.db.transaction() as s:
        seed_demo(s)
    for m in DEMO_MEMBERS:
        chat.wecom.add_member(m.userid, m.name)
    mine = next(c for c in DEMO_CUSTOMERS if c.owner == "liuyang")
    profile = chat.say("liuyang", f"客户 {mine.name[:4]}")
    assert profile.startswith(f"【{mine.name}】（{mine.credit_code}）"), profile
    assert "负责人：刘洋" in profile and "高质量" in profile and "联系人：" in profile
    someone_elses = next(c for c in DEMO_CUSTOMERS if c.owner == "zhangmin")
    assert "不是您负责" in chat.say("liuyang", f"客户 {someone_elses.name[:4]}")

    funnel = chat.say("wanglei", "漏斗 本周")
    assert funnel.startswith("[image]") and "漏斗热力图" in funnel
    assert "刘洋·报价谈判" in funnel and "张敏·方案确认" in funnel  # deals past their SLA

    forecast = chat.say("wanglei", "回款预测")
    assert forecast.startswith("回款预测（销售口径"), forecast
    assert "A ¥180,000.00" in forecast and "B ¥90,000.00" in forecast


def test_health_check_on_the_demo_data_gives_twelve_items_and_a_radar_png(rt, chat):
    from bot.emulator.seed import seed_demo

    with rt.db.transaction() as s:
        seed_demo(s)
    from storage.models import Member

    with rt.db.sessions() as s:
        members = list(s.scalars(__import__("sqlalchemy").select(Member)))
    for m in members:
        chat.wecom.add_member(m.userid, m.name)
    manager = next(m for m in members if "manager" in (m.roles or []))
    chat.say(manager.userid, "体检")
    image, text = chat.inbox(manager.userid)[-2:]
    assert image.msgtype == "image" and chat.wecom.media[image.body["media_id"]][1].startswith(b"\x89PNG")
    from domain.healthcheck import HealthItem

    body = text.body["content"]
    numbered = [line for line in body.splitlines() if line[:3].rstrip(".、 ").isdigit()]
    assert len(numbered) == len(HealthItem) == 12
    assert sum("无数据" not in line for line in numbered) >= 8  # the demo data feeds most of the items
