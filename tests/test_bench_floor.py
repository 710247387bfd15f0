"""bench/floor_app.py is the callback's floor in the HTTP benchmark: what any implementation must at least do.
Its figure means something only if it does that work: it rejects a forged signature, answers a reply WeCom's
crypto verifies and decrypts, writes each message once and no retry twice."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

import psycopg
import pytest

from bench.common import AES_KEY, CORP_ID, TOKEN
from bench.floor_app import TABLE, make_app
from bot.crypto import WeComCrypto
from bot.emulator import wire


def _sql(db_url: str, statement: str) -> list[tuple]:
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(statement).fetchall()
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def floor(db_url: str, redis_url: str):
    _sql(db_url, TABLE)
    _sql(db_url, "DELETE FROM floor_messages")
    yield make_app(TOKEN, AES_KEY, CORP_ID, db_url, redis_url).test_client()
    _sql(db_url, "DROP TABLE floor_messages")


def test_the_floor_verifies_decrypts_writes_once_and_replies(floor, db_url: str) -> None:
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    params, body = crypto.encrypt_callback(wire.text_xml(CORP_ID, 1, "rep007", "联系人 客户A 王五 经理",
                                                         msg_id="4242"))

    forged = dict(params, msg_signature="0" * 40)
    assert floor.post(f"/wecom/callback?{urlencode(forged)}", data=body).status_code == 403
    assert _sql(db_url, "SELECT count(*) FROM floor_messages") == [(0,)]

    resp = floor.post(f"/wecom/callback?{urlencode(params)}", data=body)
    assert resp.status_code == 200
    reply = wire.read_passive_reply(crypto, resp.get_data(as_text=True))  # signature checked, then decrypted
    assert reply is not None
    assert (reply["ToUserName"], reply["MsgType"], reply["Content"]) == ("rep007", "text", "已记录")

    retry = floor.post(f"/wecom/callback?{urlencode(params)}", data=body)  # WeCom's retry of the same MsgId
    assert retry.status_code == 200 and retry.get_data() == b""
    assert _sql(db_url, "SELECT msgid, sender, content FROM floor_messages") == [
        ("4242", "rep007", "联系人 客户A 王五 经理")]
