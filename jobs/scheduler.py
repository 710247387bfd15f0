"""APScheduler set-up from the [scheduler] config, with each run happening once across processes.

Every process may schedule every job; a run first takes a Redis lock named after the job and its
scheduled slot, then a unique (name, slot) row in job_runs, so the slot runs exactly once even when
Redis forgets the lock. A running job keeps a heartbeat on its row; when its worker dies, another
worker's sweep takes the row over once the lease lapses and reruns the (idempotent) job.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.runtime import Runtime
from jobs.registry import Job, load_jobs, quiet_gc
from storage.models import JobRun
from storage.types import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def _lease(rt: Runtime) -> timedelta:
    return timedelta(seconds=int(rt.config.get("scheduler.lease_s") or 60))


class _Heartbeat:
    """Refreshes a run's heartbeat every third of the lease while the job runs in this process."""

    def __init__(self, rt: Runtime, run_id: int, owner: str) -> None:
        self.rt, self.run_id, self.owner = rt, run_id, owner
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"job-heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        every = _lease(self.rt).total_seconds() / 3
        while not self.stop.wait(every):
            try:
                with self.rt.db.transaction() as s:
                    taken = s.execute(update(JobRun).where(JobRun.id == self.run_id, JobRun.owner == self.owner,
                                                           JobRun.status == "running")
                                      .values(heartbeat_at=utcnow())).rowcount == 0
                if taken:  # another worker took it over (we were unreachable too long): stop beating
                    log.warning("job run taken over by another worker", extra={"run": self.run_id})
                    return
            except Exception:
                log.warning("job heartbeat failed; will retry", exc_info=True, extra={"run": self.run_id})

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def _retrying(rt: Runtime, what: str, fn: Callable[[], T], patience: timedelta) -> T:
    """``fn()``, retried with backoff while the database is unreachable, for up to ``patience``."""
    deadline, pause = time.monotonic() + patience.total_seconds(), 0.5
    while True:
        try:
            return fn()
        except IntegrityError:
            raise
        except Exception:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database unavailable for %s; retrying in %.1f s", what, pause, exc_info=True)
            time.sleep(pause)
            pause = min(pause * 2, 15.0)


def _execute(rt: Runtime, job: Job, slot: str, run_id: int, owner: str) -> str | None:
    status, summary = "ok", ""
    try:
        with _Heartbeat(rt, run_id, owner), quiet_gc():
            summary = job.fn(rt) or ""
    except Exception as exc:
        log.exception("job failed", extra={"job": job.name, "slot": slot})
        status, summary = "failed", f"{type(exc).__name__}: {exc}"

    def finish() -> None:
        with rt.db.transaction() as s:
            s.execute(update(JobRun).where(JobRun.id == run_id, JobRun.owner == owner)
                      .values(status=status, finished_at=utcnow(), heartbeat_at=None, summary=summary[:4000]))

    try:  # if this never lands, the lease lapses and another worker reruns the (idempotent) job
        _retrying(rt, f"finishing job {job.name}", finish, _lease(rt))
    except Exception:
        log.exception("could not record the end of a job run; another worker will rerun it",
                      extra={"job": job.name, "slot": slot})
    log.info("job finished", extra={"job": job.name, "slot": slot, "status": status, "summary": summary})
    return summary if status == "ok" else None


def run_job(rt: Runtime, job: Job, slot: str, owner: str | None = None) -> str | None:
    """Run ``job`` for ``slot`` unless some process already did; returns its summary or None.

    The Redis lock turns away the other workers' firings of the slot cheaply; the unique job_runs row
    decides. While the database is unreachable the row is retried for the misfire grace; if it never
    lands, the lock is released so the slot is not lost for good.
    """
    owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
    lock_key = f"job:{job.name}:{slot}"
    locked = False
    try:
        # the lock only turns away the other workers' firings of this slot (they come within seconds); the
        # job_runs row stays the authority, so the key need not outlive the hour (a 5-second job keeps ~720)
        if not rt.redis.set(lock_key, owner, nx=True, ex=3600):
            return None
        locked = True
    except Exception:
        log.exception("redis unavailable for the job lock; relying on the database", extra={"job": job.name})

    def claim() -> int:
        with rt.db.transaction() as s:
            run = JobRun(name=job.name, slot=slot, owner=owner, heartbeat_at=utcnow())
            s.add(run)
            s.flush()
            return run.id

    try:
        run_id = _retrying(rt, f"starting job {job.name}", claim, GRACE)
    except IntegrityError:
        return None
    except Exception:
        log.exception("could not record the job run; slot left for a later firing", extra={"job": job.name})
        if locked:
            _release(rt, lock_key, owner)
        return None
    return _execute(rt, job, slot, run_id, owner)


def _release(rt: Runtime, key: str, owner: str) -> None:
    try:
        if rt.redis.get(key) in (owner, owner.encode()):
            rt.redis.delete(key)
    except Exception:
        log.warning("could not release the job lock %s", key, exc_info=True)


def recover_stale_runs(rt: Runtime, owner: str | None = None, jobs: dict[str, Job] | None = None) -> list[str]:
    """Take over and rerun every run whose worker died (still 'running', heartbeat older than the lease).

    Jobs are idempotent by design (unique keys, state checks), so a rerun completes what the dead
    worker left half-done without doing anything twice. The take-over is a compare-and-set on the
    row, so of several workers sweeping at once exactly one reruns it. Returns the slots taken over.
    """
    owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
    jobs = jobs if jobs is not None else load_jobs()
    cutoff = utcnow() - _lease(rt)
    with rt.db.sessions() as s:
        stale = s.execute(select(JobRun.id, JobRun.name, JobRun.slot, JobRun.owner, JobRun.heartbeat_at)
                          .where(JobRun.status == "running", JobRun.heartbeat_at < cutoff)).all()
    taken: list[str] = []
    for run_id, name, slot, dead, beat in stale:
        with rt.db.transaction() as s:
            won = s.execute(update(JobRun).where(JobRun.id == run_id, JobRun.status == "running",
                                                 JobRun.owner == dead, JobRun.heartbeat_at == beat)
                            .values(owner=owner, heartbeat_at=utcnow(), attempts=JobRun.attempts + 1)).rowcount
        if not won:
            continue
        job = jobs.get(name)
        log.warning("taking over a job run whose worker stopped", extra={"job": name, "slot": slot, "dead": dead})
        if job is None:
            with rt.db.transaction() as s:
                s.execute(update(JobRun).where(JobRun.id == run_id).values(
                    status="failed", finished_at=utcnow(), heartbeat_at=None, summary=f"unknown job {name!r}"))
            continue
        _execute(rt, job, slot, run_id, owner)
        taken.append(f"{name}@{slot}")
    return taken


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
    # run_job logs each run with its slot and summary; APScheduler's own line per firing is noise
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    sched = BackgroundScheduler(timezone=rt.config.tz)
    for name, job in load_jobs().items():
        trig = trigger_for(rt, name)
        if trig is None:
            continue

        def fire(job: Job = job, trig: CronTrigger | IntervalTrigger = trig) -> None:
            run_job(rt, job, scheduled_slot(trig, datetime.now(rt.config.tz)))

        sched.add_job(fire, trig, id=name, name=name, coalesce=True, max_instances=1, misfire_grace_time=300)
    owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"

    def sweep() -> None:
        try:
            recover_stale_runs(rt, owner)
        except Exception:
            log.exception("recovering stale job runs failed; next sweep retries")

    # at start-up and then every lease: runs left 'running' by a worker that died are taken over
    sched.add_job(sweep, IntervalTrigger(seconds=int(_lease(rt).total_seconds()), timezone=rt.config.tz),
                  id="_recover_stale_runs", name="recover stale job runs", next_run_time=datetime.now(rt.config.tz),
                  coalesce=True, max_instances=1)
    return sched
