"""Purge what is only kept for a while: processed-callback keys, delivered outbox rows, finished job runs."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete

from jobs.registry import job
from storage.models import JobRun, OutboxMessage, ProcessedCallback
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime


@job("cleanup", "purge processed-callback keys, delivered outbox rows and finished job runs past retention")
def cleanup(rt: Runtime) -> str:
    now = utcnow()
    keys_before = now - timedelta(days=int(rt.config.get("retention.processed_keys_days")))
    outbox_before = now - timedelta(days=int(rt.config.get("retention.outbox_days")))
    runs_before = now - timedelta(days=int(rt.config.get("retention.job_runs_days")))
    with rt.db.transaction() as s:
        keys = s.execute(delete(ProcessedCallback).where(ProcessedCallback.processed_at < keys_before))
        sent = s.execute(delete(OutboxMessage).where(OutboxMessage.status == "sent",
                                                     OutboxMessage.sent_at < outbox_before))
        # a job every few seconds leaves thousands of rows a day; failed runs stay for the operator
        runs = s.execute(delete(JobRun).where(JobRun.status == "ok", JobRun.finished_at < runs_before))
    return (f"removed {keys.rowcount} processed keys, {sent.rowcount} delivered outbox rows, "  # type: ignore[attr-defined]
            f"{runs.rowcount} finished job runs")  # type: ignore[attr-defined]
