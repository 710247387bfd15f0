"""Admins manage the team by chat; every change is audited; others are refused with the reason."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bot.app import create_app
from storage.models import AuditEntry, Member
from tests.harness import Chat


def member(rt, userid: str) -> Member:
    with rt.db.sessions() as s:
        m = s.scalar(select(Member).where(Member.userid == userid))
        assert m is not None
        return m


def test_admin_sets_roles_region_hire_date_and_name(chat: Chat, rt, company):
    assert "销售代表、销售主管" in chat.say("admin", "角色 zhangsan 销售代表 销售主管")
    assert "华南" in chat.say("admin", "区域 张三 华南")
    assert "2024-05-20" in chat.say("admin", "入职 zhangsan 2024年5月20日")
    assert "张小三" in chat.say("admin", "姓名 zhangsan 张小三")
    m = member(rt, "zhangsan")
    assert m.roles == ["rep", "manager"]
    assert m.region == "华南"
    assert m.hire_date == date(2024, 5, 20)
    assert m.name == "张小三"
    with rt.db.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["set_roles", "set_region", "set_hire_date", "set_name"]


def test_audit_shows_the_latest_entries(chat: Chat, company):
    chat.say("admin", "区域 zhangsan 华南")
    chat.say("admin", "区域 lisi 华北")
    shown = chat.say("admin", "审计 1")
    assert "最近 1 条" in shown and "lisi" in shown and "zhangsan" not in shown


def test_a_rep_cannot_use_admin_commands_and_is_told_why(chat: Chat, rt, company):
    reply = chat.say("zhangsan", "角色 lisi 管理员")
    assert "仅限管理员使用" in reply and "销售代表" in reply
    assert member(rt, "lisi").roles == ["rep"]


def test_bad_input_gets_a_clear_reply(chat: Chat, company):
    assert "用法" in chat.say("admin", "角色 zhangsan")
    assert "不认识的角色「老板」" in chat.say("admin", "角色 zhangsan 老板")
    assert "找不到成员「nobody」" in chat.say("admin", "区域 nobody 华东")
    assert "没有看懂日期「明年」" in chat.say("admin", "入职 zhangsan 明年")
    assert "循环" in chat.say("admin", "主管 wangwu zhangsan")
    assert "最后一位管理员" in chat.say("admin", "角色 admin 销售代表")


def test_manager_assignment_is_confirmed_or_rejected_by_the_manager(chat: Chat, rt, company):
    chat.say("admin", "主管 zhoujiu wangwu")
    assert member(rt, "zhoujiu").manager_userid == "wangwu"
    card = chat.cards("wangwu")[-1]
    assert card.body["main_title"]["title"] == "团队成员确认"
    reply = chat.click("wangwu", card.task_id, "reject")
    assert reply.reply["ReplaceName"] == "已退回"
    assert member(rt, "zhoujiu").manager_userid is None
    chat.deliver()
    assert any("不是其下属" in m.body.get("content", "") for m in chat.inbox("admin"))
    # clicking again does nothing more
    again = chat.click("wangwu", card.task_id, "confirm")
    assert "已由王五于" in again.text and "处理" in again.text
    assert member(rt, "zhoujiu").manager_userid is None


def test_a_stranger_triggers_an_access_request_and_an_admin_grants_a_role(chat: Chat, rt, company, wecom):
    wecom.add_member("newbie", "新人")
    first = chat.say("newbie", "你好")
    assert "还没有开通角色" in first
    card = chat.cards("admin")[-1]
    assert "newbie" in card.body["main_title"]["desc"]
    chat.send("newbie", "在吗")  # a second message does not send a second request
    chat.deliver()
    assert len(chat.cards("admin")) == 1
    reply = chat.click("admin", card.task_id, "grant:rep")
    assert reply.reply["ReplaceName"] == "已设为销售代表"
    assert member(rt, "newbie").roles == ["rep"]
    chat.deliver()
    assert "开通角色：销售代表" in chat.inbox("newbie")[-1].body["content"]


def test_bootstrap_admin_from_config_gets_the_admin_role(chat: Chat, rt, wecom):
    wecom.add_member("admin", "赵管理")
    assert "角色 zhangsan 销售代表" in chat.say("admin", "帮助")
    assert member(rt, "admin").roles == ["admin"]


def test_new_member_dialog_continues_on_a_second_instance(chat: Chat, make_runtime, wecom, company):
    """A dialog started on one app instance continues on another sharing Redis and the database."""
    assert "userid" in chat.say("admin", "新成员")
    rt2 = make_runtime()
    other = Chat(create_app(runtime=rt2), rt2, wecom)
    assert "请发送姓名" in other.say("admin", "xiaoming")
    assert "请发送角色" in chat.say("admin", "小明")
    assert "不认识的角色" in other.say("admin", "老板")  # a wrong answer keeps the step
    assert "主管" in other.say("admin", "销售代表")
    assert "区域" in chat.say("admin", "王五")
    assert "入职日期" in other.say("admin", "华东")
    done = chat.say("admin", "2026-11-02")
    assert "已登记新成员" in done and "小明（xiaoming）" in done and "主管：王五" in done
    m = member(rt2, "xiaoming")
    assert (m.roles, m.manager_userid, m.region, m.hire_date) == (["rep"], "wangwu", "华东", date(2026, 11, 2))


def test_cancel_leaves_the_dialog_and_saves_nothing(chat: Chat, rt, company):
    chat.say("admin", "新成员")
    chat.say("admin", "xiaohong")
    assert "已取消「登记新成员」" in chat.say("admin", "取消")
    assert "没有听懂" in chat.say("admin", "小红")  # no longer inside the dialog
    with rt.db.sessions() as s:
        assert s.scalar(select(Member).where(Member.userid == "xiaohong")) is None
    assert "没有进行中的对话" in chat.say("admin", "取消")


def test_hire_dates_without_a_year_are_this_years_and_relative_ones_are_understood(chat: Chat, rt, company,
                                                                                    monkeypatch):
    from tests.harness import Clock

    Clock(monkeypatch, rt).set("2026-11-28")  # a Saturday
    assert "2026-08-15" in chat.say("admin", "入职 zhangsan 08-15")  # not August next year
    assert member(rt, "zhangsan").hire_date == date(2026, 8, 15)
    chat.say("admin", "新成员")
    # the member-field commands inside this dialog are its answers, their word dropped (区域 华南 → 华南)
    for answer in ("wangxiao", "姓名 王小", "角色 销售代表", "主管 wangwu", "区域 华南"):
        assert not chat.say("admin", answer).startswith("已结束"), answer
    assert "王小" in chat.say("admin", "入职 下周一")
    m = member(rt, "wangxiao")
    assert (m.name, m.roles, m.manager_userid, m.region, m.hire_date) == (
        "王小", ["rep"], "wangwu", "华南", date(2026, 11, 30))
