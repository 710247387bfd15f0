"""The fake WeCom API over HTTP: /dev/wecom/cgi-bin/<api>, answered by ``WeComState.handle``.

Served only when the emulator is enabled. It speaks WeCom's wire (query-string access_token, JSON
bodies, multipart field ``media`` for uploads, raw bytes from media/get) and shows every call on the
console's wire panel; a refused send is also shown, loudly, in the addressee's chat.
"""

from __future__ import annotations

import json
import mimetypes
import time
from typing import Any

from flask import Blueprint, Response, current_app, request

from bot.emulator.hub import Emulator, content_disposition

bp = Blueprint("emulator_api", __name__, url_prefix="/dev/wecom/cgi-bin")


def emulator() -> Emulator:
    return current_app.extensions["salesbot.emulator"]  # type: ignore[no-any-return]


@bp.route("/<path:api>", methods=["GET", "POST"])
def call(api: str) -> Response:
    emu = emulator()
    query = request.args.to_dict()
    files: dict[str, tuple[str, bytes, str]] = {}
    body: bytes | None = None
    if request.mimetype == "multipart/form-data":
        for name, f in request.files.items():
            filename = f.filename or ""
            ctype = f.mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
            files[name] = (filename, f.read(), ctype)
        shown = "multipart: " + ", ".join(f"{n}={v[0]!r}（{v[2]}，{len(v[1])} 字节）" for n, v in files.items())
    else:
        body = request.get_data() or None
        shown = _pretty(body)
    before = _card_target(emu, api, body)
    started = time.perf_counter()
    result, ctype = emu.state.handle(api, query, body, files)
    emu.observe_api(api, request.method, query, shown, result, ctype, (time.perf_counter() - started) * 1000,
                    _addressee(body))
    if isinstance(result, bytes):
        filename = ""
        with emu.state.lock:
            item = emu.state.media.get(query.get("media_id", ""))
        if item is not None:
            filename = item[0]
        return Response(result, mimetype=ctype,
                        headers={"Content-Disposition": content_disposition("attachment", filename or "media")})
    errcode = int(result.get("errcode", 0) or 0)
    if api == "message/send" and errcode:
        _loud_refusal(emu, body, result)
    if api == "message/update_template_card" and not errcode and before is not None:
        emu.card_changed(before[0], before[1], "update")
    return Response(json.dumps(result, ensure_ascii=False), mimetype="application/json")


def _pretty(body: bytes | None) -> str:
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), ensure_ascii=False, indent=1)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")[:4096]


def _addressee(body: bytes | None) -> str | None:
    """The first member a send or card update is for (to file the call under their chat)."""
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    users = payload.get("userids") or str(payload.get("touser") or "").split("|")
    return str(users[0]) if users and users[0] else None


def _card_target(emu: Emulator, api: str, body: bytes | None) -> tuple[str, str] | None:
    """(userid, task_id) of the card an update_template_card call will change."""
    if api != "message/update_template_card" or not body:
        return None
    try:
        code = str(json.loads(body).get("response_code", ""))
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    with emu.state.lock:
        return emu.state.response_codes.get(code)


def _loud_refusal(emu: Emulator, body: bytes | None, result: dict[str, Any]) -> None:
    """Real WeCom may drop or truncate silently; the emulator shows a refused send in the chat."""
    touser = ""
    try:
        payload = json.loads(body or b"{}")
        touser = str(payload.get("touser", ""))
        msgtype = str(payload.get("msgtype", ""))
    except (ValueError, UnicodeDecodeError, AttributeError):
        msgtype = ""
    text = f"企业微信拒绝了一条 {msgtype} 消息：errcode {result.get('errcode')} {result.get('errmsg', '')}"
    users = [u for u in touser.split("|") if u] or [None]
    for u in users:
        emu.notice(text, u if u in emu.state.members else None)
