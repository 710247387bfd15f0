"""Purge what is only kept for a while: processed-callback keys and delivered outbox rows."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete

from jobs.registry import job
from storage.models import OutboxMessage, ProcessedCallback
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime


@job("cleanup", "purge processed-callback keys and delivered outbox rows past retention")
def cleanup(rt: Runtime) -> str:
    now = utcnow()
    keys_before = now - timedelta(days=int(rt.config.get("retention.processed_keys_days")))
    outbox_before = now - timedelta(days=int(rt.config.get("retention.outbox_days")))
    with rt.db.transaction() as s:
        keys = s.execute(delete(ProcessedCallback).where(ProcessedCallback.processed_at < keys_before))
        sent = s.execute(delete(OutboxMessage).where(OutboxMessage.status == "sent",
                                                     OutboxMessage.sent_at < outbox_before))
    return f"removed {keys.rowcount} processed keys, {sent.rowcount} delivered outbox rows"  # type: ignore[attr-defined]
