"""Parsing what wechatpy 1.8.18 lacks, on the samples of PROTOCOL.md §2 and §5."""

from __future__ import annotations

import pytest

from bot.crypto import CallbackRejected
from bot.inbound import parse_inbound

CARD_EVENT = """<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[key111]]></EventKey>
<TaskId><![CDATA[taskid111]]></TaskId><CardType><![CDATA[text_notice]]></CardType>
<ResponseCode><![CDATA[ResponseCode]]></ResponseCode><AgentID>1</AgentID>
<SelectedItems>
  <SelectedItem><QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>
    <OptionIds><OptionId><![CDATA[OptionId1]]></OptionId><OptionId><![CDATA[OptionId2]]></OptionId></OptionIds></SelectedItem>
  <SelectedItem><QuestionKey><![CDATA[QuestionKey2]]></QuestionKey>
    <OptionIds><OptionId><![CDATA[OptionId3]]></OptionId><OptionId><![CDATA[OptionId4]]></OptionId></OptionIds></SelectedItem>
</SelectedItems></xml>"""

EXTERNAL = """<xml><ToUserName>corp</ToUserName><FromUserName>sys</FromUserName><CreateTime>1403610513</CreateTime>
<MsgType>event</MsgType><Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType>
<UserID>zhangsan</UserID><ExternalUserID>woAJ2GCAAAXtWyujaWJHDDGi0mAAAA</ExternalUserID>
<State>teststate</State><WelcomeCode>WELCOMECODE</WelcomeCode></xml>"""


def test_template_card_event_with_selected_items():
    msg = parse_inbound(CARD_EVENT)
    assert msg.is_card_click
    assert (msg.event_key, msg.task_id, msg.card_type, msg.response_code) == (
        "key111", "taskid111", "text_notice", "ResponseCode")
    assert msg.selected_items == {"QuestionKey1": ["OptionId1", "OptionId2"], "QuestionKey2": ["OptionId3", "OptionId4"]}
    assert msg.callback_key.startswith("evt:FromUser:123456789:template_card_event:key111:taskid111")


def test_template_card_menu_event():
    menu = CARD_EVENT.replace("template_card_event", "template_card_menu_event")
    msg = parse_inbound(menu)
    assert msg.event == "template_card_menu_event" and not msg.is_card_click
    assert msg.task_id == "taskid111" and msg.selected_items == {}


def test_change_external_contact():
    msg = parse_inbound(EXTERNAL)
    assert (msg.event, msg.change_type, msg.user_id, msg.external_userid, msg.state, msg.welcome_code) == (
        "change_external_contact", "add_external_contact", "zhangsan", "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA",
        "teststate", "WELCOMECODE")


@pytest.mark.parametrize("xml", ["<xml><MsgType>text</MsgType></xml>", "<notxml/>", "<xml><FromUserName>a</FromUserName>"
                                 "<MsgType>text</MsgType><CreateTime>soon</CreateTime></xml>"])
def test_incomplete_messages_are_refused(xml):
    with pytest.raises(CallbackRejected):
        parse_inbound(xml)
