"""The emulator's fake WeCom API (bot/emulator/state.py ``WeComState``) as a small process on loopback,
for the outbox benchmark and the scale-out run: salesbot workers reach it through ``wecom.api_base_url``.

    gunicorn -w 1 -k gthread --threads 8 'bench.fake_wecom:app'   (one process: the state is in memory)

``/cgi-bin/<api>`` is WeCom's API as ``WeComState.handle`` answers it (token checks, validation,
enable_duplicate_check, …). Control endpoints for the benchmark drivers:

- ``POST /_members`` ``{"userids": [...]}`` adds members to the directory;
- ``GET /_messages`` every message shown, in order (touser, msgtype, body, at, task_id, response_code);
- ``GET /_calls`` how many calls each API got;
- ``GET /_rate`` the most messages any member got within one wall-clock minute (WeCom's limit is 30).

Corp id, secret and agent id come from SALESBOT_WECOM_CORP_ID / _SECRET / _AGENT_ID.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from flask import Flask, Response, jsonify, request

from bot.emulator.state import WeComState

state = WeComState(corp_id=os.environ.get("SALESBOT_WECOM_CORP_ID", "wwbench0000000001"),
                   secret=os.environ.get("SALESBOT_WECOM_SECRET", "bench-secret-0123456789"),
                   agent_id=int(os.environ.get("SALESBOT_WECOM_AGENT_ID", "1000002")))
calls: Counter[str] = Counter()
app = Flask("fake_wecom")


@app.route("/cgi-bin/<path:api>", methods=["GET", "POST"])
def call(api: str) -> Response:
    files = {name: (f.filename or "", f.read(), f.mimetype or "application/octet-stream")
             for name, f in request.files.items()}
    body = None if files else (request.get_data() or None)
    with state.lock:
        calls[api] += 1
        del state.calls[:]  # the test aid would grow forever under load
    result, ctype = state.handle(api, request.args.to_dict(), body, files)
    if isinstance(result, bytes):
        return Response(result, mimetype=ctype)
    return Response(json.dumps(result, ensure_ascii=False), mimetype="application/json")


@app.post("/_members")
def members() -> Response:
    for userid in request.get_json(force=True).get("userids", []):
        state.add_member(str(userid), str(userid))
    return jsonify(members=len(state.members))


@app.get("/_messages")
def messages() -> Response:
    with state.lock:
        out: list[dict[str, Any]] = [{"touser": m.touser, "msgtype": m.msgtype, "body": m.body, "at": m.at,
                                      "task_id": m.task_id, "response_code": m.response_code}
                                     for m in state.messages]
    return jsonify(out)


@app.get("/_calls")
def call_counts() -> Response:
    with state.lock:
        return jsonify(dict(calls))


@app.get("/_rate")
def rate() -> Response:
    with state.lock:
        per_minute = Counter((m.touser, int(m.at // 60)) for m in state.messages)
    return jsonify(max_per_member_minute=max(per_minute.values(), default=0))
