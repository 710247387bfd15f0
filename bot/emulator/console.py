"""The console: /dev/ (a page to chat as any member) and the JSON endpoints it and `salesbot chat` use.

Sending as a member goes through the real callback (encrypted, signed, via /wecom/callback); what
members receive comes from the fake API's state; the page follows the timeline by long polling
``/dev/api/events?since=<id>``.
"""

from __future__ import annotations

import mimetypes
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

from bot.emulator.hub import Emulator, content_disposition, delivered_dict

STATIC = Path(__file__).parent / "static"
USERID_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
MAX_WAIT_S = 25.0
WIRE_ON_LOAD = 300
MEDIA_KINDS = {"image", "voice", "video"}

bp = Blueprint("emulator_console", __name__, url_prefix="/dev", static_folder=str(STATIC),
               static_url_path="/static")


def emulator() -> Emulator:
    return current_app.extensions["salesbot.emulator"]  # type: ignore[no-any-return]


def _bad(problem: str, status: int = 400) -> tuple[Response, int]:
    return jsonify(error=problem), status


def _userid(value: Any) -> str | None:
    value = str(value or "").strip()
    return value if USERID_RE.match(value) else None


@bp.get("/")
def page() -> Response:
    resp = send_from_directory(STATIC, "console.html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/static/cjk-font")
def cjk_font() -> Response:
    """The CJK font the charts use, offered to the console page for browsers without one."""
    from domain.fonts import cjk_font_path

    path = cjk_font_path()
    return send_from_directory(path.parent, path.name, max_age=86400)


@bp.get("/api/state")
def state() -> Response:
    emu = emulator()
    last = emu.last_event_id
    events = emu.events(0)
    wires = [e["id"] for e in events if e["type"] == "wire"]
    if len(wires) > WIRE_ON_LOAD:  # the bulky part of the history; the chats are kept whole
        cut = wires[-WIRE_ON_LOAD]
        events = [e for e in events if e["type"] != "wire" or e["id"] >= cut]
    return jsonify(epoch=emu.epoch, corp_id=emu.corp_id, agent_id=emu.agent_id, members=emu.members(),
                   events=events, last=last, steps=len(emu.recorder.steps))


@bp.get("/api/events")
def events() -> Response:
    emu = emulator()
    since = request.args.get("since", default=0, type=int)
    wait = min(MAX_WAIT_S, max(0.0, request.args.get("wait", default=0.0, type=float)))
    if request.args.get("epoch") not in (None, "", emu.epoch):
        wait = 0.0  # the page talks to an older run: answer now so it reloads
    found = emu.events(since, wait)
    last = found[-1]["id"] if found else max(since, 0)
    return jsonify(epoch=emu.epoch, events=found, last=last, steps=len(emu.recorder.steps))


@bp.get("/api/members")
def members() -> Response:
    return jsonify(members=emulator().members())


@bp.post("/api/members")
def add_member() -> Response | tuple[Response, int]:
    data = request.get_json(silent=True) or {}
    userid = _userid(data.get("userid"))
    if userid is None:
        return _bad("userid 只能包含字母、数字和 _ . @ -，长度 1–64")
    emulator().ensure_member(userid, str(data.get("name") or userid)[:64])
    return jsonify(members=emulator().members())


@bp.post("/api/send")
def send() -> Response | tuple[Response, int]:
    """As member ``as``: text, link, location (JSON) or image / voice / video (multipart ``file``)."""
    emu = emulator()
    data: dict[str, Any] = dict(request.form) if request.mimetype == "multipart/form-data" else \
        (request.get_json(silent=True) or {})
    userid = _userid(data.get("as"))
    if userid is None:
        return _bad("缺少或无效的成员账号 as")
    kind = str(data.get("type") or "text")
    if kind == "text":
        content = str(data.get("content") or "")
        if not content.strip():
            return _bad("消息为空")
        status, reply = emu.send_text(userid, content)
    elif kind in MEDIA_KINDS:
        upload = request.files.get("file")
        if upload is None:
            return _bad("请选择文件")
        payload = upload.read()
        if len(payload) <= 5:
            return _bad("文件太小（企业微信要求大于 5 字节）")
        filename = upload.filename or f"{kind}.bin"
        ctype = upload.mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        status, reply = emu.send_media(userid, kind, payload, filename, ctype, request.host_url)
    elif kind == "link":
        url = str(data.get("url") or "")
        if not url.startswith(("http://", "https://")):
            return _bad("链接须以 http:// 或 https:// 开头")
        status, reply = emu.send_message(userid, "link", {
            "Title": str(data.get("title") or url)[:128], "Description": str(data.get("description") or "")[:512],
            "Url": url, "PicUrl": str(data.get("pic_url") or "")})
    elif kind == "location":
        status, reply = emu.send_message(userid, "location", {
            "Location_X": str(data.get("x") or "31.2304"), "Location_Y": str(data.get("y") or "121.4737"),
            "Scale": "15", "Label": str(data.get("label") or "上海市"), "AppType": "wxwork"})
    else:
        return _bad(f"不支持的消息类型 {kind}")
    return jsonify(status=status, reply=reply)


@bp.post("/api/click")
def click() -> Response | tuple[Response, int]:
    """Member ``as`` clicks button ``key`` of card ``seq`` (``selected``: question → option ids)."""
    emu = emulator()
    data = request.get_json(silent=True) or {}
    userid = _userid(data.get("as"))
    if userid is None:
        return _bad("缺少或无效的成员账号 as")
    selected = data.get("selected") or {}
    if not isinstance(selected, dict) or not all(isinstance(v, list) for v in selected.values()):
        return _bad("selected 应为 {question_key: [option_id, …]}")
    try:
        status, reply = emu.click(userid, int(data.get("seq", 0)), str(data.get("key") or ""),
                                  {str(k): [str(x) for x in v] for k, v in selected.items()})
    except (LookupError, ValueError) as exc:
        return _bad(str(exc), 404)
    return jsonify(status=status, reply=reply)


@bp.get("/api/media/<media_id>")
def media(media_id: str) -> Response | tuple[Response, int]:
    """A media file's bytes (what media/get returns), for <img> tags and voice downloads."""
    emu = emulator()
    with emu.state.lock:
        item = emu.state.media.get(media_id)
    if item is None:
        return _bad("没有这个 media_id", 404)
    filename, payload, ctype = item
    inline = ctype.startswith("image/")
    return Response(payload, mimetype=ctype, headers={
        "Content-Disposition": content_disposition("inline" if inline else "attachment", filename or media_id)})


@bp.get("/api/inbox")
def inbox() -> Response | tuple[Response, int]:
    """What one member's phone holds after ``since`` (a message seq): for `salesbot chat`."""
    emu = emulator()
    userid = _userid(request.args.get("user"))
    if userid is None:
        return _bad("缺少或无效的成员账号 user")
    since = request.args.get("since", default=0, type=int)
    with emu.state.lock:
        last = emu.state.messages[-1].seq if emu.state.messages else 0
    msgs = [delivered_dict(m) for m in emu.state.inbox(userid) if m.seq > since]
    return jsonify(user=userid, last_seq=last, messages=msgs)


@bp.get("/api/transcript")
def transcript() -> Response:
    """The conversation recorded since the last reset, as a transcript file to keep under tests/."""
    from bot.emulator.transcript import dump

    title = request.args.get("title", "")[:200]
    data = emulator().recorder.export(title)
    name = f"transcript-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    return Response(dump(data), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/api/transcript/reset")
def transcript_reset() -> Response:
    emu = emulator()
    emu.recorder.reset()
    emu.emit("recording", steps=0)
    return jsonify(steps=0)


@bp.post("/api/expire-tokens")
def expire_tokens() -> Response:
    """Make every issued access_token expired: the bot must refresh once and retry (42001)."""
    emu = emulator()
    emu.state.expire_tokens()
    emu.notice("所有 access_token 已设为过期；机器人下次调用接口时应刷新一次并重试。", level="info")
    return jsonify(ok=True)
