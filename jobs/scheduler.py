"""APScheduler set-up from the [scheduler] config, with each run happening once across processes.

Every process may schedule every job; a run first takes a Redis lock named after the job and its
scheduled slot, then a unique (name, slot) row in job_runs, so the slot runs exactly once even when
Redis forgets the lock.
"""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.runtime import Runtime
from jobs.registry import Job, load_jobs
from storage.models import JobRun
from storage.types import utcnow

log = logging.getLogger(__name__)


def job_settings(rt: Runtime, name: str) -> dict[str, object]:
    return rt.config.section(f"scheduler.jobs.{name}")


def trigger_for(rt: Runtime, name: str) -> CronTrigger | IntervalTrigger | None:
    s = job_settings(rt, name)
    if not s or not s.get("enabled", False):
        return None
    if s.get("cron"):
        return CronTrigger.from_crontab(str(s["cron"]), timezone=rt.config.tz)
    if int(s.get("interval_s", 0) or 0) > 0:
        return IntervalTrigger(seconds=int(s["interval_s"]), timezone=rt.config.tz)  # type: ignore[arg-type]
    return None


def run_job(rt: Runtime, job: Job, slot: str, owner: str | None = None) -> str | None:
    """Run ``job`` for ``slot`` unless some process already did; returns its summary or None."""
    owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
    lock_key = f"job:{job.name}:{slot}"
    try:
        if not rt.redis.set(lock_key, owner, nx=True, ex=7 * 86400):
            return None
    except Exception:
        log.exception("redis unavailable for the job lock; relying on the database", extra={"job": job.name})
    try:
        with rt.db.transaction() as s:
            run = JobRun(name=job.name, slot=slot, owner=owner)
            s.add(run)
            s.flush()
            run_id = run.id
    except IntegrityError:
        return None
    status, summary = "ok", ""
    try:
        summary = job.fn(rt) or ""
    except Exception as exc:
        log.exception("job failed", extra={"job": job.name, "slot": slot})
        status, summary = "failed", f"{type(exc).__name__}: {exc}"
    with rt.db.transaction() as s:
        s.execute(update(JobRun).where(JobRun.id == run_id)
                  .values(status=status, finished_at=utcnow(), summary=summary[:4000]))
    log.info("job finished", extra={"job": job.name, "slot": slot, "status": status, "summary": summary})
    return summary if status == "ok" else None


GRACE = timedelta(seconds=300)


def scheduled_slot(trig: CronTrigger | IntervalTrigger, now: datetime) -> str:
    """The schedule slot a firing at ``now`` belongs to, the same in every process.

    APScheduler does not tell a job its scheduled time: for cron it is the latest fire time not after
    ``now`` (within the misfire grace); for intervals the epoch is cut into aligned windows.
    """
    if isinstance(trig, IntervalTrigger):
        seconds = int(trig.interval.total_seconds())
        return f"i{int(now.timestamp()) // seconds * seconds}"
    fire = trig.get_next_fire_time(None, now - GRACE)
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trig.get_next_fire_time(fire, fire + timedelta(seconds=1))
    when = latest or now.replace(second=0, microsecond=0)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def build_scheduler(rt: Runtime) -> BackgroundScheduler:
    sched = BackgroundScheduler(timezone=rt.config.tz)
    for name, job in load_jobs().items():
        trig = trigger_for(rt, name)
        if trig is None:
            continue

        def fire(job: Job = job, trig: CronTrigger | IntervalTrigger = trig) -> None:
            run_job(rt, job, scheduled_slot(trig, datetime.now(rt.config.tz)))

        sched.add_job(fire, trig, id=name, name=name, coalesce=True, max_instances=1, misfire_grace_time=300)
    return sched
