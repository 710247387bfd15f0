"""GET /t/<token> (tracked links) and POST /hooks/product-events (signed product events).

A click touches neither the database nor Redis: the token is looked up in a small in-process cache
(filled from the database on a miss), the click is appended to an in-process buffer, and the 302 goes out;
for a link cached under the current version this is done by ``FastRedirects``, a WSGI function in front of
Flask, and every other case by the Flask view ``follow``.
A flusher thread per process (started by its first buffered click, so after gunicorn forks; a forked child
starts with an empty buffer) pushes the buffer to Redis every ``links.click_flush_ms`` (default 50) in one
round trip: an RPUSH of all the buffered records and a GET of the links version. A click is buffered only
while the version this process last read is at most two intervals old; the first click of a process, the
first after a quiet spell, and every click with ``click_flush_ms = 0`` go in their own round trip instead
(RPUSH + GET, as before the buffer). ``jobs.link_clicks`` moves queued clicks into customer_events in
batches, exactly once by click id, and runs their follow-ups; in production the worker's ``link_clicks``
job does that. The web process drains only as a fallback, in its background executor at most once a
second (kicked after a flush pushed clicks), and skips it while another process's job run has marked
itself draining in Redis (one GET there, never on the request path): the web tier keeps its CPU for
redirects, and without a worker (none, or stopped) the web processes drain by themselves once the mark
lapses (``jobs.link_clicks.worker_ttl_s``).
Revoking a link or removing an item through the ORM bumps the version after the commit, and every cached
entry belongs to the version it was read under; a redirect whose entry belongs to another version than
the one last read reads the link again (a revoked one is a 404 and records nothing). So a change is seen
within one flush interval (two at most), or by the very next click with ``click_flush_ms = 0``; a change
made outside the ORM (raw SQL) is seen within ``CACHE_TTL_S`` (10 minutes); a bump lost because Redis
was unreachable at the commit is retried every ``BUMP_RETRY_S`` until Redis takes it. When Redis is
unreachable, at the click or at a flush, the clicks are stored directly, exactly once by click id, and
the following clicks for ``REDIS_RETRY_S`` too (nothing lost, still a 302). The buffer is flushed when
the app's ``Clicks`` is closed and at interpreter exit (a gunicorn worker stopped gracefully); a hard kill
loses what is buffered, at most one interval of clicks. Past ``MAX_BUFFER`` buffered clicks (Redis slow) a click is pushed in its
own round trip, so the buffer cannot grow without bound.

Product events are stored in one short transaction and answered at once; reminders and stage upgrades
run afterwards in the background (and the customer_events job catches anything left behind).
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import math
import os
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request
from flask.sessions import SessionInterface
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from bot import versions
from bot.runtime import Runtime
from domain.crawlers import is_preview_or_bot
from jobs import link_clicks as clicks
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

VERSION_KEY = "links:version"  # bumped after every committed change of a tracked link or a library item
# How long a cached link is trusted without a version bump. Every change through the app bumps the version
# (a bump lost to a Redis outage is retried), so this bounds only raw-SQL changes; it is long enough that a
# link clicked minutes apart (most are) is still cached, where 60 s sent 4 % of a busy set's clicks to the DB.
CACHE_TTL_S = 600.0
CACHE_SIZE = 20_000
UNKNOWN_TTL_S = 10.0  # unknown, revoked and removed tokens: short, and bounded apart from the known ones
UNKNOWN_SIZE = 10_000
PRELOAD = CACHE_SIZE // 2  # the newest links read into the cache when the process starts
KICK_EVERY_S = 1.0  # the web process drains the click queue at most this often
REDIS_RETRY_S = 2.0  # after a Redis failure, clicks go straight to the database for this long
BUMP_RETRY_S = 1.0  # a links-version bump lost to a Redis outage is retried this often until it lands
MAX_BUFFER = 10_000  # clicks a process holds for its next flush; past this a click is pushed in its own round trip


def _rt() -> Runtime:
    return current_app.extensions["salesbot"]


def _background(rt: Runtime, event_id: int) -> None:
    def run() -> None:
        try:
            process_event(rt, event_id)
        except Exception:
            log.exception("event processing failed; the customer_events job will retry", extra={"event": event_id})

    current_app.extensions["salesbot.executor"].submit(run)


def _ip_salt(rt: Runtime) -> bytes:
    return f"{rt.config.get('server.secret_key') or rt.config.get('wecom.secret')}:".encode()


def _ip_hash(salt: bytes, ip: str | None) -> str | None:
    """The stored form of a visitor's IP: SHA-256 of the server's secret, ':' and the IP (``_ip_salt``)."""
    if not ip:
        return None
    return hashlib.sha256(salt + ip.encode()).hexdigest()


# ---- the token cache -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    customer_id: int
    item_id: int
    category: str
    url: str


class LinkCache:
    """token → Link, a bounded LRU; each entry remembers the links version it was read under and expires
    after ``CACHE_TTL_S``. Unknown (or revoked) tokens go to a second, separate LRU with a shorter life, so
    guessing tokens can neither grow memory nor push real links out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[Link, str | None, float]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()

    def known(self, token: str) -> tuple[Link, str | None] | None:
        with self._lock:
            entry = self._known.get(token)
            if entry is None:
                return None
            if entry[2] <= self.clock():
                del self._known[token]
                return None
            self._known.move_to_end(token)
            return entry[0], entry[1]

    def unknown(self, token: str) -> bool:
        with self._lock:
            until = self._unknown.get(token)
            if until is None:
                return False
            if until <= self.clock():
                del self._unknown[token]
                return False
            return True

    def put(self, token: str, link: Link | None, version: str | None) -> None:
        with self._lock:
            self._known.pop(token, None)
            if link is None:
                self._unknown[token] = self.clock() + UNKNOWN_TTL_S
                self._unknown.move_to_end(token)
                while len(self._unknown) > UNKNOWN_SIZE:
                    self._unknown.popitem(last=False)
                return
            self._unknown.pop(token, None)
            self._known[token] = (link, version, self.clock() + CACHE_TTL_S)
            while len(self._known) > CACHE_SIZE:
                self._known.popitem(last=False)

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)


# ---- Redis, lean -----------------------------------------------------------------------------------


class RedisLine:
    """Commands sent together over one redis-py Connection per thread, used directly: the pool and client
    layers cost more CPU than the round trip itself. With hiredis (redis-py's C reply parser) a GET + RPUSH
    costs ~50 µs of CPU here, against ~250 µs through ``Redis.pipeline()``, on a redirect of ~300 µs."""

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self.local = threading.local()

    def __call__(self, *commands: tuple[str, ...]) -> list[Any]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self.pool.connection_class(**self.pool.connection_kwargs)
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            return [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()
            self.local.conn = None
            raise


@lru_cache(maxsize=4096)
def _is_preview(user_agent: str) -> bool:
    return is_preview_or_bot(user_agent)


SESSIONLESS = ("/t/", "/wecom/callback")  # paths that never use the Flask session


class _NoSessionForLinks(SessionInterface):
    """The app signs a session cookie for the upload page; a tracked link and the WeCom callback never use
    one, and opening it (a new signing serializer each time) costs as much as the rest of Flask's part of
    the redirect."""

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open_session(self, app: Flask, request: Any) -> Any:
        if request.path.startswith(SESSIONLESS):
            return None  # Flask uses a null session and saves nothing
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        self.inner.save_session(app, session, response)


class Clicks:
    """What the redirect of one app needs: the runtime, the token cache, the Redis line, the click buffer and
    its flusher, the drain kick.

    With ``links.click_flush_ms`` > 0 a click is appended to an in-process buffer and a flusher thread (one
    per process, started by the first buffered click, so never before gunicorn forks) pushes the buffer to
    Redis every interval in one round trip: an RPUSH of all its records and a GET of the links version. A
    click is buffered only while the version this process last read is at most two intervals old; otherwise
    (the first click of a process, or after a quiet spell, or with ``click_flush_ms`` = 0) it goes in its own
    round trip as it always did. So a revocation reaches the redirects within an interval or two.
    """

    def __init__(self, rt: Runtime, executor: Executor, cache: LinkCache | None = None) -> None:
        self.rt = rt
        self.executor = executor
        self.ip_salt = _ip_salt(rt)
        self.cache = cache or LinkCache()
        self.line: Callable[..., list[Any]] = RedisLine(rt.redis)
        self.version: str | None | object = _UNSEEN  # the links version the last round trip saw
        self.version_at = -math.inf  # when (time.monotonic()) the round trip that read it was sent
        self.redis_down_until = 0.0
        self.last_kick = 0.0
        self.flush_s = int(rt.config.get("links.click_flush_ms")) / 1000
        self.fresh_s = 2 * self.flush_s  # how old a version read may be for a click to be buffered
        self.closed = False
        self.preloaded = threading.Event()  # set once the start-up preload has run (or failed)
        self._per_process()
        _OPEN.add(self)

    def _per_process(self) -> None:
        """The state that belongs to one process: set at start and again in a forked child, which must not
        push its parent's buffer (the parent does) nor wait for the parent's flusher (not running here)."""
        self._buffer: list[str] = []
        self._lock = threading.Lock()  # the buffer, the version, starting the flusher
        self._flushing = threading.Lock()  # one flush at a time: close() waits for the flusher's
        self._wake = threading.Event()  # set when the buffer gets its first record
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _forked(self) -> None:
        self._per_process()
        self.line = RedisLine(self.rt.redis)  # the parent's connections are the parent's
        self.last_kick = 0.0

    # ---- the buffer and its flusher

    def buffering(self) -> bool:
        """Whether a click may wait for the next flush: buffering is on, this object is open and the links
        version was read recently enough that a revocation since would be at most two intervals old."""
        return self.flush_s > 0 and not self.closed and time.monotonic() - self.version_at < self.fresh_s

    def add(self, record: str) -> bool:
        """Buffer a click for the next flush (starting the flusher on the process's first); False when
        closed or full: the caller pushes it itself."""
        with self._lock:
            if self.closed or len(self._buffer) >= MAX_BUFFER:
                return False
            self._buffer.append(record)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="link-clicks-flush", daemon=True)
                self._thread.start()
            if len(self._buffer) == 1:
                self._wake.set()
        return True

    @property
    def buffered(self) -> int:
        """Clicks waiting for the next flush."""
        return len(self._buffer)

    def saw(self, version: str | None, sent_at: float) -> None:
        """Keep the version read by a round trip sent at ``sent_at`` unless a later one was seen already."""
        with self._lock:
            if sent_at >= self.version_at:
                self.version, self.version_at = version, sent_at

    def flush(self) -> int:
        """Push the buffered clicks to Redis in one round trip with a GET of the links version (just the GET
        when nothing is buffered); if Redis fails, store them straight in the database. Returns how many
        were pushed or stored."""
        with self._flushing:
            with self._lock:
                records, self._buffer = self._buffer, []
                self._wake.clear()
            return self.push(records)

    def push(self, records: list[str], *, keep: bool = True) -> int:
        """One round trip: RPUSH ``records`` (if any) and GET the links version; on a Redis failure the
        records are stored in the database instead and, if that fails too, go back to the buffer when
        ``keep`` (they were answered already) before the error is raised."""
        sent_at = time.monotonic()
        try:
            if records:
                version = self.line(("RPUSH", clicks.QUEUE, *records), ("GET", VERSION_KEY))[1]
            else:
                version = self.line(("GET", VERSION_KEY))[0]
        except (redis.RedisError, OSError):
            log.warning("redis unavailable; storing the buffered clicks directly", exc_info=True,
                        extra={"clicks": len(records)})
            self.redis_down_until = time.monotonic() + REDIS_RETRY_S
            return self._store(records, keep)
        self.saw(version, sent_at)
        if records:
            self.kick()
        return len(records)

    def _store(self, records: list[str], keep: bool) -> int:
        """Without Redis: the clicks into customer_events at once, exactly once by click id (an RPUSH whose
        reply was lost may have queued them too: the drain skips what is stored)."""
        if not records:
            return 0
        try:
            stored = clicks.store_clicks(self.rt, records)
        except Exception:
            if keep:
                log.exception("storing buffered clicks failed; kept for the next flush",
                              extra={"clicks": len(records)})
                with self._lock:
                    self._buffer[:0] = records
                    self._wake.set()
            raise
        if 0 < stored <= clicks.WEB_FOLLOWUPS:
            try:
                self.executor.submit(self._followups)
            except RuntimeError:
                pass  # shutting down: the customer_events job follows up
        return len(records)

    def _followups(self) -> None:
        try:
            clicks.run_followups(self.rt, clicks.WEB_FOLLOWUPS)
        except Exception:
            log.exception("click follow-up failed; the customer_events job will retry")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.wait(self.flush_s):  # closed: close() flushes what is left
                return
            try:
                self.flush()
            except Exception:
                self._stop.wait(REDIS_RETRY_S)  # neither Redis nor the database took them: try again later

    def close(self) -> None:
        """Flush what is buffered and stop the flusher; later clicks go in their own round trip. Called for
        every open Clicks at interpreter exit (gunicorn stopping a worker gracefully) and by
        ``bot.app.drain_background_work``; a hard kill loses what is buffered, at most one interval of clicks."""
        with self._lock:
            self.closed = True
            pending = bool(self._buffer)
        self._stop.set()
        self._wake.set()
        if pending:
            self.flush()

    def lookup(self, token: str) -> Link | None:
        with self.rt.db.engine.connect() as conn:
            row = conn.execute(_LOOKUP, {"token": token}).first()
        if row is None or row.revoked or not row.active:
            return None
        return Link(customer_id=row.customer_id, item_id=row.item_id, category=row.category, url=row.url)

    def preload(self) -> int:
        """Fill the cache with the newest ``PRELOAD`` valid links (at start, in the background): a link is
        mostly clicked soon after a rep sent it, so first clicks find it here too."""
        try:
            version = self.line(("GET", VERSION_KEY))[0]
        except (redis.RedisError, OSError):
            return 0
        with self.rt.db.engine.connect() as conn:
            rows = conn.execute(_RECENT).all()
        for row in rows:
            self.cache.put(row.token, Link(customer_id=row.customer_id, item_id=row.item_id, category=row.category,
                                           url=row.url), version)
        return len(rows)

    def resolve(self, token: str, version: str | None) -> Link | None:
        """The link from the database, cached under ``version`` (seen before the read, so a change committed
        after the read bumps past it)."""
        link = self.lookup(token)
        self.cache.put(token, link, version)
        return link

    def kick(self) -> None:
        """Drain the queue in the background, at most once a second per process."""
        now = time.monotonic()
        if now - self.last_kick < KICK_EVERY_S:
            return
        self.last_kick = now
        try:
            self.executor.submit(self._drain)
        except RuntimeError:
            pass  # shutting down: the worker's link_clicks job drains

    def _drain(self) -> None:
        """Unless a worker's ``link_clicks`` job is draining (its mark in Redis, one GET here, off the request
        path), store what is queued; follow up here only when that was a few clicks (a quiet hour, the demo,
        a single process): in a burst the request threads keep the CPU and the jobs follow up."""
        try:
            if clicks.worker_draining(self.rt):
                return
            stored, _ = clicks.drain(self.rt, followups=0)
            if 0 < stored <= clicks.WEB_FOLLOWUPS:
                clicks.run_followups(self.rt, clicks.WEB_FOLLOWUPS)
        except Exception:
            log.exception("click drain failed; the link_clicks job will retry")


_UNSEEN = object()
_RECENT = (select(TrackedLink.token, TrackedLink.customer_id, TrackedLink.item_id, LinkItem.category, LinkItem.url)
           .join(LinkItem, LinkItem.id == TrackedLink.item_id)
           .where(TrackedLink.revoked.is_(False), LinkItem.active.is_(True))
           .order_by(TrackedLink.created_at.desc()).limit(PRELOAD))
_LOOKUP = (select(TrackedLink.customer_id, TrackedLink.item_id, TrackedLink.revoked, LinkItem.category, LinkItem.url,
                  LinkItem.active)
           .join(LinkItem, LinkItem.id == TrackedLink.item_id).where(TrackedLink.token == bindparam("token")))


_OPEN: weakref.WeakSet[Clicks] = weakref.WeakSet()


def close_all() -> None:
    """Close every Clicks object of this process, flushing their buffers: at interpreter exit (a gunicorn
    worker stopped gracefully leaves through ``sys.exit``), and in ``bot.app.drain_background_work``."""
    for state in list(_OPEN):
        try:
            state.close()
        except Exception:
            log.exception("flushing buffered clicks failed", extra={"clicks": state.buffered})


def _after_fork_in_child() -> None:
    """A forked child serves with its own buffer and flusher (started by its first click)."""
    for state in list(_OPEN):
        state._forked()


atexit.register(close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)


def _state() -> Clicks:
    return current_app.extensions["salesbot.links"]  # type: ignore[no-any-return]


def _not_found() -> Response:
    return Response(NOT_FOUND_PAGE, status=404, mimetype="text/html")


def _redirect(url: str) -> Response:
    # the target is the stored URL only, never anything from the request: no open redirect
    resp = redirect(url, code=302)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp  # type: ignore[return-value]


@bp.get("/t/<token>")
def follow(token: str) -> Response:
    st = _state()
    if not TOKEN_RE.fullmatch(token) or st.cache.unknown(token):  # never ours (token_urlsafe), or known bad
        return _not_found()
    ua = request.headers.get("User-Agent", "")[:512]
    preview = _is_preview(ua)
    click_id = clicks.new_click_id()
    at = time.time()
    ip = _ip_hash(st.ip_salt, request.remote_addr)
    if time.monotonic() < st.redis_down_until:
        return _direct(st, token, click_id, preview, at, ua, ip)
    if st.buffering():
        return _buffered(st, token, click_id, preview, at, ua, ip)
    hit = st.cache.known(token)
    try:
        if hit is None:
            seen = st.version
            link = st.lookup(token)
            if link is None:
                st.cache.put(token, None, None)
                return _not_found()
        else:
            link, seen = hit
        record = clicks.encode_click(click_id, token, link.customer_id, link.item_id, link.category, preview, at, ua,
                                     ip)
        sent_at = time.monotonic()
        current = st.line(("RPUSH", clicks.QUEUE, record), ("GET", VERSION_KEY))[1]
        st.saw(current, sent_at)
        if current == seen:
            if hit is None:  # no change since before the read: cache it under this version
                st.cache.put(token, link, current)
        elif hit is not None:  # a link or an item changed since this one was cached: read it again
            link = st.resolve(token, current)
            if link is None:
                st.line(("RPUSH", clicks.QUEUE, clicks.encode_cancel(click_id)))
                return _not_found()
        # else: a change landed while we read (concurrent with this click); the next click caches the link
    except (redis.RedisError, OSError):
        log.warning("redis unavailable; storing the click directly", exc_info=True)
        st.redis_down_until = time.monotonic() + REDIS_RETRY_S
        return _direct(st, token, click_id, preview, at, ua, ip)
    st.kick()
    return _redirect(link.url)


def _buffered(st: Clicks, token: str, click_id: str, preview: bool, at: float, ua: str, ip: str | None) -> Response:
    """No round trip: the link is checked against the links version the last flush read (the cache entry
    read under another version is read again from the database), and the click waits in the buffer."""
    version: str | None = st.version  # type: ignore[assignment]  # read by a round trip (buffering() said so)
    hit = st.cache.known(token)
    if hit is not None and hit[1] == version:
        link = hit[0]
    else:  # not cached, or cached before a change: from the database, cached under the version read before it
        found = st.resolve(token, version)
        if found is None:
            return _not_found()  # nothing was buffered: nothing to cancel
        link = found
    record = clicks.encode_click(click_id, token, link.customer_id, link.item_id, link.category, preview, at, ua, ip)
    if not st.add(record):  # closed a moment ago, or the buffer is full (Redis slow): its own round trip
        st.push([record], keep=False)
    return _redirect(link.url)


@lru_cache(maxsize=4096)
def _redirect_wsgi(url: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, WSGI headers and body of ``_redirect(url)``, as Flask would send them (built once per URL)."""
    resp = _redirect(url)
    headers = resp.get_wsgi_headers({"wsgi.url_scheme": "https", "SERVER_NAME": "", "SERVER_PORT": "443"})
    return resp.status, headers.to_wsgi_list(), resp.get_data()


def _fast_follow(st: Clicks, token: str,
                 environ: dict[str, Any]) -> tuple[tuple[str, list[tuple[str, str]], bytes], str] | None:
    """``follow`` for its common case without Flask (no routing, no request context): a valid token whose
    link is cached under the links version last read, clicks buffered, Redis up. The same 302 and click
    record as ``follow``'s (the caller buffers the record); None for anything else, which ``follow`` then
    handles (``_buffered``)."""
    if not TOKEN_RE.fullmatch(token) or not st.buffering() or time.monotonic() < st.redis_down_until:
        return None
    hit = st.cache.known(token)
    if hit is None or hit[1] != st.version:
        return None
    link = hit[0]
    ua = environ.get("HTTP_USER_AGENT", "")[:512]
    record = clicks.encode_click(clicks.new_click_id(), token, link.customer_id, link.item_id, link.category,
                                 _is_preview(ua), time.time(), ua, _ip_hash(st.ip_salt, environ.get("REMOTE_ADDR")))
    return _redirect_wsgi(link.url), record


class FastRedirects:
    """WSGI in front of the Flask app for ``GET /t/<token>``: the tracked-link redirect is the one request
    strangers' phones make at volume, so its common case skips Flask (``_fast_follow``, about a fifth of a
    bare Flask redirect's CPU); every other request, and that path's every other case, goes to Flask."""

    def __init__(self, wsgi_app: Any, state: Clicks) -> None:
        self.wsgi_app, self.state = wsgi_app, state

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO", "")
            if path.startswith("/t/"):
                try:
                    fast = _fast_follow(self.state, path[3:], environ)
                except Exception:  # nothing was buffered: follow has the same steps and the error handling
                    log.exception("tracked-link fast path failed; answering through Flask")
                    fast = None
                if fast is not None and self.state.add(fast[1]):  # else closed or full: follow pushes its own
                    status, headers, body = fast[0]
                    start_response(status, headers)
                    return [body]
        return self.wsgi_app(environ, start_response)


def _direct(st: Clicks, token: str, click_id: str, preview: bool, at: float, ua: str, ip: str | None) -> Response:
    """Without Redis: look the link up and store the click in one transaction, follow up in the background."""
    rt = st.rt
    with rt.db.transaction() as s:
        row = s.get(TrackedLink, token)
        item = s.get(LinkItem, row.item_id) if row is not None else None
        if row is None or row.revoked or item is None or not item.active:
            return _not_found()
        ev = CustomerEvent(**clicks.event_values(rt, clicks.Click(click_id, token, row.customer_id, item.id,
                                                                   item.category, preview, at, ua, ip)))
        try:
            with s.begin_nested():
                s.add(ev)
                s.flush()
        except IntegrityError:
            return _redirect(item.url)  # queued after all (a reply lost on the way back): stored by the drain
        event_id, target = ev.id, item.url
    if not preview:
        _background(rt, event_id)
    return _redirect(target)


# ---- version bumps ---------------------------------------------------------------------------------


def watch_link_changes(rt: Runtime) -> None:
    """Bump ``VERSION_KEY`` after each commit (through ``rt.db``) that changed a tracked link or a library
    item, by the ORM on objects or by an ORM UPDATE / DELETE statement (``bot.versions``)."""
    versions.watch(rt, VERSION_KEY, (TrackedLink, LinkItem), retry_s=lambda: BUMP_RETRY_S,
                   lost_note=f"the link change reaches cached redirects, at the latest within {CACHE_TTL_S:.0f} s,")


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
    watch_link_changes(rt)
    state = app.extensions["salesbot.links"] = Clicks(rt, app.extensions["salesbot.executor"])

    def preload() -> None:
        try:
            state.preload()
        except Exception:
            log.exception("preloading tracked links failed; they are read on their first click")
        finally:
            state.preloaded.set()

    app.extensions["salesbot.executor"].submit(preload)
    app.session_interface = _NoSessionForLinks(app.session_interface)
    app.register_blueprint(bp)
    app.wsgi_app = FastRedirects(app.wsgi_app, state)  # type: ignore[method-assign]
