"""Transactional outbox: notifications are rows written in the transaction of the change they announce,
then delivered at least once by whichever worker claims them first.

Claiming is a compare-and-set UPDATE (status pending, or a 'sending' row whose lease ran out) so two
workers never send the same row; on PostgreSQL candidates are picked with FOR UPDATE SKIP LOCKED so
workers do not queue behind each other. A delivery whose outcome is unknown (timeout after sending) is
retried with WeCom's enable_duplicate_check on every send, so the member never sees it twice.
"""

from __future__ import annotations

import base64
import logging
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from wechatpy.exceptions import WeChatClientException

from bot.out import Card, CardUpdate, Out, new_task_id, wire_bodies
from storage.models import Card as CardRow
from storage.models import OutboxMessage
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

RETRYABLE_ERRCODES = {-1, 45009, 45033, 40001, 40014, 42001}


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
    rows: list[OutboxMessage] = []
    if isinstance(out, CardUpdate):
        raise TypeError("a CardUpdate answers a click; use enqueue_card_update")
    task_id = None
    if isinstance(out, Card):
        task_id = str(out.card.get("task_id") or new_task_id(out.kind))
        card = dict(out.card, task_id=task_id)
        session.add(CardRow(task_id=task_id, kind=out.kind, addressee=recipient, card_type=out.card_type,
                            subject=out.subject))
        bodies: list[tuple[str, dict[str, Any]]] = [("template_card", card)]
    else:
        bodies = wire_bodies(out)
    for i, (msgtype, body) in enumerate(bodies):
        key = None if dedup_key is None else (dedup_key if i == 0 else f"{dedup_key}#{i}")
        row = OutboxMessage(recipient=recipient, msgtype=msgtype, body=body, dedup_key=key,
                            card_task_id=task_id, next_attempt_at=not_before or utcnow())
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def enqueue_card_update(session: Session, card: CardRow, response_code: str, replace_name: str) -> None:
    """Update a card already on the member's phone through message/update_template_card."""
    session.add(OutboxMessage(recipient=card.addressee, msgtype="update_template_card",
                              body={"response_code": response_code, "button": {"replace_name": replace_name}},
                              card_task_id=card.task_id))


class Deliverer:
    """Delivers due outbox rows; safe to run in several processes at once."""

    def __init__(self, runtime: Runtime, owner: str | None = None) -> None:
        self.rt = runtime
        cfg = runtime.config
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.batch_size = int(cfg.get("outbox.batch_size"))
        self.per_minute = int(cfg.get("outbox.per_member_per_minute"))
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
        with self.rt.db.transaction() as s:
            q = (select(OutboxMessage.id).where(due, OutboxMessage.next_attempt_at <= now)
                 .order_by(OutboxMessage.id).limit(self.batch_size))
            if self.rt.db.is_postgres:
                q = q.with_for_update(skip_locked=True)
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
        """0 when a send to ``recipient`` may go now, else seconds until the next minute window."""
        now = time.time()
        window = int(now // 60)
        key = f"outbox:rate:{recipient}:{window}"
        count = self.rt.redis.incr(key)
        if count == 1:
            self.rt.redis.expire(key, 120)
        if int(count) > self.per_minute:
            self.rt.redis.decr(key)
            return (window + 1) * 60 - now + 0.05
        return 0.0

    # ---- delivery --------------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass: claim due rows and try each; returns how many were delivered."""
        delivered = 0
        for row in self._claim():
            wait = self._take_rate_slot(row.recipient)
            if wait:
                self._finish(row, "pending", next_at=utcnow() + timedelta(seconds=wait), count_attempt=False)
                continue
            if self._deliver(row):
                delivered += 1
        return delivered

    def _deliver(self, row: OutboxMessage) -> bool:
        client = self.rt.wecom
        try:
            if row.msgtype == "update_template_card":
                body = dict(row.body)
                result = client.update_card([row.recipient], body.pop("response_code"), body)
            else:
                body = dict(row.body)
                if row.msgtype == "image":
                    if "media_id" not in body:
                        media_id = client.upload_media("image", body.get("filename", "image.png"),
                                                       base64.b64decode(body["png_b64"]))
                        self._remember_media(row.id, media_id)
                        body = {"media_id": media_id}
                    else:
                        body = {"media_id": body["media_id"]}
                result = client.send_message(row.recipient, row.msgtype, body, self.dup_interval)
        except (requests.Timeout, requests.ConnectionError) as exc:
            # WeCom may have accepted it: retry; enable_duplicate_check keeps it from showing twice
            self._retry(row, f"network: {type(exc).__name__}")
            return False
        except WeChatClientException as exc:
            code = exc.errcode
            if code is None or code in RETRYABLE_ERRCODES:
                self._retry(row, f"errcode {code}: {exc.errmsg}")
            else:
                log.error("outbox delivery failed", extra={"outbox_id": row.id, "errcode": code,
                                                          "recipient": row.recipient})
                self._finish(row, "failed", error=f"errcode {code}: {exc.errmsg}")
            return False
        except Exception as exc:  # a bug or an unexpected answer: keep the row, try later
            log.exception("outbox delivery error", extra={"outbox_id": row.id})
            self._retry(row, f"{type(exc).__name__}: {exc}")
            return False
        self._finish(row, "sent", result=result)
        return True

    def _remember_media(self, row_id: int, media_id: str) -> None:
        with self.rt.db.transaction() as s:
            row = s.get(OutboxMessage, row_id)
            if row is not None:
                row.body = {"media_id": media_id, "filename": row.body.get("filename", "")}

    def _retry(self, row: OutboxMessage, error: str) -> None:
        if row.attempts >= self.max_attempts:
            log.error("outbox message given up", extra={"outbox_id": row.id, "error": error})
            self._finish(row, "dead", error=error)
            return
        delay = min(self.backoff_max, self.backoff_base * (2 ** max(0, row.attempts - 1)))
        delay *= random.uniform(0.8, 1.2)
        self._finish(row, "pending", error=error, next_at=utcnow() + timedelta(seconds=delay))

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
