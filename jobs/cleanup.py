"""Purge what is only kept for a while: processed-callback keys, delivered outbox rows, the image bytes of
outbox rows that will never be delivered, finished job runs."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from jobs.registry import job
from storage.models import JobRun, OutboxMessage, ProcessedCallback
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime


@job("cleanup", "purge processed-callback keys, delivered outbox rows, undeliverable images' bytes and finished job "
                "runs past retention")
def cleanup(rt: Runtime) -> str:
    now = utcnow()
    keys_before = now - timedelta(days=int(rt.config.get("retention.processed_keys_days")))
    outbox_before = now - timedelta(days=int(rt.config.get("retention.outbox_days")))
    runs_before = now - timedelta(days=int(rt.config.get("retention.job_runs_days")))
    with rt.db.transaction() as s:
        keys = s.execute(delete(ProcessedCallback).where(ProcessedCallback.processed_at < keys_before))
        sent = s.execute(delete(OutboxMessage).where(OutboxMessage.status == "sent",
                                                     OutboxMessage.sent_at < outbox_before))
        # a failed or given-up row stays for the operator (who sent what, why it failed), but its image will
        # never be uploaded: past retention its bytes (~175 KB a heatmap) go, the row and its error stay
        media = s.execute(update(OutboxMessage).where(OutboxMessage.status.in_(("failed", "dead")),
                                                      OutboxMessage.media.is_not(None),
                                                      OutboxMessage.created_at < outbox_before)
                          .values(media=None))
        # a job every few seconds leaves thousands of rows a day; failed runs stay for the operator
        runs = s.execute(delete(JobRun).where(JobRun.status == "ok", JobRun.finished_at < runs_before))
    images = media.rowcount  # type: ignore[attr-defined]
    dropped = f", dropped {images} undelivered images' bytes" if images else ""
    removed = [r.rowcount for r in (keys, sent, runs)]  # type: ignore[attr-defined]
    return (f"removed {removed[0]} processed keys, {removed[1]} delivered outbox rows, "
            f"{removed[2]} finished job runs{dropped}")
