"""Issue 5: the funnel heatmap (weekly push and 漏斗) and the talk-track coach, through the chat."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from domain.funnel import previous_week
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.sales import Opportunity, StageChange
from tests.harness import Chat


def _backdate(chat: Chat, customer_prefix: str, stage: str, days_ago: float) -> None:
    """Make the opportunity of a customer sit in ``stage`` since ``days_ago`` days before last week's end."""
    start, end = previous_week(datetime.now(chat.rt.config.tz), chat.rt.config.tz)
    with chat.rt.db.transaction() as s:
        for opp in s.scalars(select(Opportunity)):
            from storage.sales import Customer

            if s.get(Customer, opp.customer_id).name.startswith(customer_prefix):
                for ch in s.scalars(select(StageChange).where(StageChange.opportunity_id == opp.id)):
                    s.delete(ch)
                s.flush()
                s.add(StageChange(opportunity_id=opp.id, from_stage=None, to_stage=stage,
                                  at=end - timedelta(days=days_ago), actor="zhangsan"))
                opp.stage = stage


def test_weekly_heatmap_goes_to_the_manager_once_with_the_overtime_cells(chat: Chat, company):
    chat.say("zhangsan", "新客户 甲公司有限公司")
    chat.say("zhangsan", "新商机 甲公司 10万")
    chat.say("lisi", "新客户 乙公司有限公司")
    chat.say("lisi", "新商机 乙公司 10万")
    _backdate(chat, "甲", "demo", 20)       # 20 d in 方案演示 (SLA 10) → ratio 2.0
    _backdate(chat, "乙", "diagnosis", 3)   # 3 d in 需求诊断 (SLA 7) → fine
    assert run_job(chat.rt, load_jobs()["funnel_heatmap"], "w1") == "heatmaps sent to 1 managers"
    chat.deliver()
    inbox = chat.inbox("wangwu")
    assert [m.msgtype for m in inbox] == ["image", "text"]
    text = inbox[1].body["content"]
    assert "1. " in text and "张三" in text and "方案演示" in text and "2. " not in text
    assert chat.wecom.media[inbox[0].body["media_id"]][1].startswith(b"\x89PNG")
    assert run_job(chat.rt, load_jobs()["funnel_heatmap"], "w2") == "heatmaps sent to 0 managers"


def test_funnel_on_demand_for_managers_only(chat: Chat, company):
    chat.say("zhangsan", "新客户 甲公司有限公司")
    chat.say("zhangsan", "新商机 甲公司 10万")
    assert "仅限销售主管" in chat.say("zhangsan", "漏斗")
    chat.say("wangwu", "漏斗 本周")
    kinds = [m.msgtype for m in chat.inbox("wangwu")]
    assert kinds[-2:] == ["image", "text"]


def test_coach_for_a_medical_customer_in_demo_gives_three_distinct_tracks_industry_first(chat: Chat, company):
    for cmd in (
        "话术库 新增 设备停机成本 | 先和科室主任一起算清设备停机一天的损失，再谈我们的维保响应 行业 医疗器械 阶段 方案演示",
        "话术库 新增 通用开场 | 感谢您抽出时间，我们先回顾一下上次沟通的三个重点问题",
        "话术库 新增 制造业产能 | 以产线节拍为切入点，展示排产优化带来的产能提升 行业 制造业",
        "话术库 新增 演示收尾 | 演示结束时请客户指出最关心的两个功能，约定试用范围 阶段 方案演示",
    ):
        assert "已加入话术库" in chat.say("admin", cmd)
    chat.say("zhangsan", "新客户 华康医疗器械有限公司 行业 医疗器械")
    chat.say("zhangsan", "新商机 华康 30万 方案演示")
    reply = chat.say("zhangsan", "话术 华康")
    tracks = [line for line in reply.splitlines() if line.startswith("**")]
    assert len(tracks) == 3 and len(set(tracks)) == 3
    assert "设备停机" in tracks[0]
    assert "来源：话术库《设备停机成本》" in reply


def test_a_logged_visit_is_followed_by_talk_track_suggestions(chat: Chat, company):
    chat.say("admin", "话术库 新增 设备停机成本 | 先和科室主任一起算清设备停机一天的损失 行业 医疗器械")
    chat.say("zhangsan", "新客户 华康医疗器械有限公司 行业 医疗器械")
    chat.say("zhangsan", "拜访 华康 痛点:设备经常停机影响手术排期 预算:待确认 下一步:提交维保方案")
    assert any("话术建议" in m.body.get("content", "") for m in chat.inbox("zhangsan"))
