"""The emulator's fake WeCom API, through its Flask blueprint: it refuses what WeCom refuses, and the
bot's real client reaches it over HTTP only because wecom.api_base_url points there."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from bot.app import create_app
from bot.emulator.hub import Emulator
from bot.emulator.live import LiveServer
from bot.emulator.seed import seed_members
from bot.outbox import Deliverer
from tests.conftest import AGENT_ID, CORP_ID, SECRET

BASE = "/dev/wecom/cgi-bin/"


@pytest.fixture
def emu_app(make_runtime: Any) -> Any:
    rt = make_runtime(dev__emulator=True)
    app = create_app(runtime=rt)
    emu: Emulator = app.extensions["salesbot.emulator"]
    emu.state.add_member("zhangsan", "张三")
    emu.state.add_member("lisi", "李四")
    return app


@pytest.fixture
def client(emu_app: Any) -> Any:
    return emu_app.test_client()


def token(client: Any) -> str:
    r = client.get(BASE + "gettoken", query_string={"corpid": CORP_ID, "corpsecret": SECRET})
    assert r.status_code == 200
    data = r.get_json()
    assert data["errcode"] == 0 and data["expires_in"] == 7200
    return str(data["access_token"])


def send(client: Any, access_token: str, payload: dict[str, Any]) -> dict[str, Any]:
    body = {"agentid": AGENT_ID, **payload}
    r = client.post(BASE + "message/send", query_string={"access_token": access_token},
                    data=json.dumps(body, ensure_ascii=False).encode(), content_type="application/json")
    assert r.status_code == 200
    return r.get_json()  # type: ignore[no-any-return]


def text(content: str, touser: str = "zhangsan") -> dict[str, Any]:
    return {"touser": touser, "msgtype": "text", "text": {"content": content}}


def button_card(task_id: Any = "team-1") -> dict[str, Any]:
    card: dict[str, Any] = {"card_type": "button_interaction", "main_title": {"title": "审批"},
                            "button_list": [{"text": "批准", "key": "approve", "style": 1}]}
    if task_id is not None:
        card["task_id"] = task_id
    return {"touser": "zhangsan", "msgtype": "template_card", "template_card": card}


# ---- validations, each ------------------------------------------------------------------------------

def test_gettoken_refuses_a_wrong_secret(client: Any) -> None:
    r = client.get(BASE + "gettoken", query_string={"corpid": CORP_ID, "corpsecret": "wrong"})
    assert r.get_json()["errcode"] == 40001


def test_bad_access_token_is_40014(client: Any) -> None:
    token(client)
    assert send(client, "not-a-token", text("你好"))["errcode"] == 40014
    assert send(client, "", text("你好"))["errcode"] == 40014


def test_expired_access_token_is_42001(client: Any, emu_app: Any) -> None:
    t = token(client)
    assert send(client, t, text("你好"))["errcode"] == 0
    emu_app.extensions["salesbot.emulator"].state.expire_tokens()
    assert send(client, t, text("你好"))["errcode"] == 42001
    assert send(client, token(client), text("你好"))["errcode"] == 0


@pytest.mark.parametrize("task_id", ["", "has space", "中文", "x" * 129, None])
def test_bad_task_id_is_42014(client: Any, task_id: Any) -> None:
    assert send(client, token(client), button_card(task_id))["errcode"] == 42014


def test_reused_task_id_is_42014(client: Any) -> None:
    t = token(client)
    assert send(client, t, button_card("visit_1-a@b"))["errcode"] == 0
    assert send(client, t, button_card("visit_1-a@b"))["errcode"] == 42014


@pytest.mark.parametrize("msgtype", ["text", "markdown"])
def test_content_over_2048_bytes_is_45002(client: Any, msgtype: str) -> None:
    t = token(client)
    fits = "汉" * 682  # 2046 bytes
    assert send(client, t, {"touser": "zhangsan", "msgtype": msgtype, msgtype: {"content": fits}})["errcode"] == 0
    over = "汉" * 683  # 2049 bytes
    assert send(client, t, {"touser": "zhangsan", "msgtype": msgtype, msgtype: {"content": over}})["errcode"] == 45002


def test_unknown_member_is_81013_and_partly_unknown_is_reported(client: Any) -> None:
    t = token(client)
    assert send(client, t, text("你好", "nobody"))["errcode"] == 81013
    partly = send(client, t, text("你好", "zhangsan|nobody"))
    assert partly["errcode"] == 0 and partly["invaliduser"] == "nobody"


def test_refused_send_is_shown_loudly_in_the_members_chat(client: Any, emu_app: Any) -> None:
    emu: Emulator = emu_app.extensions["salesbot.emulator"]
    send(client, token(client), text("汉" * 700))
    notices = [e for e in emu.events() if e["type"] == "notice"]
    assert notices and notices[-1]["user"] == "zhangsan" and "45002" in notices[-1]["text"]
    api_calls = [e for e in emu.events() if e["type"] == "wire" and e["kind"] == "api"]
    assert api_calls[-1]["errcode"] == 45002 and api_calls[-1]["user"] == "zhangsan"


# ---- the rest of the API ------------------------------------------------------------------------------

def test_media_upload_multipart_then_get_returns_the_bytes(client: Any) -> None:
    t = token(client)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    r = client.post(BASE + "media/upload", query_string={"access_token": t, "type": "image"},
                    data={"media": (io.BytesIO(png), "chart.png", "image/png")},
                    content_type="multipart/form-data")
    up = r.get_json()
    assert up["errcode"] == 0 and up["type"] == "image"
    got = client.get(BASE + "media/get", query_string={"access_token": t, "media_id": up["media_id"]})
    assert got.data == png and got.mimetype == "image/png"
    assert send(client, t, {"touser": "zhangsan", "msgtype": "image", "image": {"media_id": up["media_id"]}})[
        "errcode"] == 0
    tiny = client.post(BASE + "media/upload", query_string={"access_token": t, "type": "image"},
                       data={"media": (io.BytesIO(b"abc"), "x.png")},
                       content_type="multipart/form-data")
    assert tiny.get_json()["errcode"] == 40005
    missing = client.get(BASE + "media/get", query_string={"access_token": t, "media_id": "nope"})
    assert missing.get_json()["errcode"] == 40007


def test_update_template_card_once_per_response_code(client: Any, emu_app: Any) -> None:
    t = token(client)
    sent = send(client, t, button_card("approve-1"))
    body = {"userids": ["zhangsan"], "agentid": AGENT_ID, "response_code": sent["response_code"],
            "button": {"replace_name": "已批准"}}
    r = client.post(BASE + "message/update_template_card", query_string={"access_token": t}, json=body)
    assert r.get_json()["errcode"] == 0
    emu: Emulator = emu_app.extensions["salesbot.emulator"]
    card = emu.state.inbox("zhangsan")[-1]
    assert card.card_state and card.card_state["replace_name"] == "已批准"
    assert any(e["type"] == "card" for e in emu.events())
    again = client.post(BASE + "message/update_template_card", query_string={"access_token": t}, json=body)
    assert again.get_json()["errcode"] == 40078


def test_user_get_and_oauth_code_exchange(client: Any, emu_app: Any) -> None:
    t = token(client)
    user = client.get(BASE + "user/get", query_string={"access_token": t, "userid": "lisi"}).get_json()
    assert user["name"] == "李四"
    assert client.get(BASE + "user/get", query_string={"access_token": t, "userid": "x"}).get_json()[
        "errcode"] == 60111
    code = emu_app.extensions["salesbot.emulator"].state.issue_oauth_code("lisi")
    info = client.get(BASE + "auth/getuserinfo", query_string={"access_token": t, "code": code}).get_json()
    assert info["userid"] == "lisi"
    reused = client.get(BASE + "auth/getuserinfo", query_string={"access_token": t, "code": code}).get_json()
    assert reused["errcode"] == 40029


def test_nothing_under_dev_when_the_emulator_is_off(make_runtime: Any) -> None:
    app = create_app(runtime=make_runtime())
    c = app.test_client()
    assert c.get(BASE + "gettoken", query_string={"corpid": CORP_ID, "corpsecret": SECRET}).status_code == 404
    assert c.get("/dev/").status_code == 404


# ---- the bot's own client, over real HTTP --------------------------------------------------------------

def test_the_bots_client_reaches_the_fake_api_through_api_base_url(make_runtime: Any) -> None:
    server = LiveServer()
    rt = make_runtime(dev__emulator=True, wecom__api_base_url=server.url + BASE)
    with rt.db.transaction() as s:
        seed_members(s)
    app = create_app(runtime=rt)
    emu: Emulator = app.extensions["salesbot.emulator"]
    server.set_app(app)
    server.start()
    try:
        status, reply = emu.send_text("chenjing", "主管 liuyang wanglei")
        assert status == 200 and reply and "王磊" in reply["Content"]
        deliverer = Deliverer(rt, owner="test")
        assert deliverer.run_once() == 1
        card = emu.state.inbox("wanglei")[-1]
        assert card.msgtype == "template_card" and card.body["main_title"]["title"] == "团队成员确认"
        assert emu.state.count("gettoken") == 1

        # WeCom expires the token early: the client refreshes once and retries
        emu.state.expire_tokens()
        emu.send_text("chenjing", "主管 zhangmin wanglei")
        assert deliverer.run_once() == 1
        assert emu.state.count("gettoken") == 2
        assert len([m for m in emu.state.inbox("wanglei") if m.msgtype == "template_card"]) == 2

        # the manager confirms on the card: a real encrypted template_card_event, a passive update_button
        status, reply = emu.click("wanglei", card.seq, "confirm")
        assert status == 200 and reply and reply["MsgType"] == "update_button" and reply["ReplaceName"] == "已确认"
        assert (emu.state.inbox("wanglei")[0].card_state or {})["replace_name"] == "已确认"
    finally:
        server.stop()


# ---- the console's own endpoints ------------------------------------------------------------------------

def test_console_endpoints_refuse_bad_input(client: Any) -> None:
    assert client.post("/dev/api/send", json={"as": "bad id!", "content": "hi"}).status_code == 400
    assert client.post("/dev/api/send", json={"as": "zhangsan", "content": "  "}).status_code == 400
    assert client.post("/dev/api/send", json={"as": "zhangsan", "type": "link", "url": "javascript:x"}).status_code == 400
    assert client.post("/dev/api/send", json={"as": "zhangsan", "type": "sticker"}).status_code == 400
    assert client.post("/dev/api/click", json={"as": "zhangsan", "seq": 999, "key": "x"}).status_code == 404
    assert client.post("/dev/api/click", json={"as": "zhangsan", "seq": 1, "selected": ["x"]}).status_code == 400
    assert client.get("/dev/api/media/nope").status_code == 404
    assert client.post("/dev/api/members", json={"userid": ""}).status_code == 400


def test_events_long_poll_and_epoch(client: Any, emu_app: Any) -> None:
    import time

    emu: Emulator = emu_app.extensions["salesbot.emulator"]
    state = client.get("/dev/api/state").get_json()
    assert state["epoch"] == emu.epoch and {m["userid"] for m in state["members"]} >= {"zhangsan", "lisi"}
    started = time.monotonic()
    quiet = client.get(f"/dev/api/events?since={state['last']}&wait=0.3&epoch={emu.epoch}").get_json()
    assert quiet["events"] == [] and time.monotonic() - started >= 0.25
    started = time.monotonic()
    stale = client.get(f"/dev/api/events?since={state['last']}&wait=5&epoch=older-run").get_json()
    assert stale["epoch"] == emu.epoch and time.monotonic() - started < 2  # the page reloads at once
    client.post("/dev/api/send", json={"as": "zhangsan", "type": "text", "content": "你好"})
    news = client.get(f"/dev/api/events?since={state['last']}").get_json()["events"]
    assert [e["type"] for e in news if e["type"] in ("sent", "reply")] == ["sent", "reply"]
    wire_in = next(e for e in news if e["type"] == "wire")
    assert "<Content><![CDATA[你好]]></Content>" in wire_in["request_plain"]
    assert "<Encrypt>" in wire_in["request_body"] and "<Encrypt>" in wire_in["response_body"]
    assert "<MsgType><![CDATA[text]]></MsgType>" in wire_in["response_plain"]


def test_a_retried_callback_is_shown_once_and_recorded_once(emu_app: Any) -> None:
    from bot.emulator import wire

    emu: Emulator = emu_app.extensions["salesbot.emulator"]
    xml = wire.text_xml(CORP_ID, AGENT_ID, "zhangsan", "你好", msg_id="4561255354251345929")
    assert emu.post_callback(xml)[0] == 200
    assert emu.post_callback(xml) == (200, None)  # WeCom's retry: empty 200, nothing done twice
    sent = [e for e in emu.events() if e["type"] == "sent"]
    assert [e["duplicate"] for e in sent] == [False, True]
    assert len(emu.recorder.steps) == 1
