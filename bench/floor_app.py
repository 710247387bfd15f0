"""The callback's floor: the least any implementation of the full path must do, written by hand.

``http_bench --floor`` serves it under the same gunicorn and workers as the other two callback targets, to
show where a goal set against the bare endpoint sits between "nothing" and "salesbot". Per request it does
only what WeCom's protocol and "nothing lost, nothing twice" require, each at its cheapest:

- the SHA1 signature over token, timestamp, nonce and payload, compared in constant time;
- AES-256-CBC decryption with ``cryptography`` (PKCS#7 over 32-byte blocks, the receive id checked);
- the two XML documents parsed with the standard library (no defusedxml, no xmltodict);
- the dedup: one Redis ``SET NX`` per MsgId;
- one durable write: a single-statement INSERT on a per-thread psycopg connection in autocommit (one round
  trip, the commit included; psycopg prepares it after its fifth use), no ORM, no pool;
- the passive reply, a fixed text, encrypted and signed.

No member lookup, no routing, no handler, no archive, no audit. A message whose key is already set is
answered an empty 200 without a write. The table (``floor_messages``, ``TABLE``) is made by the benchmark.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import psycopg
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Flask, Response, request

from storage.redis import connect as connect_redis

TABLE = "CREATE TABLE IF NOT EXISTS floor_messages (msgid text PRIMARY KEY, sender text, content text)"


def _connector(db_url: str) -> Callable[[], Callable[[tuple[Any, ...]], Any]]:
    """A per-thread connection's insert, made on first use: psycopg on PostgreSQL, sqlite3 on a SQLite file
    (so the tests run it on both backends); each in autocommit, the statement its own transaction."""
    if db_url.startswith("sqlite:///"):
        path = db_url.removeprefix("sqlite:///")

        def make() -> Callable[[tuple[Any, ...]], Any]:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            return lambda row: conn.execute("INSERT INTO floor_messages VALUES (?, ?, ?)", row)
    else:
        url = db_url.replace("postgresql+psycopg://", "postgresql://", 1)

        def make() -> Callable[[tuple[Any, ...]], Any]:
            conn = psycopg.connect(url, autocommit=True)
            return lambda row: conn.execute("INSERT INTO floor_messages VALUES (%s, %s, %s)", row)
    return make


def make_app(token: str, aes_key: str, corp_id: str, db_url: str, redis_url: str) -> Flask:
    key = base64.b64decode(aes_key + "=")
    redis = connect_redis(redis_url, embedded_name="floor")
    make_insert = _connector(db_url)
    local = threading.local()

    def sign(timestamp: str, nonce: str, encrypt: str) -> str:
        return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324

    def decrypt(encrypt: str) -> bytes:
        d = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = d.update(base64.b64decode(encrypt)) + d.finalize()
        plain = plain[:-plain[-1]]
        (length,) = struct.unpack(">I", plain[16:20])
        if plain[20 + length:].decode() != corp_id:
            raise ValueError("receive id")
        return plain[20:20 + length]

    def encrypt(text: str) -> str:
        raw = text.encode()
        data = secrets.token_bytes(16) + struct.pack(">I", len(raw)) + raw + corp_id.encode()
        pad = 32 - len(data) % 32
        e = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(e.update(data + bytes([pad]) * pad) + e.finalize()).decode()

    app = Flask("floor")

    @app.post("/wecom/callback")
    def callback() -> Response:
        args = request.args
        outer = ElementTree.fromstring(request.get_data())  # noqa: S314  (a floor, not an example to follow)
        payload = outer.findtext("Encrypt") or ""
        if not hmac.compare_digest(sign(args["timestamp"], args["nonce"], payload), args["msg_signature"]):
            return Response("bad signature", status=403)
        inner = ElementTree.fromstring(decrypt(payload))  # noqa: S314
        msgid, sender = inner.findtext("MsgId"), inner.findtext("FromUserName")
        if not redis.set(f"floor:{msgid}", 1, nx=True, ex=86400):
            return Response("", status=200)
        insert = getattr(local, "insert", None)
        if insert is None:
            insert = local.insert = make_insert()
        insert((msgid, sender, inner.findtext("Content")))
        reply = (f"<xml><ToUserName><![CDATA[{sender}]]></ToUserName><FromUserName><![CDATA[{corp_id}]]>"
                 f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                 f"<Content><![CDATA[已记录]]></Content></xml>")
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
        enc = encrypt(reply)
        body = (f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt><MsgSignature><![CDATA[{sign(timestamp, nonce, enc)}]]>"
                f"</MsgSignature><TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")
        return Response(body, status=200, content_type="application/xml")

    return app


def __getattr__(name: str) -> Flask:
    """``bench.floor_app:app`` for gunicorn, from the same SALESBOT_* variables as salesbot's."""
    if name != "app":
        raise AttributeError(name)
    env = os.environ
    app = make_app(env["SALESBOT_WECOM_TOKEN"], env["SALESBOT_WECOM_ENCODING_AES_KEY"], env["SALESBOT_WECOM_CORP_ID"],
                   env["SALESBOT_DATABASE_URL"], env.get("SALESBOT_REDIS_URL", ""))
    globals()["app"] = app
    return app
