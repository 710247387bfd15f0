"""Security review (issue 9 §5, docs/security.md): the threats not already covered elsewhere.

Each test names the threat it covers; docs/security.md maps every threat to its tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlparse
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from sqlalchemy import func, select

from bot import messages as M
from bot.app import create_app
from bot.emulator import wire
from bot.emulator.state import WeComState
from bot.logs import JsonFormatter, setup_logging
from bot.out import Text
from bot.outbox import Deliverer, enqueue
from jobs.link_clicks import drain
from storage.behaviour import CustomerEvent, LinkItem, TrackedLink
from storage.models import AuditEntry, InboundMessage, Member, OutboxMessage, ProcessedCallback
from storage.sales import Customer
from tests.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET
from tests.harness import API, Chat

HOOK_SECRET = "hook-secret-for-security-tests"
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh")
SH = ZoneInfo("Asia/Shanghai")


def count(rt: Any, model: Any, *where: Any) -> int:
    with rt.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def bot(make_runtime, wecom, company) -> Chat:
    rt = make_runtime(hooks__product_events_secret=HOOK_SECRET)
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司 信用代码 91330100716105852F 行业 软件")
    chat.say("lisi", "新客户 宁波海曙贸易有限公司")
    chat.say("admin", "资料 新增 产品手册 https://docs.example.com/manual.pdf 手册")
    return chat


def link_path(chat: Chat, customer: str = "杭州云栖", item: str = "产品手册") -> str:
    reply = chat.say("zhangsan", f"链接 {customer} {item}")
    return reply.split("127.0.0.1:8000", 1)[1].split()[0]


# ---- token leakage in logs -------------------------------------------------------------------------


def test_access_token_and_secret_never_reach_logs_or_stored_errors(rt, http, caplog):
    """Threat: the access token (in every API URL's query string) or the app secret (in gettoken's) leaks
    into logs or the outbox's last_error through an exception message, as urllib3 puts the URL in them."""
    state = WeComState(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID)
    state.add_member("zhangsan", "张三")
    calls = Counter()

    def callback(request: Any) -> Any:
        url = urlparse(request.url)
        api = url.path.split("/cgi-bin/", 1)[1]
        calls[api] += 1
        n = calls[api]
        if api == "message/send" and n == 1:  # what urllib3 says when the connection is refused
            raise requests.exceptions.ConnectionError(
                f"HTTPSConnectionPool(host='qyapi.test', port=443): Max retries exceeded with url: "
                f"{url.path}?{url.query} (Caused by NewConnectionError('Connection refused'))")
        if api == "message/send" and n == 2:
            raise requests.exceptions.ReadTimeout(f"Read timed out: {request.url}")
        if api == "message/send" and n == 3:
            return 502, {}, f"<html>bad gateway for {request.url}</html>".encode()
        if api == "message/send" and n == 4:
            state.expire_tokens()
        result, ctype = state.handle(api, dict(parse_qsl(url.query)),
                                     request.body.encode() if isinstance(request.body, str) else request.body)
        return 200, {"Content-Type": ctype}, json.dumps(result).encode()

    http.add_callback(responses.POST, re.compile(re.escape(API) + ".*"), callback=callback)
    http.add_callback(responses.GET, re.compile(re.escape(API) + ".*"), callback=callback)
    caplog.set_level(logging.DEBUG)
    with rt.db.transaction() as s:
        enqueue(s, "zhangsan", Text("签约提醒"))
    d = Deliverer(rt)
    for _ in range(6):
        d.run_once()
        with rt.db.transaction() as s:
            s.execute(OutboxMessage.__table__.update().values(next_attempt_at=datetime.now(SH) - timedelta(seconds=1)))
    assert [m.body["content"] for m in state.inbox("zhangsan")] == ["签约提醒"]
    assert len(state.tokens) == 2  # a first token and the one fetched after 42001

    secrets_seen = [*state.tokens, SECRET, AES_KEY]
    formatter, plain = JsonFormatter(), logging.Formatter("%(message)s %(exc_info)s")
    rendered = [formatter.format(r) + plain.format(r) for r in caplog.records]
    with rt.db.sessions() as s:
        stored = [r.last_error or "" for r in s.scalars(select(OutboxMessage))]
    for value in secrets_seen:
        assert not any(value in line for line in rendered), "a secret reached the logs"
        assert not any(value in e for e in stored), "a secret reached outbox.last_error"


def test_json_logs_mask_secret_fields_and_urllib3_stays_quiet():
    """Threat: a caller passes a secret in ``extra``; urllib3's debug lines carry full URLs."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "calling WeCom", None, None)
    record.access_token = "tok-123"
    record.secret = "sec-456"
    record.corpsecret = "cs-789"
    record.userid = "zhangsan"
    line = json.loads(JsonFormatter().format(record))
    assert line["access_token"] == line["secret"] == line["corpsecret"] == "***"
    assert line["userid"] == "zhangsan"
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("urllib3").level)
    try:
        setup_logging("DEBUG", True)
        assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.WARNING
        assert logging.getLogger("wechatpy").getEffectiveLevel() >= logging.WARNING
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        logging.getLogger("urllib3").setLevel(saved[2])


# ---- forged and replayed callbacks ----------------------------------------------------------------


def test_a_callback_signed_without_the_token_is_refused(chat: Chat, rt, company):
    """Threat: someone who knows the public corp id and the AES key scheme but not the token forges a
    message as the admin."""
    from bot.crypto import WeComCrypto

    forger = WeComCrypto("not-the-token", AES_KEY, CORP_ID)
    params, body = forger.encrypt_callback(wire.text_xml(CORP_ID, AGENT_ID, "admin", "角色 zhangsan 管理员"))
    resp = chat.app.test_client().post("/wecom/callback", query_string=params, data=body)
    assert resp.status_code == 403
    assert count(rt, InboundMessage) == 0 and count(rt, AuditEntry) == 0
    with rt.db.sessions() as s:
        assert s.scalar(select(Member.roles).where(Member.userid == "zhangsan")) == ["rep"]


def test_a_captured_callback_replayed_later_is_refused_and_within_the_window_has_one_effect(
        chat: Chat, rt, company, monkeypatch):
    """Threat: an eavesdropper replays a captured, correctly signed request."""
    params, body = rt.crypto.encrypt_callback(wire.text_xml(CORP_ID, AGENT_ID, "admin", "区域 zhangsan 华北"))
    client = chat.app.test_client()
    assert client.post("/wecom/callback", query_string=params, data=body).get_data()
    assert client.post("/wecom/callback", query_string=params, data=body).get_data() == b""  # replay: no effect
    import bot.crypto

    later = bot.crypto.time.time() + rt.config.get("wecom.max_clock_skew_s") + 60
    monkeypatch.setattr(bot.crypto.time, "time", lambda: later)
    rt.redis.flushdb()  # so that it is the timestamp, not the dedup key, that refuses the replay
    assert client.post("/wecom/callback", query_string=params, data=body).status_code == 403  # stale
    assert count(rt, AuditEntry, AuditEntry.action == "set_region") == 1


# ---- card-click spoofing -------------------------------------------------------------------------


def test_card_clicks_only_the_addressee_once_and_unknown_cards_change_nothing(chat: Chat, rt, company):
    """Threat: another member (or a double tap, or a replayed click event with a new time) decides a card."""
    chat.say("admin", "主管 zhaoliu wangwu")
    card = chat.cards("wangwu")[-1]
    assert "无权" in chat.click("lisi", card.task_id, "confirm").text
    assert chat.click("wangwu", "no-such-task", "confirm").text == M.CARD_UNKNOWN
    first = chat.click("wangwu", card.task_id, "confirm")
    assert first.reply and first.reply["MsgType"] == "update_button"
    again = chat.click("wangwu", card.task_id, "reject")  # a second tap, a different button
    assert "已" in again.text and (again.reply or {}).get("MsgType") != "update_button"
    assert count(rt, AuditEntry, AuditEntry.action.in_(["confirm_team_member", "reject_team_member"])) == 1
    assert count(rt, AuditEntry, AuditEntry.action == "card_click_refused") == 1
    with rt.db.sessions() as s:
        assert s.scalar(select(Member.manager_userid).where(Member.userid == "zhaoliu")) == "wangwu"


# ---- open redirect and tracked-link enumeration ---------------------------------------------------


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example/x", "data:text/html,<script>",
                                 "evil.example/x", "ftp://evil.example/x", "https:///nohost"])
def test_the_library_takes_only_http_urls(bot: Chat, url: str):
    """Threat: an admin account (or a typo) stores a URL that becomes a script or protocol-relative redirect."""
    reply = bot.say("admin", f"资料 新增 坏链接 {url} 其他")
    assert reply == M.LIBRARY_BAD_URL.format(url=url)
    with bot.rt.db.sessions() as s:
        assert s.scalar(select(LinkItem).where(LinkItem.name == "坏链接")) is None


def test_the_redirect_goes_only_to_the_stored_url(bot: Chat):
    """Threat: open redirect through a parameter, a header or a crafted token."""
    path = link_path(bot)
    client = bot.app.test_client()
    resp = client.get(path + "?url=https://evil.example&next=//evil.example",
                      headers={"User-Agent": PHONE_UA, "Host": "evil.example", "Referer": "https://evil.example"})
    assert resp.status_code == 302 and resp.headers["Location"] == "https://docs.example.com/manual.pdf"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    for crafted in ("/t/..%2f..%2fevil.example", "/t/%2F%2Fevil.example", "/t//evil.example", "/t/" + "A" * 65,
                    "/t/%00", "/t/https:%2F%2Fevil.example"):
        resp = client.get(crafted, headers={"User-Agent": PHONE_UA})
        if resp.status_code != 404:  # werkzeug folds // in paths with a redirect on the same host
            assert resp.status_code == 308, crafted
            location = urlparse(resp.headers["Location"])
            assert location.netloc == "localhost" and location.path.startswith("/t/"), crafted
            assert client.get(location.path, headers={"User-Agent": PHONE_UA}).status_code == 404


def test_tracked_link_tokens_carry_128_random_bits_and_guesses_learn_nothing(bot: Chat):
    """Threat: enumerating tracked links (to read which customer saw what, or to fake clicks)."""
    tokens = [link_path(bot).rsplit("/", 1)[1] for _ in range(30)]
    assert len(set(tokens)) == 30
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22,}", t) for t in tokens)  # token_urlsafe(16): 128 bits
    assert min(len(t) for t in tokens) * math.log2(64) >= 128
    client = bot.app.test_client()
    events_before = count(bot.rt, CustomerEvent)
    bodies = set()
    for _ in range(100):
        resp = client.get(f"/t/{secrets.token_urlsafe(16)}", headers={"User-Agent": PHONE_UA})
        assert resp.status_code == 404
        bodies.add(resp.get_data())
    revoked = tokens[0]
    with bot.rt.db.transaction() as s:
        row = s.get(TrackedLink, revoked)
        assert row is not None
        row.revoked = True
    bodies.add(client.get(f"/t/{revoked}", headers={"User-Agent": PHONE_UA}).get_data())
    assert len(bodies) == 1  # unknown and revoked look the same: no oracle
    bot.flush_clicks()
    drain(bot.rt, wait_s=30)
    assert count(bot.rt, CustomerEvent) == events_before  # guesses record nothing


# ---- webhook forgery -----------------------------------------------------------------------------


def _post_event(chat: Chat, raw: bytes, signature: str | None) -> Any:
    headers = {} if signature is None else {"X-Salesbot-Signature": signature}
    return chat.app.test_client().post("/hooks/product-events", data=raw, headers=headers,
                                       content_type="application/json")


def test_webhook_forgery_tampering_and_replay(bot: Chat):
    """Threat: forged or altered product events (to trigger stage upgrades), and replays of real ones."""
    body = {"id": "evt-1", "customer": "91330100716105852F", "type": "trial_requested",
            "occurred_at": datetime.now(SH).isoformat()}
    raw = json.dumps(body).encode()
    good = hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    tampered = json.dumps({**body, "customer": "1"}).encode()
    assert _post_event(bot, raw, None).status_code == 401
    assert _post_event(bot, raw, "sha256=" + "0" * 64).status_code == 401
    assert _post_event(bot, tampered, "sha256=" + good).status_code == 401  # signature of another body
    wrong_key = hmac.new(b"guess", raw, hashlib.sha256).hexdigest()
    assert _post_event(bot, raw, wrong_key).status_code == 401
    assert count(bot.rt, CustomerEvent) == 0
    assert _post_event(bot, raw, "sha256=" + good).status_code == 202
    replay = _post_event(bot, raw, "sha256=" + good)
    assert replay.status_code == 200 and replay.json == {"status": "duplicate"}
    assert count(bot.rt, CustomerEvent) == 1
    huge = json.dumps({**body, "id": "evt-2", "data": {"x": "好" * 30000}}).encode()
    signed = hmac.new(HOOK_SECRET.encode(), huge, hashlib.sha256).hexdigest()
    assert _post_event(bot, huge, signed).status_code == 413  # oversized body refused before parsing


def test_webhook_without_a_configured_secret_accepts_nothing(chat: Chat, rt, company):
    raw = b'{"id": "x"}'
    resp = _post_event(chat, raw, hmac.new(b"", raw, hashlib.sha256).hexdigest())
    assert resp.status_code == 503 and count(rt, CustomerEvent) == 0


def test_signatures_are_compared_in_constant_time():
    """Code review made executable: both signature checks use hmac.compare_digest."""
    import inspect

    import bot.crypto
    import bot.links

    assert "hmac.compare_digest" in inspect.getsource(bot.crypto.WeComCrypto._check)
    assert "hmac.compare_digest" in inspect.getsource(bot.links.product_event)


# ---- SQL injection through search ----------------------------------------------------------------

INJECTIONS = ["' OR '1'='1", "杭州云栖'; DROP TABLE customers; --", "\" OR 1=1 --", "%", "_", "%%%", "\\",
              "1) OR (1=1", "宁波' UNION SELECT userid, name FROM members --", "NEAR(杭州 云栖)", "*", "杭州 OR 宁波"]


@pytest.mark.parametrize("text", INJECTIONS)
def test_sql_injection_strings_in_searches_are_plain_text(bot: Chat, text: str):
    """Threat: SQL (or FTS query syntax) typed into customer search, archive search or member lookup."""
    customers = count(bot.rt, Customer)
    for userid, command in (("zhangsan", "客户"), ("zhangsan", "搜索"), ("admin", "成员"), ("zhangsan", "链接")):
        reply = bot.say(userid, f"{command} {text}" + (" 产品手册" if command == "链接" else ""))
        assert M.APOLOGY not in reply and "Traceback" not in reply
        assert "宁波海曙" not in reply  # lisi's customer never shows to zhangsan, whatever the pattern
    assert count(bot.rt, Customer) == customers
    with bot.rt.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Member)) >= 8  # the tables are all still there


def test_a_wildcard_search_stays_within_the_askers_scope(bot: Chat):
    """Threat: % or _ widening a search past what the member may see."""
    for text in ("客户 %", "客户 _", "客户 ", "搜索 %", "搜索 新客户"):
        reply = bot.say("zhangsan", text)
        assert "宁波海曙" not in reply, text
    assert "宁波海曙" in bot.say("lisi", "搜索 新客户")  # her own message is found


# ---- oversized uploads and bodies ----------------------------------------------------------------


def test_an_oversized_upload_is_refused_before_anything_is_stored(make_runtime, wecom, company):
    rt = make_runtime(server__max_upload_bytes=1024)
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("admin", "必填 方案确认 竞品对比表:文件/文字")
    chat.say("zhangsan", "新商机 杭州云栖 15万 方案演示")
    reply = chat.say("zhangsan", "推进 杭州云栖 方案确认")
    path = next(w for w in reply.split() if "/upload/" in w).split("127.0.0.1:8000", 1)[1]
    client = chat.app.test_client()
    assert client.get(path, query_string={"code": wecom.issue_oauth_code("zhangsan")}).status_code == 200
    from io import BytesIO

    from storage.sales import Attachment

    resp = client.post(path, data={"file": (BytesIO(b"x" * 4096), "big.pdf")}, content_type="multipart/form-data")
    assert resp.status_code == 413
    assert count(rt, Attachment) == 0
    too_big_for_flask = client.post(path, data=b"x" * (26 * 1024 * 1024), content_type="application/octet-stream")
    assert too_big_for_flask.status_code == 413  # MAX_CONTENT_LENGTH: refused before the body is read


def test_an_oversized_callback_body_never_reaches_the_parser(chat: Chat, rt, company):
    resp = chat.app.test_client().post("/wecom/callback?msg_signature=x&timestamp=1&nonce=1",
                                       data=b"<xml>" + b"A" * (70 * 1024) + b"</xml>", content_type="text/xml")
    assert resp.status_code == 413
    assert count(rt, InboundMessage) == 0 and count(rt, ProcessedCallback) == 0


# ---- the review itself --------------------------------------------------------------------------


def test_every_test_named_in_docs_security_exists():
    """docs/security.md names the test behind each defence; each must exist under that name."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "security.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc)
    assert len(named) >= 30
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"^def {name}\(", (root / path).read_text(encoding="utf-8"), re.M)]
    assert missing == []
