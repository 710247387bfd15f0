"""Issue 8 through the chat: duplicates and merges, meeting notes, objections, the health check."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import responses
from sqlalchemy import func, select

from bot.app import create_app
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.copilot import MeetingNote, Reminder
from storage.models import AuditEntry, InboundMessage
from storage.sales import Contact, Customer, Opportunity, Visit
from tests.harness import Chat, Clock

SH = ZoneInfo("Asia/Shanghai")
LLM = "https://llm.test/v1/"


@pytest.fixture
def bot(make_runtime, wecom, company, monkeypatch):
    rt = make_runtime()
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.clock = Clock(monkeypatch, rt)
    chat.clock.set("2026-11-28")
    return chat


def test_duplicates_are_flagged_and_a_merge_moves_every_record_and_lists_conflicts(bot: Chat):
    bot.say("zhangsan", "新客户 阿里巴巴（中国）网络技术有限公司 电话 0571-88888888")
    bot.say("zhangsan", "新商机 阿里巴巴 20万")
    bot.say("zhangsan", "联系人 阿里巴巴 张总 CTO")
    bot.say("zhangsan", "拜访 阿里巴巴 痛点:数据中台建设需要统一口径 预算:已明确 下一步:演示")
    with bot.rt.db.transaction() as s:  # the same company, arrived through an import with other details
        other = Customer(name="阿里巴巴(中国)网络技术 有限公司", name_key="imported", owner_userid="lisi",
                         phone="0571-66666666", created_by="lisi", created_at=datetime(2026, 11, 20, tzinfo=SH))
        s.add(other)
        s.flush()
        s.add(Opportunity(customer_id=other.id, owner_userid="lisi", amount=1000, stage="lead"))
        s.add(Contact(customer_id=other.id, name="李经理"))
        other_id = other.id
    listed = bot.say("admin", "查重")
    assert "阿里巴巴（中国）网络技术有限公司" in listed and "阿里巴巴(中国)网络技术 有限公司" in listed
    with bot.rt.db.sessions() as s:
        first_id = s.scalar(select(Customer.id).where(Customer.owner_userid == "zhangsan"))

    def counts():
        with bot.rt.db.sessions() as s:
            return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Opportunity, Contact, Visit)}

    before = counts()
    preview = bot.say("admin", f"合并 #{first_id} #{other_id} 预览")
    assert "预览" in preview and "电话" in preview and "负责人" in preview
    with bot.rt.db.sessions() as s:
        assert s.get(Customer, other_id) is not None  # preview wrote nothing
    done = bot.say("admin", f"合并 #{first_id} #{other_id}")
    assert "已合并" in done and "0571-88888888" in done and "0571-66666666" in done
    assert counts() == before  # every record moved, none lost
    with bot.rt.db.sessions() as s:
        remaining = list(s.scalars(select(Customer)))
        assert [c.id for c in remaining] == [other_id]  # the one recorded earlier is kept
        assert s.scalar(select(func.count()).select_from(Opportunity).where(Opportunity.customer_id == other_id)) == 2
        assert s.scalar(select(func.count()).select_from(Visit).where(Visit.customer_id == other_id)) == 1
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "merge_customers"))
        assert {c["field"] for c in entry.detail["conflicts"]} == {"phone", "owner"}
    assert "仅限管理员" in bot.say("zhangsan", "查重")


NOTES = "王总下周三前提供采购预算；我们负责月底前出方案；客户担心实施周期太长"


def test_meeting_notes_give_two_dated_action_items_and_a_risk_and_remind_on_the_day(bot: Chat):
    bot.say("zhangsan", "新客户 杭州云栖科技有限公司")
    reply = bot.say("zhangsan", f"纪要 杭州云栖 {NOTES}")
    assert "提供采购预算" in reply and "2026-12-02" in reply
    assert "出方案" in reply and "2026-11-30" in reply
    assert "实施周期" in reply
    with bot.rt.db.sessions() as s:
        note = s.scalar(select(MeetingNote))
        assert note.extracted_by == "offline" and len(note.extraction["action_items"]) == 2
        assert sorted(r.due_on.isoformat() for r in s.scalars(select(Reminder))) == ["2026-11-30", "2026-12-02"]
    assert "会议纪要" in bot.say("zhangsan", "客户 杭州云栖")
    bot.clock.set("2026-11-30")
    assert run_job(bot.rt, load_jobs()["note_reminders"], uuid.uuid4().hex) == "1 reminders sent"
    bot.deliver()
    assert any("出方案" in m.body.get("content", "") for m in bot.inbox("zhangsan"))
    assert run_job(bot.rt, load_jobs()["note_reminders"], uuid.uuid4().hex) == "0 reminders sent"


def test_notes_in_a_dialog_use_the_model_when_configured_and_fall_back_when_it_fails(make_runtime, wecom, http,
                                                                                    company, monkeypatch):
    rt = make_runtime(integrations__llm__enabled=True, integrations__llm__base_url=LLM, integrations__llm__key="k")
    chat = Chat(create_app(runtime=rt), rt, wecom)
    Clock(monkeypatch, rt).set("2026-11-28")
    answer = {"action_items": [{"owner": "王总", "side": "customer", "what": "提供采购预算", "due": "2026-12-02"}],
              "risks": ["实施周期"], "next_steps": []}
    http.add(responses.POST, LLM + "chat/completions",
             json={"choices": [{"message": {"content": json.dumps(answer, ensure_ascii=False)}}]})
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    assert "请发送" in chat.say("zhangsan", "纪要 杭州云栖")
    chat.say("zhangsan", NOTES)
    http.replace(responses.POST, LLM + "chat/completions", body="not json")
    chat.say("zhangsan", f"纪要 杭州云栖 {NOTES}")
    with rt.db.sessions() as s:
        assert [n.extracted_by for n in s.scalars(select(MeetingNote).order_by(MeetingNote.id))] == ["model", "offline"]
    assert json.loads(http.calls[0].request.body)["messages"][1]["content"] == NOTES


def test_price_objection_gets_the_three_named_strategies_mentioning_the_competitor(bot: Chat):
    bot.say("zhangsan", "新客户 杭州云栖科技有限公司 行业 软件")
    bot.say("zhangsan", "新商机 杭州云栖 15万")
    reply = bot.say("zhangsan", "异议 杭州云栖 你们价格比XX家贵30%")
    assert "价格" in reply
    for name in ("成本拆解法", "价值量化法", "分期支付法"):
        assert name in reply
    assert reply.count("XX家") >= 2 and "¥150,000.00" in reply


def test_health_check_gives_twelve_items_a_radar_chart_and_the_weakest_three(bot: Chat):
    bot.say("zhangsan", "新客户 杭州云栖科技有限公司")
    bot.say("zhangsan", "新商机 杭州云栖 15万")
    bot.say("zhangsan", "拜访 杭州云栖 痛点:系统慢影响门店收银 预算:已明确 下一步:演示")
    bot.say("zhangsan", "回款承诺 杭州云栖 5万 2026-12-30")
    bot.say("zhangsan", "无")
    bot.say("wangwu", "体检")
    image, text = bot.inbox("wangwu")[-2:]
    assert image.msgtype == "image"
    assert bot.wecom.media[image.body["media_id"]][1].startswith(b"\x89PNG")
    body = text.body["content"]
    for label in ("拜访", "转化", "回款", "重复"):
        assert label in body
    assert "仅限销售主管" in bot.say("zhangsan", "体检")


def test_messages_about_a_customer_are_filed_under_it(bot: Chat):
    bot.say("zhangsan", "新客户 杭州云栖科技有限公司")
    bot.say("zhangsan", "客户 杭州云栖")
    with bot.rt.db.sessions() as s:
        filed = s.scalar(select(InboundMessage.customer_id).where(InboundMessage.content == "客户 杭州云栖"))
        assert filed == s.scalar(select(Customer.id))
