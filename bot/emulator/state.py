"""The fake WeCom API's behaviour, without HTTP: tokens, members, sent messages, cards, media.

It validates like WeCom (bad token → 40014, expired → 42001, bad or reused task_id → 42014,
content over 2048 bytes → 45002, unknown member → 81013) and honours enable_duplicate_check, so the
bot's bugs show up here first. The emulator's Flask blueprint and the tests' ``responses`` fake both
call ``handle``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
CARD_TYPES = {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
UPDATABLE = {"button_interaction", "vote_interaction", "multiple_interaction"}
MAX_BYTES = 2048


@dataclass
class Delivered:
    """One message as it shows in a member's chat."""

    seq: int
    touser: str
    msgtype: str
    body: dict[str, Any]
    at: float
    msgid: str
    response_code: str | None = None
    task_id: str | None = None
    card_state: dict[str, Any] | None = None  # for cards: replaced button name, selections


@dataclass
class WeComState:
    corp_id: str
    secret: str
    agent_id: int
    members: dict[str, str] = field(default_factory=dict)  # userid → name
    token_ttl_s: int = 7200
    lock: threading.RLock = field(default_factory=threading.RLock)
    tokens: dict[str, float] = field(default_factory=dict)  # token → expiry (epoch s)
    messages: list[Delivered] = field(default_factory=list)
    task_ids: set[str] = field(default_factory=set)
    response_codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → (userid, task_id)
    used_codes: set[str] = field(default_factory=set)
    media: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # id → (filename, bytes, type)
    oauth_codes: dict[str, str] = field(default_factory=dict)  # code → userid
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (api, request) for tests
    listeners: list[Callable[[Delivered], None]] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    _seq: int = 0

    # ---- helpers -----------------------------------------------------------------------------

    def _err(self, code: int, msg: str) -> dict[str, Any]:
        return {"errcode": code, "errmsg": msg}

    def _check_token(self, token: str | None) -> dict[str, Any] | None:
        if not token or token not in self.tokens:
            return self._err(40014, "invalid access_token")
        if self.tokens[token] <= self.clock():
            return self._err(42001, "access_token expired")
        return None

    def expire_tokens(self) -> None:
        """Make every issued token expired (tests, and the console's 'expire token' button)."""
        with self.lock:
            for t in self.tokens:
                self.tokens[t] = 0

    def add_member(self, userid: str, name: str) -> None:
        with self.lock:
            self.members[userid] = name

    def issue_oauth_code(self, userid: str) -> str:
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.oauth_codes[code] = userid
        return code

    def inbox(self, userid: str) -> list[Delivered]:
        with self.lock:
            return [m for m in self.messages if m.touser == userid]

    def count(self, api: str) -> int:
        with self.lock:
            return sum(1 for name, _ in self.calls if name == api)

    # ---- the API -----------------------------------------------------------------------------

    def handle(self, api: str, query: dict[str, str], body: bytes | None,
               files: dict[str, tuple[str, bytes, str]] | None = None) -> tuple[dict[str, Any] | bytes, str]:
        """One API call: returns (JSON dict or raw bytes, content type)."""
        with self.lock:
            self.calls.append((api, {"query": dict(query), "body": body}))
            if api == "gettoken":
                return self._gettoken(query), "application/json"
            err = self._check_token(query.get("access_token"))
            if err:
                return err, "application/json"
            payload: dict[str, Any] = {}
            if body:
                try:
                    payload = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    return self._err(47001, "data format error"), "application/json"
            handler = {
                "message/send": self._send,
                "message/update_template_card": self._update_card,
                "user/get": lambda p: self._user_get(query),
                "auth/getuserinfo": lambda p: self._getuserinfo(query),
            }.get(api)
            if api == "media/upload":
                return self._upload(query, files or {}), "application/json"
            if api == "media/get":
                return self._media_get(query)
            if handler is None:
                return self._err(404, f"unknown api {api}"), "application/json"
            return handler(payload), "application/json"

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            return self._err(40013, "invalid corpid")
        if query.get("corpsecret") != self.secret:
            return self._err(40001, "invalid credential")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = self.clock() + self.token_ttl_s
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl_s}

    def _send(self, p: dict[str, Any]) -> dict[str, Any]:
        msgtype = p.get("msgtype")
        if msgtype not in {"text", "markdown", "textcard", "image", "template_card"}:
            return self._err(40008, f"invalid message type {msgtype!r}")
        if str(p.get("agentid")) != str(self.agent_id):
            return self._err(40056, "invalid agentid")
        body = p.get(msgtype)
        if not isinstance(body, dict):
            return self._err(41016, f"missing {msgtype}")
        problem = self._validate(msgtype, body)
        if problem:
            return problem
        users = [u for u in str(p.get("touser", "")).split("|") if u]
        valid = [u for u in users if u in self.members]
        invalid = [u for u in users if u not in self.members]
        if not valid:
            return self._err(81013, "user & party & tag all invalid")
        if p.get("enable_duplicate_check"):
            window = float(p.get("duplicate_check_interval") or 1800)
            now = self.clock()
            dupes = [m for m in self.messages if m.touser in valid and m.msgtype == msgtype
                     and m.body == body and now - m.at < window]
            if dupes:  # WeCom answers ok and does not show the message again
                return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid),
                        "msgid": dupes[0].msgid, **({"response_code": dupes[0].response_code}
                                                     if dupes[0].response_code else {})}
        msgid = secrets.token_hex(12)
        response_code = None
        task_id = None
        if msgtype == "template_card":
            task_id = str(body.get("task_id", ""))
            self.task_ids.add(task_id)
        for u in valid:
            code = None
            if msgtype == "template_card":
                code = secrets.token_urlsafe(24)
                self.response_codes[code] = (u, task_id or "")
                response_code = code
            self._deliver(Delivered(0, u, msgtype, body, self.clock(), msgid, code, task_id,
                                    {} if msgtype == "template_card" else None))
        result = {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": msgid}
        if response_code:
            result["response_code"] = response_code
        return result

    def _deliver(self, d: Delivered) -> None:
        self._seq += 1
        d.seq = self._seq
        self.messages.append(d)
        for listener in list(self.listeners):
            listener(d)

    def _validate(self, msgtype: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if msgtype in {"text", "markdown"}:
            content = body.get("content")
            if not isinstance(content, str) or not content:
                return self._err(44004, "empty content")
            if len(content.encode("utf-8")) > MAX_BYTES:
                return self._err(45002, "content size out of limit")
        elif msgtype == "textcard":
            if len(str(body.get("title", "")).encode()) > 128 or len(str(body.get("description", "")).encode()) > 512:
                return self._err(45002, "content size out of limit")
        elif msgtype == "image":
            if body.get("media_id") not in self.media:
                return self._err(40007, "invalid media_id")
        elif msgtype == "template_card":
            card_type = body.get("card_type")
            if card_type not in CARD_TYPES:
                return self._err(40058, "invalid card_type")
            task_id = body.get("task_id")
            needs_task = card_type in UPDATABLE or "action_menu" in body
            if needs_task or task_id is not None:
                if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id) or task_id in self.task_ids:
                    return self._err(42014, "taskid has existed or empty or exceed max len")
            if card_type == "button_interaction":
                buttons = body.get("button_list") or []
                if not buttons or len(buttons) > 6:
                    return self._err(40058, "button_list must have 1-6 buttons")
                keys = [b.get("key") for b in buttons if b.get("type", 0) == 0]
                if any(not k or len(str(k).encode()) > 1024 for k in keys) or len(set(keys)) != len(keys):
                    return self._err(40058, "button key missing, too long or repeated")
            if card_type in {"vote_interaction", "multiple_interaction"} and not body.get("submit_button"):
                return self._err(40058, "submit_button required")
            if card_type in {"text_notice", "news_notice"} and not body.get("card_action"):
                return self._err(40058, "card_action required")
            if len(json.dumps(body, ensure_ascii=False).encode()) > 8192:
                return self._err(45002, "content size out of limit")
        return None

    def _update_card(self, p: dict[str, Any]) -> dict[str, Any]:
        code = str(p.get("response_code", ""))
        if code not in self.response_codes or code in self.used_codes:
            return self._err(40078, "invalid response_code")
        userid, task_id = self.response_codes[code]
        self.used_codes.add(code)
        for m in self.messages:
            if m.task_id == task_id and m.touser == userid and m.card_state is not None:
                if "button" in p:
                    m.card_state["replace_name"] = p["button"].get("replace_name", "")
                if "template_card" in p:
                    m.body = p["template_card"]
                m.card_state["updated_at"] = self.clock()
        return {"errcode": 0, "errmsg": "ok", "invaliduser": []}

    def apply_passive_update(self, userid: str, task_id: str, replace_name: str) -> None:
        """A passive update_button reply to a click, as the phone would show it."""
        with self.lock:
            for m in self.messages:
                if m.task_id == task_id and m.touser == userid and m.card_state is not None:
                    m.card_state["replace_name"] = replace_name
                    m.card_state["updated_at"] = self.clock()

    def new_click_code(self, userid: str, task_id: str) -> str:
        """The ResponseCode a click callback carries (usable once with update_template_card)."""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.response_codes[code] = (userid, task_id)
        return code

    def _user_get(self, query: dict[str, str]) -> dict[str, Any]:
        userid = query.get("userid", "")
        if userid not in self.members:
            return self._err(60111, "userid not found")
        return {"errcode": 0, "errmsg": "ok", "userid": userid, "name": self.members[userid], "status": 1}

    def _getuserinfo(self, query: dict[str, str]) -> dict[str, Any]:
        code = query.get("code", "")
        userid = self.oauth_codes.pop(code, None)
        if userid is None:
            return self._err(40029, "invalid code")
        return {"errcode": 0, "errmsg": "ok", "userid": userid}

    def _upload(self, query: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> dict[str, Any]:
        kind = query.get("type", "")
        limits = {"image": 10 << 20, "voice": 2 << 20, "video": 10 << 20, "file": 20 << 20}
        if kind not in limits:
            return self._err(40004, "invalid media type")
        if "media" not in files:
            return self._err(41001, "missing media")
        filename, data, ctype = files["media"]
        if len(data) <= 5:
            return self._err(40005, "invalid file size: must be over 5 bytes")
        if len(data) > limits[kind]:
            return self._err(40006, "invalid file size")
        media_id = secrets.token_hex(16)
        self.media[media_id] = (filename, data, ctype)
        return {"errcode": 0, "errmsg": "ok", "type": kind, "media_id": media_id,
                "created_at": str(int(self.clock()))}

    def add_media(self, filename: str, data: bytes, content_type: str) -> str:
        """Media a member sent (an image or a voice clip): what media/get will return."""
        media_id = secrets.token_hex(16)
        with self.lock:
            self.media[media_id] = (filename, data, content_type)
        return media_id

    def _media_get(self, query: dict[str, str]) -> tuple[dict[str, Any] | bytes, str]:
        item = self.media.get(query.get("media_id", ""))
        if item is None:
            return self._err(40007, "invalid media_id"), "application/json"
        return item[1], item[2]
