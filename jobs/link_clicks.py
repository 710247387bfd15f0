"""Tracked-link clicks: queued in Redis by the redirect, moved into ``customer_events`` in batches.

``GET /t/<token>`` (bot/links.py) answers at once and leaves one compact JSON record per click in an
in-process buffer; the web process pushes the buffer to the Redis list ``links:clicks`` every
``links.click_flush_ms`` in one RPUSH. (The first click of a process, the first after a quiet spell, and
every click with ``click_flush_ms = 0`` are appended in the request's own round trip instead.) When Redis
is unreachable the web process stores the records itself with ``store_clicks``, under the same
exactly-once rules as the drain. ``drain`` moves queued clicks into ``customer_events``, one transaction
per batch of up to ``BATCH``. Each click carries an id made on the request path and is stored as
external_id ``click:<id>`` (unique), so a drain that dies after its commit but before removing the batch
from the queue stores nothing twice when the batch is read again. One drainer at a time (a Redis lock); a
batch is trimmed from the head of the list only while the lock is still ours (WATCH), so a drainer that
lost its lock never removes clicks it did not store. Only drainers remove from the list; the web process
only appends (a click queued in its own round trip on a link revoked a moment earlier is cancelled by
appending a cancel record; a buffered click is checked before it is buffered and needs none). A record
both queued and stored directly (an RPUSH whose reply was lost) is stored once: stored click ids are
skipped.

After draining, the follow-ups (reminder, upgrade rules) of some stored clicks run at once through
``jobs.customer_events.process_event``; the ``customer_events`` job catches the rest.

Who drains: the ``link_clicks`` job, every few seconds in the worker(s). Each run first marks the worker
as draining (``WORKER_KEY``, naming its process, alive for 3 × the job's interval, ``worker_ttl_s``) and
marks it again when done. The web process drains only as a fallback, in its background executor (at most
once a second per process, kicked when a flush has pushed clicks): before draining it reads ``WORKER_KEY``
(one GET, off the request path) and leaves the queue alone while another process's job keeps it alive.
So in production the web tier spends its CPU on redirects; when no worker drains (none deployed, stopped
or dead, the job disabled) the mark lapses within ``worker_ttl_s`` and the web processes drain again. A
mark set by the web process's own scheduler (``salesbot demo`` runs everything in one process) does not
stop it, so a single process still stores clicks and reminds within a second or two. The web drain
follows up only when it stored a few clicks, so a burst leaves the CPU to the redirects. Skipping a drain
changes nothing about exactly-once: whoever drains next stores the same records under the same rules.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from jobs.customer_events import process_event
from jobs.registry import job
from storage.behaviour import CustomerEvent
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

QUEUE = "links:clicks"
LOCK = "links:clicks:drain"
LOCK_MS = 60_000
WORKER_KEY = "links:clicks:worker"  # set by each link_clicks job run: a worker is draining, web please don't
WORKER_TTL_FALLBACK_S = 15  # under a cron schedule (a minute apart at least) the web drains between runs
BATCH = 500
MAX_PER_DRAIN = 50_000  # a run stops after this many; the next run goes on
JOB_FOLLOWUPS = 200  # follow-ups a job run processes at once (the customer_events job does the rest)
WEB_FOLLOWUPS = 20  # the web process follows up only when its drain stored at most this many
EXTERNAL_PREFIX = "click:"


def new_click_id() -> str:
    return os.urandom(16).hex()


def encode_click(click_id: str, token: str, customer_id: int, item_id: int, category: str, preview: bool,
                 at: float, user_agent: str, ip_hash: str | None) -> str:
    """The queued record, a JSON array (one list item per click): id, token, customer, item, category,
    preview (0/1), epoch seconds, User-Agent, IP hash."""
    return json.dumps([click_id, token, customer_id, item_id, category, 1 if preview else 0, at, user_agent,
                       ip_hash], separators=(",", ":"))


def encode_cancel(click_id: str) -> str:
    """Appended when the click's link turned out to be revoked after it was queued (the visitor got a 404)."""
    return json.dumps({"x": click_id}, separators=(",", ":"))


@dataclass(frozen=True)
class Click:
    id: str
    token: str
    customer_id: int
    item_id: int
    category: str
    preview: bool
    at: float
    user_agent: str
    ip_hash: str | None


def event_values(rt: Runtime, c: Click) -> dict[str, Any]:
    """customer_events columns of a click."""
    at = datetime.fromtimestamp(c.at, rt.config.tz)
    return {"customer_id": c.customer_id, "type": "link_preview" if c.preview else "link_click",
            "category": c.category, "item_id": c.item_id, "source": "link", "external_id": EXTERNAL_PREFIX + c.id,
            "occurred_at": at, "received_at": utcnow(), "data": {"token": c.token}, "user_agent": c.user_agent,
            "ip_hash": c.ip_hash, "processed_at": at if c.preview else None}


def _decode(raw: Iterable[str]) -> tuple[list[Click], set[str]]:
    found: list[Click] = []
    cancelled: set[str] = set()
    for line in raw:
        try:
            rec = json.loads(line)
            if isinstance(rec, dict):
                cancelled.add(str(rec["x"]))
                continue
            cid, token, customer, item, category, preview, at, ua, ip = rec
            found.append(Click(str(cid), str(token), int(customer), int(item), str(category), bool(preview),
                               float(at), str(ua), None if ip is None else str(ip)))
        except (ValueError, TypeError, KeyError):
            log.error("unreadable queued click dropped", extra={"record": str(line)[:200]})
    return found, cancelled


def store_clicks(rt: Runtime, raw: list[str]) -> int:
    """Store a batch of queued records in one transaction; clicks already stored are skipped. Returns how
    many were new."""
    found, cancelled = _decode(raw)
    rows = {EXTERNAL_PREFIX + c.id: event_values(rt, c) for c in found if c.id not in cancelled}
    with rt.db.transaction() as s:
        if cancelled:  # the click was stored by an earlier batch: take it back unless already followed up
            s.execute(delete(CustomerEvent).where(
                CustomerEvent.external_id.in_([EXTERNAL_PREFIX + c for c in cancelled]),
                CustomerEvent.processed_at.is_(None)))
        if not rows:
            return 0
        known = set(s.scalars(select(CustomerEvent.external_id).where(CustomerEvent.external_id.in_(list(rows)))))
        new = [v for k, v in rows.items() if k not in known]
        if not new:
            return 0
        try:
            with s.begin_nested():
                s.execute(insert(CustomerEvent), new)
            return len(new)
        except IntegrityError:
            pass  # a concurrent drainer stored some of them, or a customer/item is gone: one at a time
        stored = 0
        for values in new:
            try:
                with s.begin_nested():
                    s.execute(insert(CustomerEvent), [values])
                stored += 1
            except IntegrityError:
                if s.scalar(select(CustomerEvent.id).where(CustomerEvent.external_id == values["external_id"])) is None:
                    log.error("queued click could not be stored; dropped",
                              extra={"click": values["external_id"], "customer": values["customer_id"]})
        return stored


def _acquire(r: redis.Redis, me: str, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        if r.set(LOCK, me, nx=True, px=LOCK_MS):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _trim(r: redis.Redis, n: int, me: str) -> bool:
    """Remove the first ``n`` records if the lock is still ours (and keep it); False when it is not."""
    with r.pipeline() as p:
        try:
            p.watch(LOCK)
            if p.get(LOCK) != me:
                return False
            p.multi()
            p.ltrim(QUEUE, n, -1)
            p.pexpire(LOCK, LOCK_MS)
            p.execute()
        except redis.WatchError:
            return False
    return True


def _release(r: redis.Redis, me: str) -> None:
    with r.pipeline() as p:
        try:
            p.watch(LOCK)
            if p.get(LOCK) == me:
                p.multi()
                p.delete(LOCK)
                p.execute()
        except redis.WatchError:
            pass


def run_followups(rt: Runtime, limit: int) -> int:
    """Reminder and upgrade rules for up to ``limit`` stored, unprocessed clicks, oldest first."""
    if limit <= 0:
        return 0
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(CustomerEvent.id).where(CustomerEvent.processed_at.is_(None),
                                                            CustomerEvent.source == "link")
                             .order_by(CustomerEvent.id).limit(limit)))
    done = 0
    for event_id in ids:
        try:
            process_event(rt, event_id)
            done += 1
        except Exception:
            log.exception("click follow-up failed; the customer_events job will retry", extra={"event": event_id})
    return done


def drain(rt: Runtime, *, followups: int = JOB_FOLLOWUPS, max_clicks: int = MAX_PER_DRAIN,
          wait_s: float = 0.0) -> tuple[int, int]:
    """Move queued clicks into customer_events, then run some follow-ups. Returns (stored, followed up);
    (0, 0) without waiting longer than ``wait_s`` when another process is draining."""
    me = uuid.uuid4().hex
    if not _acquire(rt.redis, me, wait_s):
        return 0, 0
    stored = seen = 0
    try:
        while seen < max_clicks:
            raw = rt.redis.lrange(QUEUE, 0, BATCH - 1)
            if not raw:
                break
            stored += store_clicks(rt, raw)  # type: ignore[arg-type]
            seen += len(raw)  # type: ignore[arg-type]
            if not _trim(rt.redis, len(raw), me):  # type: ignore[arg-type]
                log.warning("click drain lost its lock; the next drain goes on")
                break
    finally:
        _release(rt.redis, me)
    return stored, run_followups(rt, followups)


def process_id() -> str:
    """This process, as named in ``WORKER_KEY`` (computed per call: gunicorn forks its workers)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_ttl_s(rt: Runtime) -> int:
    """How long a job run's mark lasts: 3 × the configured interval, so one late or slow run does not let
    the web processes start draining; ``WORKER_TTL_FALLBACK_S`` without an interval."""
    interval = int(rt.config.section("scheduler.jobs.link_clicks").get("interval_s", 0) or 0)
    cron = rt.config.section("scheduler.jobs.link_clicks").get("cron")
    return 3 * interval if interval > 0 and not cron else WORKER_TTL_FALLBACK_S


def mark_worker_draining(rt: Runtime) -> None:
    rt.redis.set(WORKER_KEY, process_id(), ex=worker_ttl_s(rt))


def worker_draining(rt: Runtime) -> bool:
    """Whether another process's ``link_clicks`` job drains the queue (its mark has not lapsed)."""
    owner = rt.redis.get(WORKER_KEY)
    return owner is not None and owner != process_id()


@job("link_clicks", "move queued tracked-link clicks into customer events and remind")
def link_clicks_job(rt: Runtime) -> str:
    mark_worker_draining(rt)
    stored, followed = drain(rt)
    mark_worker_draining(rt)  # from the end of a long run, so the mark lasts until well past the next one
    return f"{stored} clicks stored, {followed} followed up, {rt.redis.llen(QUEUE)} still queued"
