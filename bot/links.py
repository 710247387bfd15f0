"""GET /t/<token> (tracked links) and POST /hooks/product-events (signed product events).

Both store the event in one short transaction and answer at once; reminders and stage upgrades run
afterwards in the background (and the customer_events job catches anything left behind).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.runtime import Runtime
from domain.crawlers import is_preview_or_bot
from jobs.customer_events import process_event
from storage.behaviour import CustomerEvent, LinkItem, TrackedLink
from storage.sales import Customer

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)

NOT_FOUND_PAGE = ("<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>链接不存在</title></head>"
                  "<body style='font-family:sans-serif;margin:40px'><h2>链接不存在或已失效</h2>"
                  "<p>请联系发送链接给您的销售顾问获取新的链接。</p></body></html>")
MAX_EVENT_BYTES = 64 * 1024
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_EVENT_ID = 100  # customer_events.external_id is "product:" + id, at most 128 characters
MAX_ROW_ID = 2**63 - 1  # a BIGINT primary key


def _rt() -> Runtime:
    return current_app.extensions["salesbot"]


def _background(rt: Runtime, event_id: int) -> None:
    def run() -> None:
        try:
            process_event(rt, event_id)
        except Exception:
            log.exception("event processing failed; the customer_events job will retry", extra={"event": event_id})

    current_app.extensions["salesbot.executor"].submit(run)


def _ip_hash(rt: Runtime, ip: str | None) -> str | None:
    if not ip:
        return None
    salt = str(rt.config.get("server.secret_key") or rt.config.get("wecom.secret"))
    return hashlib.sha256(f"{salt}:{ip}".encode()).hexdigest()


@bp.get("/t/<token>")
def follow(token: str) -> Response:
    rt = _rt()
    if not TOKEN_RE.fullmatch(token):  # never ours (token_urlsafe); NUL would even upset PostgreSQL
        return Response(NOT_FOUND_PAGE, status=404, mimetype="text/html")
    ua = request.headers.get("User-Agent", "")
    with rt.db.transaction() as s:
        row = s.scalar(select(TrackedLink).where(TrackedLink.token == token))
        item = s.get(LinkItem, row.item_id) if row is not None else None
        if row is None or row.revoked or item is None or not item.active:
            return Response(NOT_FOUND_PAGE, status=404, mimetype="text/html")
        preview = is_preview_or_bot(ua)
        ev = CustomerEvent(customer_id=row.customer_id, type="link_preview" if preview else "link_click",
                           category=item.category, item_id=item.id, source="link", occurred_at=datetime.now(rt.config.tz),
                           data={"token": token}, user_agent=ua[:512], ip_hash=_ip_hash(rt, request.remote_addr))
        if preview:
            ev.processed_at = ev.occurred_at
        s.add(ev)
        s.flush()
        event_id, target = ev.id, item.url
    if not preview:
        _background(rt, event_id)
    # the target is the stored URL only, never anything from the request: no open redirect
    resp = redirect(target, code=302)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp  # type: ignore[return-value]


def _bad(field: str, problem: str, status: int = 400) -> tuple[Response, int]:
    return jsonify(error=problem, field=field), status


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            return None
        when.astimezone(UTC)  # 0001-01-01T00:00+14:00 has no UTC time
    except (ValueError, OverflowError):
        return None
    return when


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _plain_text(value: Any) -> bool:
    """A non-empty string or integer id without NUL characters (which PostgreSQL text cannot hold)."""
    return (isinstance(value, str | int) and not isinstance(value, bool) and bool(str(value).strip())
            and "\x00" not in str(value))


@bp.post("/hooks/product-events")
def product_event() -> tuple[Response, int]:
    rt = _rt()
    secret = str(rt.config.get("hooks.product_events_secret"))
    if not secret:
        return _bad("X-Salesbot-Signature", "product events are not configured (hooks.product_events_secret)", 503)
    raw = request.get_data(cache=False)
    if len(raw) > MAX_EVENT_BYTES:
        return _bad("body", "body too large", 413)
    given = request.headers.get("X-Salesbot-Signature", "").strip()
    if given.startswith("sha256="):
        given = given[len("sha256="):]
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        return _bad("X-Salesbot-Signature", "bad signature", 401)
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)  # no NaN / Infinity
    except (UnicodeDecodeError, ValueError) as exc:
        return _bad("body", f"not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _bad("body", "must be a JSON object")
    event_id = body.get("id")
    if not _plain_text(event_id) or len(str(event_id)) > MAX_EVENT_ID:
        return _bad("id", f"required: a non-empty string of at most {MAX_EVENT_ID} characters")
    ref = body.get("customer")
    if not _plain_text(ref):
        return _bad("customer", "required: our customer id or the unified social credit code")
    etype = body.get("type")
    if not _plain_text(etype) or not isinstance(etype, str) or len(etype) > 64:
        return _bad("type", "required: the event type, e.g. login or trial_requested")
    occurred = _parse_time(body.get("occurred_at"))
    if occurred is None:
        return _bad("occurred_at", "required: an ISO 8601 time with a zone, e.g. 2026-11-28T10:00:00+08:00")
    data = body.get("data", {})
    if not isinstance(data, dict):
        return _bad("data", "must be a JSON object")
    with rt.db.transaction() as s:
        customer = None
        if str(ref).isdecimal() and 0 < int(ref) <= MAX_ROW_ID:
            customer = s.get(Customer, int(ref))
        if customer is None:
            customer = s.scalar(select(Customer).where(Customer.credit_code == str(ref).upper()))
        if customer is None:
            return _bad("customer", f"unknown customer {str(ref)[:40]!r}", 422)
        external = f"product:{event_id}"
        if s.scalar(select(CustomerEvent.id).where(CustomerEvent.external_id == external)) is not None:
            return jsonify(status="duplicate"), 200
        ev = CustomerEvent(customer_id=customer.id, type=etype.strip().lower(), source="product",
                           external_id=external, occurred_at=occurred, data=data)
        try:
            with s.begin_nested():
                s.add(ev)
                s.flush()
        except IntegrityError:
            return jsonify(status="duplicate"), 200
        new_id = ev.id
    _background(rt, new_id)
    return jsonify(status="accepted"), 202


def register(app: Flask, rt: Runtime) -> None:
    app.register_blueprint(bp)
