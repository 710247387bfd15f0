"""GET|POST /upload/<token>: the file upload page opened inside WeCom.

The member is identified by WeCom OAuth (snsapi_base): the page redirects to the authorize URL, WeCom
comes back with ?code=…, auth/getuserinfo turns it into a userid, and only the member the link was
made for may upload. The file is stored, attached to the visit or opportunity, counted as evidence,
and the member is told in the chat.
"""

from __future__ import annotations

import hashlib
import logging
from html import escape
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, redirect, request, session

from bot import messages as M
from bot.out import Text
from bot.outbox import enqueue
from bot.runtime import Runtime
from domain.gates import FILE
from handlers.common import gate_config
from handlers.pipeline import add_evidence, complete_pending, missing_for
from storage.blobs import store_blob
from storage.sales import Attachment, Opportunity, UploadToken, Visit
from storage.types import utcnow

log = logging.getLogger(__name__)
bp = Blueprint("upload", __name__)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:560px}}button{{padding:10px 18px}}</style></head>
<body><h2>{title}</h2>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(PAGE.format(title=escape(title), body=body), status=status, mimetype="text/html")


def _rt() -> Runtime:
    return current_app.extensions["salesbot"]


def _token(token: str) -> UploadToken | None:
    with _rt().db.sessions() as s:
        row = s.get(UploadToken, token)
    if row is None or row.expires_at < utcnow():
        return None
    return row


def _authorize_url(rt: Runtime, token: str) -> str:
    base = str(rt.config.get("server.public_base_url")).rstrip("/")
    params = {"appid": rt.config.get("wecom.corp_id"), "redirect_uri": f"{base}/upload/{token}",
              "response_type": "code", "scope": "snsapi_base", "state": "upload",
              "agentid": rt.config.get("wecom.agent_id")}
    return f"{rt.config.get('wecom.oauth_authorize_url')}?{urlencode(params)}#wechat_redirect"


@bp.get("/upload/<token>")
def upload_page(token: str) -> Response:
    rt = _rt()
    row = _token(token)
    if row is None:
        return _page("链接已失效", "<p>这个上传链接不存在或已过期，请在企业微信里重新获取。</p>", 404)
    code = request.args.get("code")
    if code:
        try:
            userid = rt.wecom.oauth_userid(code)
        except Exception as exc:
            log.warning("oauth code exchange failed", extra={"error": type(exc).__name__})
            return _page("身份验证失败", "<p>无法确认您的身份，请在企业微信里重新打开链接。</p>", 403)
        session["upload_user"] = userid
    userid = session.get("upload_user")
    if userid is None:
        return redirect(_authorize_url(rt, token))  # type: ignore[return-value]
    if userid != row.userid:
        return _page("无权上传", "<p>这个上传链接是发给其他成员的，您无权使用。</p>", 403)
    limit_mb = int(rt.config.get("server.max_upload_bytes")) // (1024 * 1024)
    form = (f'<p>选择要附加的文件（Excel、PDF、Word 等，最大 {limit_mb} MB）：</p>'
            f'<form method="post" enctype="multipart/form-data"><input type="file" name="file" required> '
            f'<button type="submit">上传</button></form>')
    return _page("上传文件", form)


@bp.post("/upload/<token>")
def upload_file(token: str) -> Response:
    rt = _rt()
    row = _token(token)
    if row is None:
        return _page("链接已失效", "<p>这个上传链接不存在或已过期。</p>", 404)
    if session.get("upload_user") != row.userid:
        return _page("无权上传", "<p>请在企业微信里打开链接后再上传。</p>", 403)
    f = request.files.get("file")
    if f is None or not f.filename:
        return _page("没有文件", "<p>请选择一个文件再上传。</p>", 400)
    content = f.read(int(rt.config.get("server.max_upload_bytes")) + 1)
    if len(content) > int(rt.config.get("server.max_upload_bytes")):
        return _page("文件太大", "<p>文件超过大小限制，请压缩后再上传。</p>", 413)
    if not content:
        return _page("空文件", "<p>这个文件是空的。</p>", 400)
    with rt.db.transaction() as s:
        message = attach_upload(rt, s, row, f.filename, f.mimetype or "application/octet-stream", content)
        enqueue(s, row.userid, Text(message))
    return _page("上传成功", f"<p>{escape(message)}</p><p>可以关闭此页面回到企业微信。</p>")


def attach_upload(rt: Runtime, s, row: UploadToken, filename: str, ctype: str, content: bytes) -> str:  # type: ignore[no-untyped-def]
    """Store the file on its target; returns what to tell the member."""
    blob = store_blob(s, content)
    target = row.target
    att = Attachment(kind="file", blob_id=blob.id, filename=filename[:255], content_type=ctype, size=blob.size,
                     uploaded_by=row.userid)
    message = f"已收到文件《{filename}》。"
    if target.get("kind") == "visit":
        visit = s.get(Visit, target["visit_id"])
        if visit is not None:
            att.visit_id, att.customer_id = visit.id, visit.customer_id
        s.add(att)
        s.flush()
        return message + "已附到拜访记录。"
    if target.get("kind") == "promise":
        from storage.payments import Promise

        promise = s.get(Promise, target["promise_id"])
        if promise is not None:
            att.customer_id, att.tag = promise.customer_id, "payment_letter"
            s.add(att)
            s.flush()
            promise.letter_attachment_id = att.id
            return message + M.PROMISE_A.format(id=promise.id)
        s.add(att)
        return message
    opp = s.get(Opportunity, target.get("opportunity_id"))
    if opp is None:
        s.add(att)
        return message
    att.opportunity_id, att.customer_id = opp.id, opp.customer_id
    config = gate_config(s)
    missing = missing_for(s, config, opp, opp.pending_stage) if opp.pending_stage else []
    item = next((i for i in missing if i.accepts(FILE)), None)
    att.tag = item.key if item else None
    s.add(att)
    s.flush()
    if item is not None:
        add_evidence(s, opp, item.key, row.userid, attachment_id=att.id)
        message += f"作为「{item.name}」。"
        target_stage, from_stage = opp.pending_stage, opp.stage
        if complete_pending(s, config, opp, utcnow().astimezone(rt.config.tz)):
            from domain.stages import stage_name

            message += M.MOVE_DONE.format(id=opp.id, customer="", from_stage=stage_name(from_stage),
                                          to_stage=stage_name(target_stage or "")).replace("（）", "")
    return message


def register(app: Flask, rt: Runtime) -> None:
    secret = rt.config.get("server.secret_key") or hashlib.sha256(
        ("salesbot-upload:" + str(rt.config.get("wecom.secret"))).encode()).hexdigest()
    app.secret_key = secret
    app.register_blueprint(bp)

