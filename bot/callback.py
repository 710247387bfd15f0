"""GET/POST /wecom/callback: verify → decrypt → dedup → handle (ack within WeCom's 5 s) → reply."""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint, Response, current_app, request

from bot.crypto import CallbackRejected
from bot.dispatch import Prefetched, ReplyChannel, prefetch_keys, process
from bot.inbound import Inbound, parse_inbound, safe_parse
from bot.out import CardUpdate, Out, Text
from bot.runtime import Runtime

log = logging.getLogger(__name__)

bp = Blueprint("wecom_callback", __name__)


def runtime() -> Runtime:
    return current_app.extensions["salesbot"]


def _executor() -> ThreadPoolExecutor:
    return current_app.extensions["salesbot.executor"]


def _reject(exc: CallbackRejected) -> Response:
    log.warning("callback rejected", extra={"reason": exc.reason, "remote": request.remote_addr})
    return Response(exc.reason, status=exc.status, mimetype="text/plain")


@bp.get("/wecom/callback")
def verify_url() -> Response:
    rt = runtime()
    args = request.args
    try:
        echo = rt.crypto.decrypt(args.get("msg_signature", ""), args.get("timestamp", ""),
                                 args.get("nonce", ""), args.get("echostr", ""))
    except CallbackRejected as exc:
        return _reject(exc)
    return Response(echo, mimetype="text/plain")


@bp.post("/wecom/callback")
def receive() -> Response:
    rt = runtime()
    limit = int(rt.config.get("wecom.max_body_bytes"))
    if (request.content_length or 0) > limit:
        return _reject(CallbackRejected("body too large", 413))
    body = request.get_data(cache=False)
    if len(body) > limit:
        return _reject(CallbackRejected("body too large", 413))
    args = request.args
    try:
        envelope = safe_parse(body)
        encrypt = (envelope.findtext("Encrypt") or "").strip()
        plaintext = rt.crypto.decrypt(args.get("msg_signature", ""), args.get("timestamp", ""),
                                      args.get("nonce", ""), encrypt)
        msg = parse_inbound(plaintext)
    except CallbackRejected as exc:
        return _reject(exc)

    # fast path of exactly-once: the first of concurrent deliveries takes the key in Redis;
    # the database's unique key stays the authority (Redis may be flushed or restarted). The same round
    # trip reads what the handler needs from Redis: the asker's dialog and the members version.
    dedup_key = "callback:" + msg.callback_key
    prefetched = None
    try:
        pipe = rt.redis.pipeline(transaction=False)
        pipe.set(dedup_key, "1", nx=True, ex=int(rt.config.get("wecom.dedup_ttl_s")))
        pipe.mget(prefetch_keys(msg.from_user))
        first, (dialog, members_version) = pipe.execute()
        prefetched = Prefetched(dialog, members_version)
    except Exception:
        log.exception("redis unavailable for dedup; relying on the database key")
        first = True
    if not first:
        log.info("duplicate callback dropped", extra={"key": msg.callback_key})
        return Response("", status=200)

    channel = ReplyChannel()
    _executor().submit(_process_logged, rt, msg, channel, prefetched)
    in_time, passive = channel.wait(float(rt.config.get("wecom.passive_reply_budget_s")))
    if channel.failed:
        # nothing was stored: answer 5xx so WeCom retries, and forget the fast-path key so the retry is let in
        try:
            rt.redis.delete(dedup_key)
        except Exception:
            log.exception("redis unavailable; the retry is let in once the key expires", extra={"key": dedup_key})
        return Response("temporarily unavailable", status=503, mimetype="text/plain")
    if not in_time:
        log.info("reply deferred to outbox", extra={"key": msg.callback_key})
    if passive is None:
        return Response("", status=200)
    return Response(rt.crypto.encrypt_reply(passive_xml(msg, passive, rt.config.get("wecom.agent_id"))),
                    mimetype="application/xml")


def _process_logged(rt: Runtime, msg: Inbound, channel: ReplyChannel, prefetched: Prefetched | None) -> None:
    try:
        process(rt, msg, channel, prefetched)
    except Exception:  # process() already logs and apologises; this is a last resort
        log.exception("unhandled error processing callback", extra={"key": msg.callback_key})
        channel.done.set()


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def passive_xml(msg: Inbound, out: Out, agent_id: int) -> str:
    """The plaintext of a passive reply: a text message, or update_button for a card click."""
    head = (f"<ToUserName>{_cdata(msg.from_user)}</ToUserName><FromUserName>{_cdata(msg.to_user)}"
            f"</FromUserName><CreateTime>{msg.create_time}</CreateTime>")
    if isinstance(out, CardUpdate):
        return (f"<xml>{head}<MsgType>{_cdata('update_button')}</MsgType>"
                f"<Button><ReplaceName>{_cdata(out.replace_name)}</ReplaceName></Button></xml>")
    assert isinstance(out, Text)
    return (f"<xml>{head}<MsgType>{_cdata('text')}</MsgType><Content>{_cdata(out.content)}</Content>"
            f"<AgentID>{agent_id}</AgentID><MsgId>{secrets.randbelow(10**18)}</MsgId></xml>")
