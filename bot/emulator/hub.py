"""The emulator's hub: it plays WeCom's side of the callback, watches both wires and keeps the timeline.

Every POST to ``/wecom/callback`` — from the console, ``salesbot chat`` or a replay — passes through
``CallbackObserver`` (a WSGI middleware), which decrypts the request and the passive reply for the
wire panel, puts the member's message and the reply on the timeline, registers the sender in the
fake WeCom directory (only directory members can message an app) and applies a passive
``update_button`` to the card as a phone would. Messages the bot sends through the fake API arrive
through ``WeComState.listeners``. The console reads the timeline with ``events(since)``.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote

from flask import Flask
from sqlalchemy import select

from bot.crypto import CallbackRejected
from bot.emulator import wire
from bot.emulator.state import Delivered, WeComState
from bot.emulator.transcript import Recorder, card_summary, received_item
from bot.inbound import Inbound, parse_inbound, safe_parse
from bot.runtime import Runtime
from storage.models import Member

log = logging.getLogger(__name__)

MAX_EVENTS = 5000
MAX_CALLS_KEPT = 500  # WeComState.calls is a test aid; the demo would otherwise grow it forever
SHOWN_BYTES = 16384


def delivered_dict(d: Delivered) -> dict[str, Any]:
    return {"seq": d.seq, "touser": d.touser, "msgtype": d.msgtype, "body": copy.deepcopy(d.body),
            "at": d.at, "task_id": d.task_id, "card_state": copy.deepcopy(d.card_state)}


def _shown(data: bytes | str | None) -> str:
    if data is None:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text if len(text) <= SHOWN_BYTES else text[:SHOWN_BYTES] + f"…（共 {len(text)} 字符，已截断）"


def content_disposition(kind: str, filename: str) -> str:
    """A Content-Disposition header value that survives non-ASCII names (RFC 6266 / 5987)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_") or "media"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def mask_token(query: dict[str, str]) -> dict[str, str]:
    out = dict(query)
    for key in ("access_token", "corpsecret"):
        if out.get(key):
            out[key] = out[key][:4] + "…"
    return out


class Emulator:
    """One per app: the fake WeCom directory and API state, the timeline and the transcript recorder."""

    def __init__(self, app: Flask, runtime: Runtime, state: WeComState) -> None:
        self.app = app
        self.rt = runtime
        self.state = state
        self.epoch = secrets.token_hex(6)
        self.recorder = Recorder()
        self._cond = threading.Condition()
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self._next_id = 1
        self._seen_keys: deque[str] = deque(maxlen=10000)
        state.listeners.append(self._on_delivered)

    # ---- timeline ----------------------------------------------------------------------------

    def emit(self, type_: str, **data: Any) -> dict[str, Any]:
        with self._cond:
            event = {"id": self._next_id, "type": type_, "at": time.time(), **data}
            self._next_id += 1
            self._events.append(event)
            self._cond.notify_all()
        return event

    @property
    def last_event_id(self) -> int:
        with self._cond:
            return self._next_id - 1

    def events(self, since: int = 0, wait: float = 0.0) -> list[dict[str, Any]]:
        """Events after ``since``; waits up to ``wait`` seconds for the first one (long poll)."""
        deadline = time.monotonic() + max(0.0, wait)
        with self._cond:
            while True:
                found = [e for e in self._events if e["id"] > since]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._cond.wait(remaining)

    def _on_delivered(self, d: Delivered) -> None:
        # runs inside WeComState's lock: only touch our own state here
        self.emit("push", user=d.touser, message=delivered_dict(d))
        item = received_item(d.msgtype, d.body, "push")
        if d.msgtype == "template_card":
            self.recorder.card_delivered(d.touser, d.task_id or "", card_summary(d.body).get("title", ""))
        self.recorder.received(d.touser, item)
        with self.state.lock:
            if len(self.state.calls) > MAX_CALLS_KEPT:
                del self.state.calls[:-MAX_CALLS_KEPT]

    def card_changed(self, userid: str, task_id: str, via: str, step: dict[str, Any] | None = None) -> None:
        """A card on ``userid``'s phone changed (passive update_button or update_template_card)."""
        with self.state.lock:
            changed = [delivered_dict(m) for m in self.state.messages
                       if m.task_id == task_id and m.touser == userid and m.card_state is not None]
        for m in changed:
            self.emit("card", user=userid, message=m)
            self.recorder.received(userid, {"via": via, "card_update": card_summary(m["body"]).get("title", ""),
                                            "replace_name": (m["card_state"] or {}).get("replace_name", "")},
                                   step)

    def notice(self, text: str, user: str | None = None, level: str = "error") -> None:
        self.emit("notice", user=user, level=level, text=text)

    # ---- the directory -----------------------------------------------------------------------

    def sync_directory(self) -> None:
        """Put every active member of the database into the fake WeCom directory."""
        with self.rt.db.sessions() as s:
            for m in s.scalars(select(Member).where(Member.active.is_(True))):
                if m.userid not in self.state.members:
                    self.state.add_member(m.userid, m.name)

    def ensure_member(self, userid: str, name: str | None = None) -> None:
        if userid and userid not in self.state.members:
            self.state.add_member(userid, name or userid)

    def members(self) -> list[dict[str, Any]]:
        from bot import messages as M

        with self.rt.db.sessions() as s:
            rows = {m.userid: m for m in s.scalars(select(Member))}
        with self.state.lock:
            directory = dict(self.state.members)
        out = []
        for userid, name in directory.items():
            m = rows.get(userid)
            roles = list(m.roles or []) if m is not None else []
            out.append({"userid": userid, "name": (m.name if m is not None else name) or userid, "roles": roles,
                        "role_names": "、".join(M.ROLE_NAMES.get(r, r) for r in roles) or M.NONE_ROLE,
                        "registered": m is not None})
        return out

    # ---- WeCom's side of the callback ----------------------------------------------------------

    @property
    def corp_id(self) -> str:
        return str(self.rt.config.get("wecom.corp_id"))

    @property
    def agent_id(self) -> int:
        return int(self.rt.config.get("wecom.agent_id"))

    def post_callback(self, plaintext: str) -> tuple[int, dict[str, str] | None]:
        """POST ``plaintext`` encrypted to /wecom/callback as WeCom does; returns (status, passive reply)."""
        params, body = self.rt.crypto.encrypt_callback(plaintext)
        resp = self.app.test_client().post("/wecom/callback", query_string=params, data=body.encode(),
                                           content_type="text/xml")
        text = resp.get_data(as_text=True)
        if resp.status_code != 200:
            return resp.status_code, None
        return 200, wire.read_passive_reply(self.rt.crypto, text)

    def send_message(self, userid: str, msg_type: str, fields: dict[str, str]) -> tuple[int, dict[str, str] | None]:
        self.ensure_member(userid)
        return self.post_callback(wire.message_xml(self.corp_id, self.agent_id, userid, msg_type, fields))

    def send_text(self, userid: str, text: str) -> tuple[int, dict[str, str] | None]:
        return self.send_message(userid, "text", {"Content": text})

    def send_media(self, userid: str, kind: str, data: bytes, filename: str, content_type: str,
                   pic_base: str = "") -> tuple[int, dict[str, str] | None]:
        """An image or voice clip a member sends: stored as WeCom media, then the callback."""
        media_id = self.state.add_media(filename, data, content_type)
        fields = {"MediaId": media_id}
        if kind == "image":
            fields = {"PicUrl": f"{pic_base.rstrip('/')}/dev/api/media/{media_id}", "MediaId": media_id}
        elif kind == "voice":
            fields["Format"] = "amr"
        elif kind == "video":
            fields["ThumbMediaId"] = media_id
        return self.send_message(userid, kind, fields)

    def delivered(self, seq: int) -> Delivered | None:
        with self.state.lock:
            return next((m for m in self.state.messages if m.seq == seq), None)

    def find_card(self, userid: str, title: str, nth: int = -1) -> Delivered | None:
        """A card on ``userid``'s phone by title: the nth since recording started, else the latest."""
        task_id = self.recorder.card_task(userid, title, nth)
        with self.state.lock:
            cards = [m for m in self.state.messages if m.touser == userid and m.msgtype == "template_card"]
        if task_id:
            return next((m for m in cards if m.task_id == task_id), None)
        titled = [m for m in cards if card_summary(m.body).get("title") == title]
        return titled[-1] if titled else None

    def click(self, userid: str, seq: int, key: str,
              selected: dict[str, list[str]] | None = None) -> tuple[int, dict[str, str] | None]:
        """The member clicks a button (or submits a vote / multiple card) on the card ``seq``."""
        card = self.delivered(seq)
        if card is None or card.msgtype != "template_card":
            raise LookupError(f"no card #{seq}")
        task_id = card.task_id or ""
        code = self.state.new_click_code(userid, task_id)
        xml = wire.card_click_xml(self.corp_id, self.agent_id, userid, task_id, key,
                                  str(card.body.get("card_type", "")), code, selected or None)
        return self.post_callback(xml)

    # ---- watching the callback wire --------------------------------------------------------------

    def decode_request(self, query: dict[str, str], body: bytes) -> tuple[Inbound | None, str, str]:
        """(message, plaintext XML, error) of a callback request, as the bot will see it."""
        try:
            env = safe_parse(body)
            plain = self.rt.crypto.decrypt(query.get("msg_signature", ""), query.get("timestamp", ""),
                                           query.get("nonce", ""), (env.findtext("Encrypt") or "").strip())
            return parse_inbound(plain), plain, ""
        except CallbackRejected as exc:
            return None, "", exc.reason

    def decode_reply(self, body: str) -> tuple[dict[str, str] | None, str, str]:
        if not body.strip():
            return None, "", ""
        try:
            env = safe_parse(body)
            plain = self.rt.crypto.decrypt(env.findtext("MsgSignature") or "", env.findtext("TimeStamp") or "",
                                           env.findtext("Nonce") or "", env.findtext("Encrypt") or "")
            return wire.read_passive_reply(self.rt.crypto, body), plain, ""
        except CallbackRejected as exc:
            return None, "", f"passive reply does not decrypt: {exc.reason}"

    def before_callback(self, msg: Inbound) -> dict[str, Any] | None:
        """Before the bot sees it: the sender joins the directory, the message joins the timeline.

        Done first so that pushes the message causes are never shown (or recorded) before it.
        Returns the transcript step, None for a retried duplicate.
        """
        self.ensure_member(msg.from_user)
        with self._cond:
            duplicate = msg.callback_key in self._seen_keys
            self._seen_keys.append(msg.callback_key)
        sent = self._sent(msg)
        self.emit("sent", user=msg.from_user, duplicate=duplicate, **sent)
        if duplicate:
            return None
        return self.recorder.step(msg.from_user, self._action(msg, sent))

    def after_callback(self, query: dict[str, str], body: bytes, msg: Inbound | None, plain: str, error: str,
                       status: int, response: bytes, elapsed_ms: float,
                       step: dict[str, Any] | None = None) -> None:
        reply, reply_plain, reply_error = (None, "", "")
        if status == 200:
            reply, reply_plain, reply_error = self.decode_reply(response.decode("utf-8", "replace"))
        user = msg.from_user if msg else None
        self.emit("wire", kind="callback", user=user, status=status, elapsed_ms=round(elapsed_ms, 1),
                  summary=self._summary(msg) if msg else error, query=mask_token(query),
                  request_body=_shown(body), request_plain=_shown(plain),
                  response_body=_shown(response), response_plain=_shown(reply_plain),
                  error=error or reply_error or (response.decode("utf-8", "replace")[:300] if status != 200 else ""))
        if msg is None or status != 200:
            if step is not None:
                self.recorder.drop(step)
            self.notice(f"回调被拒绝（HTTP {status}）：{error or response.decode('utf-8', 'replace')[:200]}", user)
            return
        if reply is None:
            return
        if reply.get("MsgType") == "update_button":
            self.emit("reply", user=msg.from_user, msgtype="update_button", replace_name=reply.get("ReplaceName", ""))
            if msg.task_id:
                self.state.apply_passive_update(msg.from_user, msg.task_id, reply.get("ReplaceName", ""))
                self.card_changed(msg.from_user, msg.task_id, "reply", step)
        else:
            self.emit("reply", user=msg.from_user, msgtype=reply.get("MsgType", "text"),
                      content=reply.get("Content", ""))
            self.recorder.received(msg.from_user, received_item("text", {"content": reply.get("Content", "")},
                                                                "reply"), step)

    @staticmethod
    def _summary(msg: Inbound) -> str:
        if msg.msg_type == "text":
            return f"{msg.from_user}: {msg.content[:60]}"
        if msg.is_card_click:
            return f"{msg.from_user} 点击卡片 {msg.event_key}"
        return f"{msg.from_user}: [{msg.event or msg.msg_type}]"

    def _sent(self, msg: Inbound) -> dict[str, Any]:
        """What the member sent, for the timeline."""
        if msg.msg_type == "text":
            return {"kind": "text", "content": msg.content}
        if msg.msg_type in ("image", "voice", "video"):
            name = ""
            with self.state.lock:
                item = self.state.media.get(msg.media_id or "")
            if item is not None:
                name = item[0]
            return {"kind": msg.msg_type, "media_id": msg.media_id, "filename": name, "format": msg.format}
        if msg.msg_type == "link":
            return {"kind": "link", "title": msg.title, "description": msg.description, "url": msg.url}
        if msg.msg_type == "location":
            return {"kind": "location", "label": msg.label, "x": msg.location_x, "y": msg.location_y}
        if msg.is_card_click:
            card = self._card(msg.from_user, msg.task_id or "")
            summary = card_summary(card.body) if card else {}
            return {"kind": "click", "task_id": msg.task_id, "key": msg.event_key, "selected": msg.selected_items,
                    "card_title": summary.get("title", ""), "label": _click_label(card.body if card else {},
                                                                                    msg.event_key or "",
                                                                                    msg.selected_items)}
        return {"kind": "event", "event": msg.event or msg.msg_type, "key": msg.event_key}

    def _card(self, userid: str, task_id: str) -> Delivered | None:
        with self.state.lock:
            return next((m for m in self.state.messages
                         if m.task_id == task_id and m.touser == userid and m.msgtype == "template_card"), None)

    def _action(self, msg: Inbound, sent: dict[str, Any]) -> dict[str, Any]:
        """The transcript step's action: replayable without ids that change from run to run."""
        kind = sent["kind"]
        if kind == "click":
            ref = self.recorder.card_ref(msg.from_user, msg.task_id or "", sent["card_title"])
            action: dict[str, Any] = {"click": {**ref, "key": msg.event_key or ""}}
            if msg.selected_items:
                action["click"]["selected"] = msg.selected_items
            return action
        send = {k: v for k, v in sent.items() if k not in ("kind", "media_id") and v not in (None, "")}
        send = {"type": kind, **send}
        if kind in ("image", "voice", "video"):
            with self.state.lock:
                item = self.state.media.get(msg.media_id or "")
            if item is not None:
                send["content_type"] = item[2]
                if len(item[1]) <= 65536:
                    send["data_b64"] = base64.b64encode(item[1]).decode()
                else:
                    send["size"] = len(item[1])
        return {"send": send}

    # ---- watching the API wire -------------------------------------------------------------------

    def observe_api(self, api: str, method: str, query: dict[str, str], request_shown: str,
                    result: dict[str, Any] | bytes, ctype: str, elapsed_ms: float, user: str | None = None) -> None:
        errcode = 0
        if isinstance(result, dict):
            errcode = int(result.get("errcode", 0) or 0)
            response_shown = json.dumps(result, ensure_ascii=False, indent=1)
        else:
            response_shown = f"[{ctype}，{len(result)} 字节]"
        self.emit("wire", kind="api", api=api, method=method, query=mask_token(query), request_body=request_shown,
                  response_body=response_shown, errcode=errcode, elapsed_ms=round(elapsed_ms, 1), user=user)


def _click_label(body: dict[str, Any], key: str, selected: dict[str, list[str]]) -> str:
    """The button text, or the chosen options, of a click, as the member saw them."""
    for b in body.get("button_list") or []:
        if b.get("key") == key:
            label = str(b.get("text", key))
            break
    else:
        submit = body.get("submit_button") or {}
        label = str(submit.get("text", key)) if submit.get("key") == key else key
    texts: list[str] = []
    options: dict[str, dict[str, str]] = {}
    groups = [body.get("checkbox")] if body.get("checkbox") else []
    groups += body.get("select_list") or []
    if body.get("button_selection"):
        groups.append(body["button_selection"])
    for g in groups:
        options[str(g.get("question_key"))] = {str(o.get("id")): str(o.get("text")) for o in g.get("option_list") or []}
    for q, ids in (selected or {}).items():
        texts += [options.get(q, {}).get(i, i) for i in ids]
    return label + (f"（{'、'.join(texts)}）" if texts else "")


class CallbackObserver:
    """WSGI middleware around the app: shows every /wecom/callback exchange on the emulator's wire."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], emulator: Emulator) -> None:
        self.wsgi_app = wsgi_app
        self.emulator = emulator

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/wecom/callback" or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = int(self.emulator.rt.config.get("wecom.max_body_bytes"))
        if length <= 0 or length > limit:
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        msg, plain, error = self.emulator.decode_request(query, body)
        step = None
        if msg is not None:
            try:
                step = self.emulator.before_callback(msg)
            except Exception:
                log.exception("emulator could not record a callback")
        captured: dict[str, int] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        started = time.perf_counter()
        result = self.wsgi_app(environ, capture)
        try:
            response = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        try:
            self.emulator.after_callback(query, body, msg, plain, error, captured.get("status", 500), response,
                                         (time.perf_counter() - started) * 1000, step)
        except Exception:
            log.exception("emulator could not record a callback")
        return [response]
