"""The WeCom callback as WeCom drives it: the official vector, bad input, retries, apologies."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import func, select

from bot.app import create_app
from bot.crypto import WeComCrypto
from bot.emulator import wire
from bot.router import COMMANDS, Command
from storage.models import InboundMessage, OutboxMessage, ProcessedCallback
from tests.conftest import AES_KEY, CORP_ID, TOKEN
from tests.harness import Chat

# PROTOCOL.md §1, the official vector
GET_QUERY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
POST_QUERY = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
              "nonce": "1372623149"}
POST_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPd"
    "vo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66"
    "wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7P"
    "F5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rU"
    "PA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZI"
    "s2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)


def archived(rt: Any) -> list[InboundMessage]:
    with rt.db.sessions() as s:
        return list(s.scalars(select(InboundMessage)))


def count(rt: Any, model: Any) -> int:
    with rt.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_official_get_vector_returns_plain_echostr(make_runtime):
    # the vector's timestamp is from 2014: the freshness window must not apply to it here
    rt = make_runtime(wecom__max_clock_skew_s=0)
    resp = create_app(runtime=rt).test_client().get("/wecom/callback", query_string=GET_QUERY)
    assert resp.status_code == 200
    assert resp.get_data() == b"1616140317555161061"
    assert resp.mimetype == "text/plain"


def test_official_post_vector_is_archived_once(make_runtime, wecom):
    rt = make_runtime(wecom__max_clock_skew_s=0)
    client = create_app(runtime=rt).test_client()
    for _ in range(2):  # WeCom's retry of the same MsgId
        resp = client.post("/wecom/callback", query_string=POST_QUERY, data=POST_BODY, content_type="text/xml")
        assert resp.status_code == 200
    rows = archived(rt)
    assert len(rows) == 1
    assert rows[0].from_user == "mycreate"
    assert rows[0].content == "hello"
    assert rows[0].msg_id == "4561255354251345929"


def test_stale_timestamp_is_refused_when_the_window_is_on(make_runtime):
    rt = make_runtime()  # default window 600 s; the vector is from 2014
    client = create_app(runtime=rt).test_client()
    assert client.get("/wecom/callback", query_string=GET_QUERY).status_code == 403
    resp = client.post("/wecom/callback", query_string=POST_QUERY, data=POST_BODY, content_type="text/xml")
    assert resp.status_code == 403
    assert count(rt, InboundMessage) == 0


def _then_good_request_still_served(chat: Chat) -> None:
    reply = chat.send("zhangsan", "帮助")
    assert reply.status == 200 and "帮助" in reply.text


def test_bad_signature_is_refused_and_nothing_stored(chat: Chat, rt, company):
    plaintext = wire.text_xml(CORP_ID, 1, "zhangsan", "帮助")
    resp = chat.post_xml(plaintext, msg_signature="0" * 40)
    assert resp.status_code == 403
    assert count(rt, InboundMessage) == 0 and count(rt, ProcessedCallback) == 0
    _then_good_request_still_served(chat)


def test_wrong_receive_id_is_refused(chat: Chat, rt, company):
    other = WeComCrypto(TOKEN, AES_KEY, "wwsomeothercorp")
    params, body = other.encrypt_callback(wire.text_xml(CORP_ID, 1, "zhangsan", "帮助"))
    resp = chat.app.test_client().post("/wecom/callback", query_string=params, data=body)
    assert resp.status_code == 403
    assert count(rt, InboundMessage) == 0
    _then_good_request_still_served(chat)


def test_oversized_body_is_refused(chat: Chat, rt, company):
    huge = "好" * 40000  # 120 kB of text, over the 64 kB limit
    resp = chat.post_xml(wire.text_xml(CORP_ID, 1, "zhangsan", huge))
    assert resp.status_code == 413
    assert count(rt, InboundMessage) == 0
    _then_good_request_still_served(chat)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>&lol3;</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""


def test_billion_laughs_outer_envelope_is_refused(chat: Chat, rt, company):
    resp = chat.app.test_client().post("/wecom/callback", query_string={"msg_signature": "x", "timestamp": "1",
                                                                        "nonce": "1"}, data=BILLION_LAUGHS)
    assert resp.status_code == 400
    assert count(rt, InboundMessage) == 0
    _then_good_request_still_served(chat)


def test_billion_laughs_inside_a_correctly_signed_payload_is_refused(chat: Chat, rt, company):
    resp = chat.post_xml(BILLION_LAUGHS)
    assert resp.status_code == 400
    assert count(rt, InboundMessage) == 0
    _then_good_request_still_served(chat)


def test_malformed_xml_is_refused(chat: Chat, rt, company):
    resp = chat.post_xml("<xml><FromUserName>zhangsan</FromUserName><MsgType>text")
    assert resp.status_code == 400
    resp = chat.app.test_client().post("/wecom/callback", query_string=POST_QUERY, data="not xml at all")
    assert resp.status_code == 400
    assert count(rt, InboundMessage) == 0
    _then_good_request_still_served(chat)


def test_same_msgid_three_times_concurrently_has_one_effect(chat: Chat, rt, company):
    plaintext = wire.text_xml(CORP_ID, 1, "admin", "区域 zhangsan 华南", msg_id="7001")
    results: list[Any] = []
    barrier = threading.Barrier(3)

    def post() -> None:
        barrier.wait()
        results.append(chat.post_xml(plaintext))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200, 200]
    replies = [r.get_data(as_text=True) for r in results if r.get_data(as_text=True)]
    assert len(replies) == 1  # one reply; the duplicates are answered with an empty 200
    assert count(rt, InboundMessage) == 1
    chat.deliver()
    from storage.models import AuditEntry

    assert count(rt, AuditEntry) == 1  # one effect


def test_duplicate_after_redis_forgot_is_still_caught_by_the_database(chat: Chat, rt, company):
    plaintext = wire.text_xml(CORP_ID, 1, "admin", "区域 zhangsan 华北", msg_id="7002")
    assert chat.post_xml(plaintext).get_data()
    rt.redis.flushdb()  # Redis restarted and lost the fast-path keys
    resp = chat.post_xml(plaintext)
    assert resp.status_code == 200 and resp.get_data() == b""
    assert count(rt, InboundMessage) == 1


def test_event_dedup_key_uses_user_time_event_key_and_task():
    from bot.inbound import parse_inbound

    a = parse_inbound(wire.card_click_xml(CORP_ID, 1, "wangwu", "task-1", "confirm", "button_interaction",
                                          "rc", create_time=1700000000))
    b = parse_inbound(wire.card_click_xml(CORP_ID, 1, "wangwu", "task-2", "confirm", "button_interaction",
                                          "rc", create_time=1700000000))
    assert a.callback_key != b.callback_key
    assert a.callback_key.startswith("evt:wangwu:1700000000:template_card_event:confirm:task-1")


def test_a_handler_that_raises_gets_an_apology_and_wecom_gets_200(chat: Chat, rt, company, caplog):
    def boom(ctx: Any, args: str) -> None:
        ctx.audit("half-done", "x")
        raise RuntimeError("database exploded")

    COMMANDS.append(Command("boom", ("爆炸",), boom, None, "爆炸", "test"))
    try:
        reply = chat.send("zhangsan", "爆炸")
    finally:
        COMMANDS.pop()
    assert reply.status == 200
    assert "抱歉" in reply.text
    assert "database exploded" in caplog.text  # logged with context
    assert count(rt, InboundMessage) == 1  # the message is still archived
    from storage.models import AuditEntry

    assert count(rt, AuditEntry) == 0  # the half-done change rolled back


def test_slow_handler_answers_empty_in_time_and_replies_through_the_outbox(chat: Chat, make_runtime,
                                                                           wecom, company):
    rt = make_runtime(wecom__passive_reply_budget_s=0.2)
    slow_chat = Chat(create_app(runtime=rt), rt, wecom)

    def slow(ctx: Any, args: str) -> None:
        time.sleep(0.8)
        ctx.reply("慢慢算好了")

    COMMANDS.append(Command("slow", ("慢",), slow, None, "慢", "test"))
    try:
        started = time.monotonic()
        reply = slow_chat.send("zhangsan", "慢")
        answered_in = time.monotonic() - started
        assert reply.status == 200 and reply.reply is None
        assert answered_in < 0.8  # answered before the handler finished (WeCom waits 5 s at most)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and count(rt, OutboxMessage) == 0:
            time.sleep(0.05)
    finally:
        COMMANDS.pop()
    slow_chat.deliver()
    assert [m.body["content"] for m in wecom.inbox("zhangsan")] == ["慢慢算好了"]


def test_card_click_by_someone_else_is_refused_and_changes_nothing(chat: Chat, rt, company):
    chat.say("admin", "主管 zhaoliu wangwu")
    card = chat.cards("wangwu")[-1]
    reply = chat.click("zhangsan", card.task_id, "reject")
    assert "无权" in reply.text
    from storage.models import AuditEntry, Card, Member

    with rt.db.sessions() as s:
        assert s.scalar(select(Member.manager_userid).where(Member.userid == "zhaoliu")) == "wangwu"
        assert s.scalar(select(Card.status).where(Card.task_id == card.task_id)) == "open"
        refused = s.scalar(select(AuditEntry).where(AuditEntry.action == "card_click_refused"))
        assert refused is not None and refused.actor == "zhangsan"
    # the real addressee can still decide
    reply = chat.click("wangwu", card.task_id, "confirm")
    assert reply.reply == {**reply.reply, "MsgType": "update_button", "ReplaceName": "已确认"}


def test_unknown_text_gets_a_hint_not_silence(chat: Chat, company):
    assert "帮助" in chat.send("zhangsan", "今天天气不错").text
    assert "角色" in chat.send("admin", "角包 zhangsan 财务").text  # a typo → the close command


def test_image_without_a_dialog_is_acknowledged(chat: Chat, company):
    reply = chat.send_media("zhangsan", "image", b"\x89PNG fake image bytes", "a.png", "image/png")
    assert "图片" in reply.text


def test_healthz_reports_database_and_redis(app):
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok", "database": "ok", "redis": "ok"}
