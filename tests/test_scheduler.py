"""Scheduled jobs: one run per schedule slot across processes, slots that agree between processes,
the cleanup job, the scheduler built from config, and the `salesbot jobs` commands."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from jobs.registry import Job, load_jobs
from jobs.scheduler import build_scheduler, run_job, scheduled_slot, trigger_for
from storage.models import JobRun, OutboxMessage, ProcessedCallback
from storage.types import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Counting:
    """A job that counts its runs (and can be told to fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.runs = 0
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, rt) -> str:
        with self.lock:
            self.runs += 1
        if self.fail:
            raise RuntimeError("half-way")
        return f"run {self.runs}"


def job_runs(rt) -> list[JobRun]:
    with rt.db.sessions() as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


# ---- once per slot -------------------------------------------------------------------------------


def test_same_slot_in_two_processes_runs_once(make_runtime):
    a, b = make_runtime(), make_runtime()
    fn = Counting()
    job = Job("counting", fn, "test job")
    start = threading.Barrier(2)
    results: dict[str, str | None] = {}

    def fire(name: str, rt) -> None:
        start.wait(timeout=10)
        results[name] = run_job(rt, job, "2026-03-09T19:30Z", owner=name)

    threads = [threading.Thread(target=fire, args=("a", a)), threading.Thread(target=fire, args=("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert fn.runs == 1
    assert sorted(map(str, results.values())) == ["None", "run 1"]
    [run] = job_runs(a)
    assert (run.name, run.slot, run.status, run.summary) == ("counting", "2026-03-09T19:30Z", "ok", "run 1")
    assert run.owner in ("a", "b") and run.finished_at is not None
    # the next slot runs again
    assert run_job(b, job, "2026-03-10T19:30Z") == "run 2"
    assert [r.slot for r in job_runs(a)] == ["2026-03-09T19:30Z", "2026-03-10T19:30Z"]


def test_a_slot_is_not_rerun_when_redis_forgot_the_lock(rt):
    fn = Counting()
    job = Job("counting", fn, "test job")
    assert run_job(rt, job, "slot-1") == "run 1"
    for key in rt.redis.keys("job:counting:*"):
        rt.redis.delete(key)
    assert run_job(rt, job, "slot-1") is None  # the job_runs unique key still says it ran
    assert fn.runs == 1 and len(job_runs(rt)) == 1


def test_a_failing_job_is_recorded_as_failed(rt, caplog):
    job = Job("crashing", Counting(fail=True), "test job")
    with caplog.at_level(logging.ERROR):
        assert run_job(rt, job, "slot-1") is None
    [run] = job_runs(rt)
    assert run.status == "failed" and "half-way" in run.summary and run.finished_at is not None


def test_jobs_run_with_the_collector_quiet_and_leave_it_as_they_found_it_even_when_overlapping(rt):
    """A worker runs jobs in threads for days: the collector settings a job changes must come back once
    the last running job ends, or the worker's memory would grow unchecked."""
    import gc

    before = gc.get_threshold()
    inside: list[tuple[int, int, int]] = []
    started, release = threading.Event(), threading.Event()

    def slow(_rt: object) -> str:
        inside.append(gc.get_threshold())
        started.set()
        release.wait(10)
        return "slow done"

    def quick(_rt: object) -> str:
        inside.append(gc.get_threshold())
        return "quick done"

    t = threading.Thread(target=run_job, args=(rt, Job("slow", slow, "test job"), "slot-1"))
    t.start()
    assert started.wait(10)
    assert run_job(rt, Job("quick", quick, "test job"), "slot-1") == "quick done"  # ends while slow runs
    assert gc.get_threshold()[0] == 50_000  # still quiet for the job that is running
    release.set()
    t.join(10)
    assert [x[0] for x in inside] == [50_000, 50_000]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


# ---- slots ---------------------------------------------------------------------------------------


def at(*args: int, micro: int = 0) -> datetime:
    return datetime(*args, microsecond=micro, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_firings_of_the_same_cron_time_share_a_slot_and_other_times_do_not():
    daily = CronTrigger.from_crontab("30 3 * * *", timezone=SHANGHAI)
    first = scheduled_slot(daily, at(2026, 3, 10, 3, 30, 0, micro=1500))
    assert first == "2026-03-09T19:30Z"  # 03:30 in Shanghai, in UTC
    assert scheduled_slot(daily, at(2026, 3, 10, 3, 30, 4)) == first  # another process, a little later
    assert scheduled_slot(daily, at(2026, 3, 10, 3, 33, 0)) == first  # late, within the misfire grace
    assert scheduled_slot(daily, at(2026, 3, 11, 3, 30, 1)) != first  # the next day

    every5 = CronTrigger.from_crontab("*/5 * * * *", timezone=SHANGHAI)
    s0 = scheduled_slot(every5, at(2026, 3, 10, 10, 0, 1))
    assert scheduled_slot(every5, at(2026, 3, 10, 10, 0, 3)) == s0
    assert scheduled_slot(every5, at(2026, 3, 10, 10, 4, 59)) == s0
    assert scheduled_slot(every5, at(2026, 3, 10, 10, 5, 0)) != s0


def test_interval_slots_agree_between_processes_started_at_different_times():
    a = IntervalTrigger(seconds=600, timezone=SHANGHAI, start_date=at(2026, 3, 10, 9, 0, 7))
    b = IntervalTrigger(seconds=600, timezone=SHANGHAI, start_date=at(2026, 3, 10, 9, 3, 41))
    assert scheduled_slot(a, at(2026, 3, 10, 10, 0, 7)) == scheduled_slot(b, at(2026, 3, 10, 10, 3, 41))
    assert scheduled_slot(a, at(2026, 3, 10, 10, 0, 7)) != scheduled_slot(a, at(2026, 3, 10, 10, 10, 7))


# ---- the scheduler from config -------------------------------------------------------------------


def test_build_scheduler_schedules_only_enabled_jobs(make_runtime):
    on = build_scheduler(make_runtime())
    job = on.get_job("cleanup")
    assert job is not None and isinstance(job.trigger, CronTrigger)
    assert str(job.trigger.fields[CronTrigger.FIELD_NAMES.index("hour")]) == "3"
    off = build_scheduler(make_runtime(scheduler__jobs__cleanup__enabled=False))
    assert off.get_job("cleanup") is None


def test_interval_schedule_from_config(make_runtime):
    rt = make_runtime(scheduler__jobs__cleanup__cron="", scheduler__jobs__cleanup__interval_s=900)
    trig = trigger_for(rt, "cleanup")
    assert isinstance(trig, IntervalTrigger) and trig.interval == timedelta(seconds=900)
    neither = make_runtime(scheduler__jobs__cleanup__cron="", scheduler__jobs__cleanup__interval_s=0)
    assert trigger_for(neither, "cleanup") is None


def test_the_same_firing_in_two_worker_processes_runs_the_job_once(make_runtime):
    """What APScheduler calls at the scheduled time, in two processes: one job_runs row."""
    a, b = make_runtime(), make_runtime()
    fires = [build_scheduler(rt).get_job("cleanup").func for rt in (a, b)]
    threads = [threading.Thread(target=f) for f in fires]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    runs = job_runs(a)
    assert len(runs) == 1 and runs[0].name == "cleanup" and runs[0].status == "ok"


# ---- cleanup -------------------------------------------------------------------------------------


def test_cleanup_removes_only_what_is_past_retention(rt):
    now = utcnow()
    old, recent = now - timedelta(days=40), now - timedelta(days=1)
    with rt.db.transaction() as s:
        s.add_all([
            ProcessedCallback(key="msg:old", processed_at=now - timedelta(days=8)),
            ProcessedCallback(key="msg:recent", processed_at=recent),
            OutboxMessage(recipient="a", msgtype="text", body={"content": "old sent"}, status="sent",
                          created_at=old, sent_at=old),
            OutboxMessage(recipient="a", msgtype="text", body={"content": "recent sent"}, status="sent",
                          created_at=recent, sent_at=recent),
            OutboxMessage(recipient="a", msgtype="text", body={"content": "old pending"}, status="pending",
                          created_at=old, next_attempt_at=old),
            OutboxMessage(recipient="a", msgtype="text", body={"content": "old failed"}, status="failed",
                          created_at=old, next_attempt_at=old),
            # images WeCom never took: past retention only their bytes go; a pending one keeps them
            OutboxMessage(recipient="a", msgtype="image", body={"content": "old dead image"}, media=b"\x89PNG old",
                          status="dead", created_at=old, next_attempt_at=old, last_error="errcode 40004"),
            OutboxMessage(recipient="a", msgtype="image", body={"content": "old pending image"},
                          media=b"\x89PNG pending", status="pending", created_at=old, next_attempt_at=old),
            OutboxMessage(recipient="a", msgtype="image", body={"content": "recent failed image"},
                          media=b"\x89PNG recent", status="failed", created_at=recent, next_attempt_at=recent),
            JobRun(name="link_clicks", slot="old-ok", owner="w", status="ok", started_at=old, finished_at=old),
            JobRun(name="link_clicks", slot="recent-ok", owner="w", status="ok", started_at=recent,
                   finished_at=recent),
            JobRun(name="credit_check", slot="old-failed", owner="w", status="failed", started_at=old,
                   finished_at=old),
        ])
    summary = run_job(rt, load_jobs()["cleanup"], "slot-1")
    assert summary == ("removed 1 processed keys, 1 delivered outbox rows, 1 finished job runs, "
                       "dropped 1 undelivered images' bytes")
    with rt.db.sessions() as s:
        assert list(s.scalars(select(ProcessedCallback.key))) == ["msg:recent"]
        left = sorted(s.scalars(select(OutboxMessage.body)), key=str)
        runs = sorted(s.scalars(select(JobRun.slot)))
        media = {r.body["content"]: (r.media, r.last_error) for r in s.scalars(select(OutboxMessage))
                 if r.msgtype == "image"}
    assert sorted(b["content"] for b in left) == ["old dead image", "old failed", "old pending",
                                                  "old pending image", "recent failed image", "recent sent"]
    assert media == {"old dead image": (None, "errcode 40004"),  # the row and why it failed stay
                     "old pending image": (b"\x89PNG pending", None),  # still to be sent
                     "recent failed image": (b"\x89PNG recent", None)}
    assert runs == ["old-failed", "recent-ok", "slot-1"]  # a failed run stays for the operator
    # idempotent: a rerun removes nothing more
    assert run_job(rt, load_jobs()["cleanup"], "slot-2") == ("removed 0 processed keys, 0 delivered outbox rows, "
                                                               "0 finished job runs")


# ---- salesbot jobs -------------------------------------------------------------------------------


@pytest.fixture
def cli_env(db_url: str, redis_url: str):
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield {"SALESBOT_CONFIG": "", "SALESBOT_DATABASE_URL": db_url, "SALESBOT_REDIS_URL": redis_url,
           "SALESBOT_LOG_JSON": "false"}
    # the command set up logging to the runner's (now closed) stderr: put logging back
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_jobs_list_shows_each_job_with_its_schedule(cli_env, make_runtime):
    result = CliRunner().invoke(main, ["jobs", "list"], env=cli_env)
    assert result.exit_code == 0, result.output
    [line] = [ln for ln in result.output.splitlines() if ln.startswith("cleanup")]
    assert "30 3 * * *" in line and "enabled" in line and "purge" in line
    off = CliRunner().invoke(main, ["jobs", "list"],
                             env=dict(cli_env, SALESBOT_SCHEDULER_JOBS_CLEANUP_ENABLED="false"))
    assert "disabled" in [ln for ln in off.output.splitlines() if ln.startswith("cleanup")][0]


def test_jobs_run_cleanup_runs_it_now(cli_env, rt):
    with rt.db.transaction() as s:
        s.add(ProcessedCallback(key="msg:old", processed_at=utcnow() - timedelta(days=30)))
    result = CliRunner().invoke(main, ["jobs", "run", "cleanup"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "cleanup: removed 1 processed keys, 0 delivered outbox rows, 0 finished job runs" in result.output
    [run] = job_runs(rt)
    assert run.name == "cleanup" and run.status == "ok" and run.slot.startswith("manual-")
    # run by hand again: it runs again (a new slot), with nothing left to remove
    again = CliRunner().invoke(main, ["jobs", "run", "cleanup"], env=cli_env)
    assert again.exit_code == 0 and "removed 0 processed keys" in again.output
    assert len(job_runs(rt)) == 2


def test_jobs_run_unknown_name_fails_with_a_clear_message(cli_env):
    result = CliRunner().invoke(main, ["jobs", "run", "no-such-job"], env=cli_env)
    assert result.exit_code == 2
    assert "unknown job 'no-such-job'" in result.output and "cleanup" in result.output
