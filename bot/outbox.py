"""Transactional outbox: notifications are rows written in the transaction of the change they announce,
then delivered at least once by whichever worker claims them first.

Claiming is a compare-and-set UPDATE (status pending, or a 'sending' row whose lease ran out) so two
workers never send the same row; on PostgreSQL claims take a transaction advisory lock (claims are short,
deliveries run outside it) and candidates are picked with FOR UPDATE SKIP LOCKED.

Each member gets their messages in the order they were written: a row is not claimed while an earlier
row to the same member is being sent or waits for a retry, and a pass that has to hold one row back
holds back that member's later rows too.

A delivery whose outcome is unknown (timeout after sending, a worker that died mid-send) is retried with
WeCom's enable_duplicate_check, so the member never sees it twice. First attempts go without it: WeCom's
check compares content, not our row id, and would silently swallow a second, legitimately identical
message (a repeated notice, two equal pieces of a long text) sent within the window.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from wechatpy.exceptions import WeChatClientException

from bot.out import MAX_CONTENT_BYTES, Card, CardUpdate, Image, Out, Text, new_task_id, wire_bodies
from storage.models import Card as CardRow
from storage.models import OutboxMessage
from storage.payments import insert_rows, one_of
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

RETRYABLE_ERRCODES = {-1, 45009, 45033, 40001, 40014, 42001}
# Answers that, on a retry after an unknown outcome, mean the earlier attempt got through:
# the card's task_id is taken (42014), the update's response_code was used (40078).
ALREADY_DONE = {"template_card": 42014, "update_template_card": 40078}
# WeCom's per-member limit besides the per-minute one (PROTOCOL.md §4: 30/min and 1000/h).
PER_MEMBER_PER_HOUR = 1000
CLAIM_LOCK = 0x5A1E0B07  # PostgreSQL advisory lock serializing claims (not deliveries)


def enqueue(session: Session, recipient: str, out: Out, *, dedup_key: str | None = None,
            not_before: datetime | None = None) -> list[OutboxMessage]:
    """Add the rows that will send ``out`` to ``recipient`` when ``session`` commits.

    ``dedup_key`` makes the notification idempotent: a second enqueue with the same key adds nothing
    (a rerun of a job sends nothing new).
    """
    if dedup_key is not None:
        exists = session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key))
        if exists is not None:
            return []
    new, rows = _build(recipient, out, dedup_key, not_before)
    if dedup_key is None:
        session.add_all(new)
        session.flush()
        return rows
    # Another transaction may be adding the same key right now: insert under a savepoint so losing
    # that race costs only these rows, not the caller's whole transaction.
    try:
        with session.begin_nested():
            session.add_all(new)
    except IntegrityError:
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)) is None:
            raise
        return []
    return rows


def _build(recipient: str, out: Out, dedup_key: str | None,
           not_before: datetime | None) -> tuple[list[Any], list[OutboxMessage]]:
    """The objects ``enqueue`` adds (a card's row first) and, among them, the outbox rows."""
    if isinstance(out, CardUpdate):
        raise TypeError("a CardUpdate answers a click; use enqueue_card_update")
    new: list[Any] = []
    task_id = None
    if isinstance(out, Card):
        task_id = str(out.card.get("task_id") or new_task_id(out.kind))
        card = dict(out.card, task_id=task_id)
        new.append(CardRow(task_id=task_id, kind=out.kind, addressee=recipient, card_type=out.card_type,
                           subject=out.subject))
        bodies: list[tuple[str, dict[str, Any]]] = [("template_card", card)]
    else:
        bodies = wire_bodies(out)
    media = out.png if isinstance(out, Image) else None  # one body: an image is never split
    rows: list[OutboxMessage] = []
    for i, (msgtype, body) in enumerate(bodies):
        key = None if dedup_key is None else (dedup_key if i == 0 else f"{dedup_key}#{i}")
        rows.append(OutboxMessage(recipient=recipient, msgtype=msgtype, body=body, media=media, dedup_key=key,
                                  card_task_id=task_id, next_attempt_at=not_before or utcnow()))
    new += rows
    return new, rows


def enqueue_many(session: Session, items: Sequence[tuple[str, Out, str | None]]) -> int:
    """``enqueue`` for many notifications at once (a job pushing thousands), keyed or not: ``enqueue_in_order``
    (already queued or repeated keys skipped, the rest inserted in ``items`` order without ORM objects).
    Returns how many notifications were added.
    """
    return enqueue_in_order(session, items)


def enqueue_in_order(session: Session, items: Sequence[tuple[str, Out | str, str | None]]) -> int:
    """``enqueue`` for many notifications at once, keyed (``dedup_key``) or not, keeping their order: the
    outbox rows get ids in ``items`` order, so each member is sent them in that order, as if ``enqueue``
    had been called for each in turn. A text may be given as its ``str`` (a job pushing a hundred thousand
    saves a ``Text`` object each). Keyed ones already queued (or repeated in ``items``) are skipped (one
    query, the keys as one parameter); the rest go in under one savepoint with one statement per table,
    rows as plain tuples, no ORM objects (see ``_insert_built``). Should a concurrent transaction take one
    of the keys meanwhile, it falls back to ``enqueue`` one by one. Returns how many notifications were added.
    """
    conn = session.connection()
    keys = [key for _, _, key in items if key is not None]
    queued: set[str | None] = set()
    if keys:
        queued.update(conn.execute(select(OutboxMessage.dedup_key).where(
            one_of(OutboxMessage.dedup_key, keys, conn.dialect))).scalars())
    now = utcnow()
    at, subject = _binders(conn.dialect, now)
    cards: list[tuple[Any, ...]] = []  # task_id, kind, addressee, card_type, subject, created_at
    # recipient, msgtype, body, dedup_key, card_task_id, next_attempt_at, created_at, media
    rows: list[tuple[Any, ...]] = []
    add = rows.append
    one_piece = MAX_CONTENT_BYTES // 4  # wire_bodies sends a text of up to this many characters as it is
    card_json: dict[int, str] = {}  # id(card) → its JSON without the task id (a job sends one card to several)
    added = 0
    for recipient, out, key in items:
        if key is not None:
            if key in queued:
                continue
            queued.add(key)
        added += 1
        content = out if type(out) is str else out.content if type(out) is Text else None  # type: ignore[union-attr]
        if content is not None and len(content) <= one_piece:
            add((recipient, "text", _text_body(content), key, None, at, at, None))
            continue
        if type(out) is str:
            out = Text(out)
        if isinstance(out, CardUpdate):
            raise TypeError("a CardUpdate answers a click; use enqueue_card_update")
        if isinstance(out, Card) and out.card and "task_id" not in out.card:
            # json.dumps(dict(card, task_id=task_id)): the card's JSON with the task id as its last member
            task_id = new_task_id(out.kind)
            cards.append((task_id, out.kind, recipient, out.card_type, subject(out.subject), at))
            if id(out) not in card_json:
                card_json[id(out)] = json.dumps(out.card)[:-1]
            add((recipient, "template_card", card_json[id(out)] + ', "task_id": ' + _json_string(task_id) + "}",
                 key, task_id, at, at, None))
            continue
        task_id = None
        if isinstance(out, Card):
            task_id = str(out.card.get("task_id") or new_task_id(out.kind))
            cards.append((task_id, out.kind, recipient, out.card_type, subject(out.subject), at))
            bodies: list[tuple[str, dict[str, Any]]] = [("template_card", dict(out.card, task_id=task_id))]
        else:
            bodies = wire_bodies(out)  # type: ignore[arg-type]
        media = out.png if isinstance(out, Image) else None
        for i, (msgtype, body) in enumerate(bodies):
            add((recipient, msgtype, json.dumps(body), None if key is None else (key if i == 0 else f"{key}#{i}"),
                 task_id, at, at, media))
    if not rows:
        return 0
    try:
        with session.begin_nested():
            _insert_built(session, cards, rows)
    except IntegrityError:
        return sum(1 for recipient, out, key in items
                   if enqueue(session, recipient, Text(out) if type(out) is str else out, dedup_key=key))  # type: ignore[arg-type]
    return added


def _binders(dialect: Any, now: datetime) -> tuple[Any, Callable[[Any], Any]]:
    """For ``enqueue_in_order``'s rows: ``now`` and a card's subject as the driver takes them on SQLite (text,
    bound as the columns' types bind them), as they are elsewhere (``insert_rows`` converts them)."""
    if dialect.name != "sqlite":
        return now, lambda subject: subject
    stamp = OutboxMessage.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    subject = CardRow.__table__.c.subject.type.dialect_impl(dialect).bind_processor(dialect)
    return stamp(now) if stamp else now, subject or (lambda value: value)


_OUTBOX_COLUMNS = ("recipient", "msgtype", "body", "dedup_key", "card_task_id", "next_attempt_at", "created_at",
                   "media")
_CARD_COLUMNS = ("task_id", "kind", "addressee", "card_type", "subject", "created_at")
_OUTBOX_SQLITE = ("INSERT INTO outbox (recipient, msgtype, body, dedup_key, card_task_id, status, attempts, "
                  "next_attempt_at, created_at, media) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)")
_CARDS_SQLITE = ("INSERT INTO cards (task_id, kind, addressee, card_type, subject, status, created_at) "
                 "VALUES (?, ?, ?, ?, ?, 'open', ?)")


def _insert_built(session: Session, cards: list[tuple[Any, ...]], rows: list[tuple[Any, ...]]) -> None:
    """The card and outbox rows ``enqueue_in_order`` built, in order. SQLite: one driver executemany of the
    tuples per table (200k notifications: ~0.7 s less than dicts through ``insert_rows``); PostgreSQL:
    ``insert_rows``' one statement over arrays."""
    conn = session.connection()  # asked inside the savepoint: it is emitted when the nested transaction connects
    if conn.dialect.name == "sqlite":
        if cards:
            conn.exec_driver_sql(_CARDS_SQLITE, cards)
        conn.exec_driver_sql(_OUTBOX_SQLITE, rows)
        return
    insert_rows(session, CardRow.__table__, [dict(zip(_CARD_COLUMNS, c, strict=True), status="open")  # type: ignore[arg-type]
                                             for c in cards])
    insert_rows(session, OutboxMessage.__table__, [dict(zip(_OUTBOX_COLUMNS, r, strict=True), status="pending",  # type: ignore[arg-type]
                                                        attempts=0) for r in rows], bound={"body"})


# json.dumps(text) for a str: what JSONEncoder.encode calls for one (ensure_ascii), without its layers.
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _text_body(text: str) -> str:
    """The stored body of a one-piece text message: ``json.dumps({"content": text})``, as the JSON column
    would write it, without the dict (the JSON encoder's C string escaper, as json.dumps calls it)."""
    return '{"content": ' + _json_string(text) + "}"


def enqueue_texts(session: Session, items: Sequence[tuple[str, str, str]]) -> int:
    """Keyed text notifications ``(recipient, text, dedup_key)`` in bulk, for a job pushing tens of
    thousands: the same rows ``enqueue_many`` writes for them, but with one ``INSERT … ON CONFLICT
    (dedup_key) DO NOTHING`` (PostgreSQL: one statement over arrays; SQLite: one executemany), in
    ``items`` order. A key already queued — by an earlier run, a concurrent one, or earlier in ``items``
    — adds nothing. Returns how many were added.
    """
    if not items:
        return 0
    if any(len(text) * 4 > MAX_CONTENT_BYTES for _, text, _ in items):  # may need splitting: the general way
        return enqueue_many(session, [(recipient, Text(text), key) for recipient, text, key in items])
    conn = session.connection()
    stamp = OutboxMessage.__table__.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    now = stamp(utcnow()) if stamp else utcnow()  # as the column type binds it (text on SQLite)
    bodies = [_text_body(text) for _, text, _ in items]
    if conn.dialect.name == "postgresql":
        res = conn.exec_driver_sql(
            "INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, dedup_key, created_at) "
            "SELECT t.r, 'text', t.b::json, 'pending', 0, %(now)s, t.k, %(now)s "
            "FROM unnest(%(r)b::text[], %(b)b::text[], %(k)b::text[]) WITH ORDINALITY AS t(r, b, k, n) "
            "ORDER BY t.n ON CONFLICT (dedup_key) DO NOTHING",
            {"now": now, "r": [r for r, _, _ in items], "b": bodies, "k": [k for _, _, k in items]})
    else:
        res = conn.exec_driver_sql(
            "INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, dedup_key, created_at) "
            "VALUES (?, 'text', ?, 'pending', 0, ?, ?, ?) "
            "ON CONFLICT (dedup_key) DO NOTHING",
            [(recipient, body, now, key, now) for (recipient, _, key), body in zip(items, bodies, strict=True)])
    return int(res.rowcount)


def enqueue_card_update(session: Session, card: CardRow, response_code: str, replace_name: str) -> None:
    """Update a card already on the member's phone through message/update_template_card."""
    session.add(OutboxMessage(recipient=card.addressee, msgtype="update_template_card",
                              body={"response_code": response_code, "button": {"replace_name": replace_name}},
                              card_task_id=card.task_id))


class Deliverer:
    """Delivers due outbox rows; safe to run in several processes at once.

    ``clock`` (epoch seconds) places sends in WeCom's per-member minute and hour windows.
    """

    def __init__(self, runtime: Runtime, owner: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.rt = runtime
        cfg = runtime.config
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock or time.time
        self.batch_size = int(cfg.get("outbox.batch_size"))
        self.per_minute = int(cfg.get("outbox.per_member_per_minute"))
        self.per_hour = PER_MEMBER_PER_HOUR
        self.max_attempts = int(cfg.get("outbox.max_attempts"))
        self.backoff_base = float(cfg.get("outbox.backoff_base_s"))
        self.backoff_max = float(cfg.get("outbox.backoff_max_s"))
        self.lease = timedelta(seconds=int(cfg.get("outbox.lease_s")))
        self.dup_interval = int(cfg.get("wecom.duplicate_check_interval_s"))

    # ---- claiming --------------------------------------------------------------------------

    def _claim(self) -> list[OutboxMessage]:
        now = utcnow()
        due = or_(OutboxMessage.status == "pending",
                  (OutboxMessage.status == "sending") & (OutboxMessage.lease_until < now))
        earlier = aliased(OutboxMessage)
        # an earlier row to the same member still in flight or waiting for a retry keeps this one back
        blocked = (select(earlier.id)
                   .where(earlier.recipient == OutboxMessage.recipient, earlier.id < OutboxMessage.id,
                          or_(earlier.status == "sending",
                              (earlier.status == "pending") & (earlier.attempts > 0)))
                   .exists())
        with self.rt.db.transaction() as s:
            q = (select(OutboxMessage.id).where(due, OutboxMessage.next_attempt_at <= now, ~blocked)
                 .order_by(OutboxMessage.id).limit(self.batch_size))
            if self.rt.db.is_postgres:
                # one claim at a time (SQLite gets the same from BEGIN IMMEDIATE): a claim then sees
                # every row the previous claim took as 'sending', which keeps each member's order
                s.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
                q = q.with_for_update(skip_locked=True, of=OutboxMessage)
            ids = list(s.scalars(q))
            claimed: list[int] = []
            for row_id in ids:
                res = s.execute(update(OutboxMessage)
                                .where(OutboxMessage.id == row_id, due)
                                .values(status="sending", lease_owner=self.owner, lease_until=now + self.lease,
                                        attempts=OutboxMessage.attempts + 1))
                if res.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(row_id)
        if not claimed:
            return []
        with self.rt.db.sessions() as s:
            return list(s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(claimed))
                                  .order_by(OutboxMessage.id)))

    # ---- pacing ----------------------------------------------------------------------------

    def _take_rate_slot(self, recipient: str) -> float:
        """0 when a send to ``recipient`` may go now, else seconds until the window that allows it.

        WeCom drops, silently, what a member gets past 30 a minute or 1000 an hour from one app.
        """
        now = self.clock()
        taken: list[str] = []
        for span, limit in ((60, self.per_minute), (3600, self.per_hour)):
            window = int(now // span)
            key = f"outbox:rate:{recipient}:{span}:{window}"
            pipe = self.rt.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 2 * span)
            count = int(pipe.execute()[0])
            taken.append(key)
            if count > limit:
                for k in taken:
                    self.rt.redis.decr(k)
                return (window + 1) * span - now + 0.05
        return 0.0

    # ---- delivery --------------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass: claim due rows and try each; returns how many were delivered."""
        delivered = 0
        held: dict[str, datetime] = {}  # member → until when their later rows wait (order kept)
        for row in self._claim():
            if row.recipient in held:
                self._finish(row, "pending", next_at=held[row.recipient], count_attempt=False)
                continue
            wait = self._take_rate_slot(row.recipient)
            if wait:
                held[row.recipient] = utcnow() + timedelta(seconds=wait)
                self._finish(row, "pending", next_at=held[row.recipient], count_attempt=False)
                continue
            sent, retry_at = self._deliver(row)
            if sent:
                delivered += 1
            elif retry_at is not None:
                held[row.recipient] = retry_at
        return delivered

    def _dup_window(self, row: OutboxMessage) -> int:
        """enable_duplicate_check window for a retry: back to (about) the first attempt, at most the
        configured interval, so it does not swallow an older identical message more than needed."""
        age = (utcnow() - row.created_at).total_seconds() if row.created_at else self.dup_interval
        return max(60, min(self.dup_interval, int(age) + 60))

    def _deliver(self, row: OutboxMessage) -> tuple[bool, datetime | None]:
        """Try one row; returns (delivered, when it is retried if it will be)."""
        client = self.rt.wecom
        retry = row.attempts > 1  # an earlier attempt may have reached WeCom
        try:
            if row.msgtype == "update_template_card":
                body = dict(row.body)
                result = client.update_card([row.recipient], body.pop("response_code"), body)
            else:
                body = dict(row.body)
                if row.msgtype == "image":
                    if "media_id" not in body:  # a row queued before its own column held the bytes: base64
                        data = row.media if row.media is not None else base64.b64decode(body["png_b64"])
                        media_id = client.upload_media("image", body.get("filename", "image.png"), data)
                        self._remember_media(row.id, media_id)
                        body = {"media_id": media_id}
                    else:
                        body = {"media_id": body["media_id"]}
                result = client.send_message(row.recipient, row.msgtype, body,
                                             self._dup_window(row) if retry else None)
        except (requests.Timeout, requests.ConnectionError) as exc:
            # WeCom may have accepted it: retry; enable_duplicate_check keeps it from showing twice
            return False, self._retry(row, f"network: {type(exc).__name__}")
        except WeChatClientException as exc:
            code = exc.errcode
            if retry and code is not None and ALREADY_DONE.get(row.msgtype) == code:
                log.warning("outbox delivery: an earlier attempt got through",
                            extra={"outbox_id": row.id, "errcode": code})
                self._finish(row, "sent", result={},
                             error=f"errcode {code} on retry: delivered by an earlier attempt")
                return True, None
            if code is None or code in RETRYABLE_ERRCODES:
                return False, self._retry(row, f"errcode {code}: {exc.errmsg}")
            log.error("outbox delivery failed", extra={"outbox_id": row.id, "errcode": code,
                                                      "recipient": row.recipient})
            self._finish(row, "failed", error=f"errcode {code}: {exc.errmsg}")
            return False, None
        except Exception as exc:  # a bug or an unexpected answer: keep the row, try later
            log.exception("outbox delivery error", extra={"outbox_id": row.id})
            return False, self._retry(row, f"{type(exc).__name__}: {exc}")
        self._finish(row, "sent", result=result)
        return True, None

    def _remember_media(self, row_id: int, media_id: str) -> None:
        with self.rt.db.transaction() as s:
            row = s.get(OutboxMessage, row_id)
            if row is not None:  # uploaded: the bytes are not needed again
                row.body = {"media_id": media_id, "filename": row.body.get("filename", "")}
                row.media = None

    def _retry(self, row: OutboxMessage, error: str) -> datetime | None:
        """Put the row back with backoff (returns when it is due), or give it up (None)."""
        if row.attempts >= self.max_attempts:
            log.error("outbox message given up", extra={"outbox_id": row.id, "error": error})
            self._finish(row, "dead", error=error)
            return None
        delay = min(self.backoff_max, self.backoff_base * (2 ** max(0, row.attempts - 1)))
        delay *= random.uniform(0.8, 1.2)
        next_at = utcnow() + timedelta(seconds=delay)
        self._finish(row, "pending", error=error, next_at=next_at)
        return next_at

    def _finish(self, row: OutboxMessage, status: str, *, error: str | None = None,
                next_at: datetime | None = None, result: dict[str, Any] | None = None,
                count_attempt: bool = True) -> None:
        with self.rt.db.transaction() as s:
            values: dict[str, Any] = {"status": status, "lease_owner": None, "lease_until": None}
            if error is not None:
                values["last_error"] = error[:2000]
            if next_at is not None:
                values["next_attempt_at"] = next_at
            if not count_attempt:
                values["attempts"] = OutboxMessage.attempts - 1
            if status == "sent":
                values["sent_at"] = utcnow()
                values["wecom_msgid"] = (result or {}).get("msgid")
                values["response_code"] = (result or {}).get("response_code")
            # only the lease owner may settle the row
            s.execute(update(OutboxMessage).where(OutboxMessage.id == row.id,
                                                  OutboxMessage.lease_owner == self.owner).values(**values))
            if status == "sent" and row.card_task_id and (result or {}).get("response_code"):
                s.execute(update(CardRow).where(CardRow.task_id == row.card_task_id)
                          .values(response_code=result["response_code"]))  # type: ignore[index]

    def run_forever(self, stop: threading.Event, idle_sleep: float | None = None) -> None:
        idle = float(self.rt.config.get("outbox.poll_interval_s")) if idle_sleep is None else idle_sleep
        while not stop.is_set():
            try:
                sent = self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                sent = 0
            if not sent:
                stop.wait(idle)
