"""Tracked-link clicks through the Redis queue (issue 9, benchmark goal): the redirect buffers, the flush
queues, the drain stores each click exactly once, follow-ups still reach the rep, revocation still stops
redirects, and a Redis outage (at the click or at the flush) or a graceful stop loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, update

import bot.links as links_module
from bot.app import create_app, drain_background_work
from bot.links import CACHE_SIZE, CACHE_TTL_S, REDIS_RETRY_S, UNKNOWN_SIZE, Clicks, Link, LinkCache, close_all
from jobs import link_clicks
from jobs.link_clicks import QUEUE, WORKER_KEY, drain
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.behaviour import CustomerEvent, TrackedLink
from tests.conftest import REDIS_URL
from tests.harness import Chat

PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh")
PREVIEW_UA = "wxwork/4.1.22 CFNetwork/1410.0.3 Darwin/22.6.0"
REMINDER = "【杭州云栖科技有限公司】客户刚查看了《竞品对比白皮书》，建议 2 小时内发送我方差异化对比"


SLOW_FLUSH_MS = 60_000  # the flusher never fires within a test: the test flushes where it would


def make_bot(make_runtime: Any, wecom: Any, **overrides: Any) -> Chat:
    rt = make_runtime(**overrides)
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司 信用代码 91330100716105852F 行业 软件")
    chat.say("zhangsan", "新商机 杭州云栖 15万 方案演示")
    chat.say("admin", "资料 新增 竞品对比白皮书 https://docs.example.com/compare.pdf?v=2 竞品对比")
    chat.say("admin", "资料 新增 产品手册 https://docs.example.com/manual.pdf 手册")
    return chat


@pytest.fixture
def bot(make_runtime, wecom, company) -> Chat:
    """Clicks are buffered (the default path); the flusher's interval is longer than any test and the links
    version has just been read, so every click waits in the buffer until ``get`` (or a test) flushes it."""
    chat = make_bot(make_runtime, wecom, links__click_flush_ms=SLOW_FLUSH_MS)
    chat.flush_clicks()  # reads the links version: clicks from here on are buffered
    return chat


@pytest.fixture
def sync_bot(make_runtime, wecom, company) -> Chat:
    """``links.click_flush_ms = 0``: every click is queued in its own round trip, as before the buffer."""
    return make_bot(make_runtime, wecom, links__click_flush_ms=0)


def clicks_of(chat: Chat) -> Clicks:
    return chat.app.extensions["salesbot.links"]  # type: ignore[no-any-return]


@pytest.fixture
def quiet(bot: Chat, monkeypatch: pytest.MonkeyPatch) -> Chat:
    """The web process does not drain in the background: the test decides when the drain runs. Its start-up
    preload has run, so a link made by the test is read on its first click, not preloaded meanwhile."""
    monkeypatch.setattr(bot.app.extensions["salesbot.links"], "kick", lambda: None)
    assert bot.app.extensions["salesbot.links"].preloaded.wait(30)
    return bot


def link(chat: Chat, item: str) -> str:
    reply = chat.say("zhangsan", f"链接 杭州云栖 {item}")
    return reply.split("127.0.0.1:8000", 1)[1].split()[0]


def get(chat: Chat, path: str, ua: str = PHONE_UA) -> Any:
    """Follow the link, then flush (what the flusher does within ``links.click_flush_ms``)."""
    resp = click(chat, path, ua)
    chat.flush_clicks()
    return resp


def click(chat: Chat, path: str, ua: str = PHONE_UA) -> Any:
    """Follow the link and nothing more."""
    return chat.app.test_client().get(path, headers={"User-Agent": ua})


def events(chat: Chat, kind: str = "link_click") -> list[CustomerEvent]:
    with chat.rt.db.sessions() as s:
        return list(s.scalars(select(CustomerEvent).where(CustomerEvent.type == kind).order_by(CustomerEvent.id)))


def queued(chat: Chat) -> int:
    return int(chat.rt.redis.llen(QUEUE))


def reminders(chat: Chat) -> list[str]:
    chat.deliver()
    return [m.body["content"] for m in chat.inbox("zhangsan") if "客户刚查看了" in m.body.get("content", "")]


def test_a_click_is_queued_then_stored_exactly_once_however_often_the_drain_runs(quiet: Chat):
    path = link(quiet, "竞品对比")
    for _ in range(3):
        assert get(quiet, path).status_code == 302
    assert queued(quiet) == 3 and events(quiet) == []
    assert drain(quiet.rt, followups=0) == (3, 0)
    assert drain(quiet.rt, followups=0) == (0, 0)
    stored = events(quiet)
    assert queued(quiet) == 0 and len(stored) == 3
    assert len({e.external_id for e in stored}) == 3 and all(e.external_id.startswith("click:") for e in stored)
    assert all(e.source == "link" and e.category == "competitor" and e.processed_at is None
               and e.occurred_at.tzinfo is not None and e.data == {"token": path.rsplit("/", 1)[1]} for e in stored)


def test_a_drain_that_crashes_after_its_commit_stores_nothing_twice(quiet: Chat, monkeypatch: pytest.MonkeyPatch):
    path = link(quiet, "竞品对比")
    for _ in range(3):
        get(quiet, path)

    def crash(*_a: Any) -> bool:
        raise ConnectionError("worker killed between the commit and the trim")

    monkeypatch.setattr(link_clicks, "_trim", crash)
    with pytest.raises(ConnectionError):
        drain(quiet.rt)
    assert len(events(quiet)) == 3 and queued(quiet) == 3  # committed, still queued
    monkeypatch.undo()
    quiet.rt.redis.delete(link_clicks.LOCK)  # a killed worker's lock lapses
    assert drain(quiet.rt, followups=0) == (0, 0)
    assert len(events(quiet)) == 3 and queued(quiet) == 0


def test_a_drain_that_lost_its_lock_leaves_the_queue_to_the_next_one(quiet: Chat, monkeypatch: pytest.MonkeyPatch):
    path = link(quiet, "竞品对比")
    for _ in range(2):
        get(quiet, path)
    store = link_clicks.store_clicks

    def slow_store(rt: Any, raw: list[str]) -> int:
        rt.redis.set(link_clicks.LOCK, "another-drainer")  # ours lapsed while we stored; someone took it
        return store(rt, raw)

    monkeypatch.setattr(link_clicks, "store_clicks", slow_store)
    assert drain(quiet.rt, followups=0) == (2, 0)
    assert queued(quiet) == 2  # not trimmed: the lock is not ours
    assert drain(quiet.rt, followups=0) == (0, 0)  # the other drainer holds it
    monkeypatch.undo()
    quiet.rt.redis.delete(link_clicks.LOCK)
    assert drain(quiet.rt, followups=0) == (0, 0)
    assert len(events(quiet)) == 2 and queued(quiet) == 0


def test_the_reminder_reaches_the_rep_after_the_drain_and_the_customer_events_job(quiet: Chat):
    get(quiet, link(quiet, "竞品对比"))
    drain(quiet.rt, followups=0)
    assert reminders(quiet) == []
    run_job(quiet.rt, load_jobs()["customer_events"], f"t-{uuid.uuid4().hex}")
    assert reminders(quiet) == [REMINDER]


def test_the_link_clicks_job_stores_and_follows_up(quiet: Chat):
    path = link(quiet, "竞品对比")
    get(quiet, path)
    get(quiet, path)
    summary = run_job(quiet.rt, load_jobs()["link_clicks"], f"t-{uuid.uuid4().hex}")
    assert summary == "2 clicks stored, 2 followed up, 0 still queued"
    assert reminders(quiet) == [REMINDER]  # once a day per customer and item
    assert all(e.processed_at is not None for e in events(quiet))


def test_the_web_process_drains_and_reminds_by_itself(bot: Chat):
    """A single process (the demo, or a deployment without a worker) still reminds within seconds."""
    assert get(bot, link(bot, "竞品对比")).status_code == 302
    drain_background_work()  # what the click set off in the background is done
    assert queued(bot) == 0 and len(events(bot)) == 1
    assert reminders(bot) == [REMINDER]


def worker_job(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Run the link_clicks job as a ``salesbot worker`` on another machine would (another process id)."""
    with monkeypatch.context() as m:
        m.setattr(link_clicks, "process_id", lambda: "worker-host:4242")
        return run_job(chat.rt, load_jobs()["link_clicks"], f"t-{uuid.uuid4().hex}")


def test_the_link_clicks_job_marks_a_worker_draining_for_three_intervals(bot: Chat, make_runtime,
                                                                         monkeypatch: pytest.MonkeyPatch):
    assert bot.rt.redis.get(WORKER_KEY) is None
    assert worker_job(bot, monkeypatch) == "0 clicks stored, 0 followed up, 0 still queued"
    assert bot.rt.redis.get(WORKER_KEY) == "worker-host:4242"
    assert 10 < bot.rt.redis.ttl(WORKER_KEY) <= 15  # 3 × the default 5 s
    assert link_clicks.worker_ttl_s(make_runtime(scheduler__jobs__link_clicks__interval_s=20)) == 60
    assert link_clicks.worker_ttl_s(make_runtime(scheduler__jobs__link_clicks__cron="* * * * *")) == 15


def test_while_a_worker_drains_a_web_kick_stores_nothing_and_the_clicks_stay_queued(bot: Chat,
                                                                                  monkeypatch: pytest.MonkeyPatch):
    worker_job(bot, monkeypatch)  # a worker elsewhere has just run the job
    path = link(bot, "竞品对比")
    assert get(bot, path).status_code == 302
    drain_background_work()  # the kick the click set off has run (and left the queue alone)
    assert queued(bot) == 1 and events(bot) == [] and reminders(bot) == []
    summary = worker_job(bot, monkeypatch)  # the worker's next run takes them
    assert summary == "1 clicks stored, 1 followed up, 0 still queued"
    assert len(events(bot)) == 1 and reminders(bot) == [REMINDER]


def test_once_the_workers_mark_lapses_the_web_process_drains_again_exactly_once(bot: Chat,
                                                                              monkeypatch: pytest.MonkeyPatch):
    worker_job(bot, monkeypatch)
    path = link(bot, "竞品对比")
    assert get(bot, path).status_code == 302
    drain_background_work()
    assert queued(bot) == 1 and events(bot) == []
    bot.rt.redis.pexpire(WORKER_KEY, 50)  # the worker stopped: its mark lapses
    deadline = time.monotonic() + 10
    while bot.rt.redis.exists(WORKER_KEY) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not bot.rt.redis.exists(WORKER_KEY)
    web = create_app(runtime=bot.rt)  # a web process (the first one's executor was shut down above)
    assert web.test_client().get(path, headers={"User-Agent": PHONE_UA}).status_code == 302
    drain_background_work()
    stored = events(bot)
    assert queued(bot) == 0 and len(stored) == 2 and len({e.external_id for e in stored}) == 2
    assert drain(bot.rt, followups=0) == (0, 0) and len(events(bot)) == 2


def test_the_mark_of_the_web_process_own_scheduler_does_not_stop_its_drain(bot: Chat):
    """``salesbot demo``: the scheduler runs in the web process; its clicks are still stored within a second."""
    run_job(bot.rt, load_jobs()["link_clicks"], f"t-{uuid.uuid4().hex}")
    assert bot.rt.redis.get(WORKER_KEY) == link_clicks.process_id()
    assert get(bot, link(bot, "竞品对比")).status_code == 302
    drain_background_work()
    assert queued(bot) == 0 and len(events(bot)) == 1
    assert reminders(bot) == [REMINDER]


def test_previews_are_stored_as_previews_and_never_followed_up(quiet: Chat):
    path = link(quiet, "竞品对比")
    assert get(quiet, path, PREVIEW_UA).status_code == 302
    assert drain(quiet.rt) == (1, 0)
    run_job(quiet.rt, load_jobs()["customer_events"], f"t-{uuid.uuid4().hex}")
    [preview] = events(quiet, "link_preview")
    assert preview.processed_at is not None and events(quiet) == []
    assert reminders(quiet) == []


def test_redis_down_stores_the_click_directly_and_still_redirects(bot: Chat, make_runtime):
    path = link(bot, "竞品对比")
    down = make_runtime(redis__url="redis://127.0.0.1:1/15")  # nothing listens on port 1
    app = create_app(runtime=down)
    resp = app.test_client().get(path, headers={"User-Agent": PHONE_UA})
    assert resp.status_code == 302 and resp.headers["Location"] == "https://docs.example.com/compare.pdf?v=2"
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
    assert app.test_client().get("/t/doesnotexist", headers={"User-Agent": PHONE_UA}).status_code == 404
    drain_background_work()
    [stored] = events(bot)
    assert stored.external_id.startswith("click:") and stored.processed_at is not None  # followed up at once
    assert reminders(bot) == [REMINDER]


@pytest.fixture
def sync_quiet(sync_bot: Chat, monkeypatch: pytest.MonkeyPatch) -> Chat:
    monkeypatch.setattr(sync_bot.app.extensions["salesbot.links"], "kick", lambda: None)
    return sync_bot


def test_revoking_or_removing_a_cached_link_stops_the_next_redirect(sync_quiet: Chat):
    """``links.click_flush_ms = 0``: each click reads the links version in its own round trip."""
    quiet = sync_quiet
    path = link(quiet, "竞品对比")
    token = path.rsplit("/", 1)[1]
    assert get(quiet, path).status_code == 302 and get(quiet, path).status_code == 302
    assert quiet.app.extensions["salesbot.links"].cache.known(token) is not None
    with quiet.rt.db.transaction() as s:
        s.get(TrackedLink, token).revoked = True
    resp = get(quiet, path)
    assert resp.status_code == 404 and "链接不存在" in resp.get_data(as_text=True)
    manual = link(quiet, "产品手册")
    assert get(quiet, manual).status_code == 302
    assert quiet.app.extensions["salesbot.links"].cache.known(manual.rsplit("/", 1)[1]) is not None
    quiet.say("admin", "资料 删除 产品手册")
    assert get(quiet, manual).status_code == 404
    drain(quiet.rt, followups=0)
    assert len(events(quiet)) == 3  # the clicks before; the 404s recorded nothing


def test_a_link_revoked_outside_the_orm_stops_within_the_cache_ttl(quiet: Chat):
    clock = [1000.0]
    quiet.app.extensions["salesbot.links"].cache.clock = lambda: clock[0]
    path = link(quiet, "竞品对比")
    assert get(quiet, path).status_code == 302 and get(quiet, path).status_code == 302
    assert quiet.app.extensions["salesbot.links"].cache.known(path.rsplit("/", 1)[1]) is not None
    with quiet.rt.db.engine.begin() as conn:  # raw SQL: no version bump
        conn.execute(update(TrackedLink).where(TrackedLink.token == path.rsplit("/", 1)[1]).values(revoked=True))
    clock[0] += CACHE_TTL_S - 1
    assert get(quiet, path).status_code == 302  # the documented bound
    clock[0] += 2
    assert get(quiet, path).status_code == 404


def test_the_token_cache_is_bounded_and_guesses_cannot_push_real_links_out():
    cache = LinkCache()
    real = Link(customer_id=1, item_id=1, category="manual", url="https://docs.example.com/m.pdf")
    cache.put("real", real, "3")
    for i in range(UNKNOWN_SIZE + 50):
        cache.put(f"guess{i}", None, "3")
    assert cache.known("real") == (real, "3") and cache.unknown(f"guess{UNKNOWN_SIZE + 49}")
    assert not cache.unknown("guess0") and len(cache) == UNKNOWN_SIZE + 1
    for i in range(CACHE_SIZE + 10):
        cache.put(f"t{i}", real, "3")
    assert cache.known("real") is None and len(cache) == UNKNOWN_SIZE + CACHE_SIZE


def test_unreadable_queue_records_are_dropped_not_stuck(quiet: Chat):
    get(quiet, link(quiet, "竞品对比"))
    quiet.rt.redis.rpush(QUEUE, "{not json", '["too", "short"]', '{"id":"x"}')
    get(quiet, link(quiet, "竞品对比"))
    assert drain(quiet.rt, followups=0) == (2, 0)
    assert queued(quiet) == 0
    with quiet.rt.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CustomerEvent)) == 2


# ---- the click buffer (links.click_flush_ms) -------------------------------------------------------


def test_the_default_flush_interval_is_50_ms(make_runtime):
    assert make_runtime().config.get("links.click_flush_ms") == 50


def test_buffered_clicks_reach_redis_in_one_round_trip_at_the_flush_and_are_drained_exactly_once(
        quiet: Chat, monkeypatch: pytest.MonkeyPatch):
    path = link(quiet, "竞品对比")
    st = clicks_of(quiet)
    for _ in range(3):
        assert click(quiet, path).status_code == 302
    assert st.buffered == 3 and queued(quiet) == 0  # answered, not yet in Redis
    sent: list[tuple[tuple[str, ...], ...]] = []
    line = st.line
    monkeypatch.setattr(st, "line", lambda *commands: sent.append(commands) or line(*commands))
    assert st.flush() == 3
    assert len(sent) == 1 and [c[0] for c in sent[0]] == ["RPUSH", "GET"] and len(sent[0][0]) == 2 + 3
    assert st.buffered == 0 and queued(quiet) == 3
    assert drain(quiet.rt, followups=0) == (3, 0)
    assert drain(quiet.rt, followups=0) == (0, 0)
    stored = events(quiet)
    assert queued(quiet) == 0 and len({e.external_id for e in stored}) == 3


def flushing_bot(make_runtime: Any, wecom: Any, monkeypatch: pytest.MonkeyPatch,
                 flush_ms: int) -> tuple[Chat, Clicks, str]:
    """A bot whose flusher thread really runs every ``flush_ms`` (no background drain), and a link to click."""
    chat = make_bot(make_runtime, wecom, links__click_flush_ms=flush_ms)
    st = clicks_of(chat)
    monkeypatch.setattr(st, "kick", lambda: None)
    return chat, st, link(chat, "竞品对比")


def test_the_flusher_thread_pushes_the_buffer_by_itself(make_runtime, wecom, company,
                                                        monkeypatch: pytest.MonkeyPatch):
    chat, st, path = flushing_bot(make_runtime, wecom, monkeypatch, 200)
    chat.flush_clicks()  # the version was just read: the clicks are buffered
    assert click(chat, path).status_code == 302 and click(chat, path).status_code == 302
    assert st._thread is not None and st._thread.is_alive()  # started by the first buffered click
    deadline = time.monotonic() + 10
    while queued(chat) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert queued(chat) == 2 and st.buffered == 0
    assert drain(chat.rt, followups=0) == (2, 0) and len(events(chat)) == 2


def test_click_flush_ms_0_queues_each_click_in_its_own_round_trip(sync_quiet: Chat):
    path = link(sync_quiet, "竞品对比")
    st = clicks_of(sync_quiet)
    sync_quiet.flush_clicks()  # a version read just now changes nothing: there is no buffer
    for n in (1, 2):
        assert click(sync_quiet, path).status_code == 302
        assert queued(sync_quiet) == n
    assert st.buffered == 0 and st._thread is None
    assert drain(sync_quiet.rt, followups=0) == (2, 0)


def test_a_revocation_reaches_buffered_redirects_at_the_next_flush(quiet: Chat):
    path = link(quiet, "竞品对比")
    token = path.rsplit("/", 1)[1]
    assert get(quiet, path).status_code == 302 and get(quiet, path).status_code == 302
    assert clicks_of(quiet).cache.known(token) is not None
    with quiet.rt.db.transaction() as s:
        s.get(TrackedLink, token).revoked = True  # bumps the links version after the commit
    # until the flusher next reads the version (within links.click_flush_ms), the cached link still redirects
    assert click(quiet, path).status_code == 302
    quiet.flush_clicks()
    resp = click(quiet, path)
    assert resp.status_code == 404 and "链接不存在" in resp.get_data(as_text=True)
    assert clicks_of(quiet).buffered == 0  # a 404 buffers nothing
    manual = link(quiet, "产品手册")
    assert get(quiet, manual).status_code == 302
    quiet.say("admin", "资料 删除 产品手册")
    quiet.flush_clicks()
    assert click(quiet, manual).status_code == 404
    quiet.flush_clicks()
    assert drain(quiet.rt, followups=0) == (4, 0)  # every click answered with a 302, once each


def test_after_a_quiet_spell_the_click_reads_the_version_itself_and_a_revocation_holds_at_once(quiet: Chat):
    path = link(quiet, "竞品对比")
    token = path.rsplit("/", 1)[1]
    st = clicks_of(quiet)
    assert get(quiet, path).status_code == 302
    with quiet.rt.db.transaction() as s:
        s.get(TrackedLink, token).revoked = True
    st.version_at -= 2 * st.fresh_s  # no flush for longer than two intervals (no clicks)
    assert click(quiet, path).status_code == 404  # its own round trip read the new version (and cancelled)
    manual = link(quiet, "产品手册")
    st.version_at -= 2 * st.fresh_s
    before = queued(quiet)
    assert click(quiet, manual).status_code == 302
    assert queued(quiet) == before + 1 and st.buffered == 0  # queued at once, not buffered
    assert click(quiet, manual).status_code == 302 and st.buffered == 1  # the version is fresh again
    quiet.flush_clicks()
    assert drain(quiet.rt, followups=0) == (3, 0)


def test_redis_down_at_the_flush_stores_the_buffered_clicks_directly_exactly_once(quiet: Chat,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    path = link(quiet, "竞品对比")
    st = clicks_of(quiet)
    for _ in range(2):
        assert click(quiet, path).status_code == 302
    assert st.buffered == 2

    def down(*_commands: Any) -> list[Any]:
        raise redis.ConnectionError("redis went away")

    monkeypatch.setattr(st, "line", down)
    assert st.flush() == 2
    stored = events(quiet)
    assert len(stored) == 2 and len({e.external_id for e in stored}) == 2 and queued(quiet) == 0
    assert time.monotonic() < st.redis_down_until <= time.monotonic() + REDIS_RETRY_S
    assert click(quiet, path).status_code == 302  # the next clicks go straight to the database for a while
    assert len(events(quiet)) == 3 and st.buffered == 0
    monkeypatch.undo()
    assert drain(quiet.rt, followups=0) == (0, 0) and len(events(quiet)) == 3


def test_a_flush_whose_reply_was_lost_stores_each_click_once(quiet: Chat, monkeypatch: pytest.MonkeyPatch):
    """The RPUSH reached Redis but the connection broke before the reply: queued and stored directly."""
    path = link(quiet, "竞品对比")
    st = clicks_of(quiet)
    for _ in range(2):
        click(quiet, path)
    line = st.line

    def lost(*commands: Any) -> list[Any]:
        line(*commands)
        raise redis.ConnectionError("connection reset before the reply")

    monkeypatch.setattr(st, "line", lost)
    assert st.flush() == 2
    assert len(events(quiet)) == 2 and queued(quiet) == 2
    monkeypatch.undo()
    assert drain(quiet.rt, followups=0) == (0, 0)
    stored = events(quiet)
    assert queued(quiet) == 0 and len(stored) == 2 and len({e.external_id for e in stored}) == 2


def test_a_full_buffer_sends_the_click_in_its_own_round_trip(quiet: Chat, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(links_module, "MAX_BUFFER", 2)
    path = link(quiet, "竞品对比")
    st = clicks_of(quiet)
    for _ in range(3):
        assert click(quiet, path).status_code == 302
    assert st.buffered == 2 and queued(quiet) == 1
    quiet.flush_clicks()
    assert queued(quiet) == 3 and drain(quiet.rt, followups=0) == (3, 0)


def test_closing_flushes_the_buffer_and_later_clicks_are_queued_at_once(quiet: Chat):
    path = link(quiet, "竞品对比")
    st = clicks_of(quiet)
    for _ in range(2):
        click(quiet, path)
    flusher = st._thread
    assert st.buffered == 2 and queued(quiet) == 0 and flusher is not None
    close_all()  # what runs at interpreter exit (and in drain_background_work)
    assert st.buffered == 0 and queued(quiet) == 2
    flusher.join(5)
    assert not flusher.is_alive()
    assert click(quiet, path).status_code == 302 and queued(quiet) == 3 and st.buffered == 0
    assert drain(quiet.rt, followups=0) == (3, 0) and len(events(quiet)) == 3


def test_interpreter_exit_flushes_the_buffer(quiet: Chat):
    """A gunicorn worker stopped gracefully exits through sys.exit: atexit pushes what is buffered (here,
    without a shared Redis, it is stored directly; with a real one it is queued)."""
    path = link(quiet, "竞品对比")
    redis_url = REDIS_URL or "redis://127.0.0.1:1/15"  # the embedded Redis is this process's alone
    env = {"SALESBOT_DATABASE_URL": quiet.rt.config.get("database.url"), "SALESBOT_REDIS_URL": redis_url,
           "SALESBOT_LINKS_CLICK_FLUSH_MS": str(SLOW_FLUSH_MS), "SALESBOT_LOG_JSON": "false"}
    script = textwrap.dedent(f"""
        import time
        from bot.app import create_app
        from bot.config import load_config
        app = create_app(load_config(None, env={env!r}))
        st = app.extensions["salesbot.links"]
        st.saw(None, time.monotonic())  # as if a flush had just read the links version
        resp = app.test_client().get({path!r}, headers={{"User-Agent": {PHONE_UA!r}}})
        print(resp.status_code, st.buffered)
    """)
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["302", "1"]  # answered and buffered when the interpreter began to exit
    drain(quiet.rt, followups=0)
    stored = events(quiet)
    assert len(stored) == 1 and queued(quiet) == 0


def test_a_forked_child_starts_with_an_empty_buffer_and_no_flusher(quiet: Chat):
    path = link(quiet, "竞品对比")
    st = clicks_of(quiet)
    click(quiet, path)
    assert st.buffered == 1 and st._thread is not None
    read, write = os.pipe()
    with st._flushing:  # a flush under way in the parent when it forks
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once
            try:
                fresh = (st.buffered == 0 and st._thread is None and not st._flushing.locked()
                         and not st._lock.locked())
                os.write(write, b"1" if fresh else b"0")
            finally:
                os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert st.buffered == 1  # the parent's buffer is the parent's to push
    quiet.flush_clicks()
    assert drain(quiet.rt, followups=0) == (1, 0)


def test_many_threads_clicking_while_the_flusher_runs_store_each_click_once(make_runtime, wecom, company,
                                                                           monkeypatch: pytest.MonkeyPatch):
    """gthread workers: request threads append while the flusher swaps the buffer out."""
    chat, st, path = flushing_bot(make_runtime, wecom, monkeypatch, 5)
    statuses: list[int] = []

    def clicker() -> None:
        client = chat.app.test_client()
        for i in range(25):
            if i % 10 == 0:
                chat.flush_clicks()  # explicit flushes racing the flusher's too
            statuses.append(client.get(path, headers={"User-Agent": PHONE_UA}).status_code)

    threads = [threading.Thread(target=clicker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_all()
    assert statuses.count(302) == 200
    assert queued(chat) == 200  # each answered click pushed once: none lost, none twice
    drain(chat.rt, followups=0)
    stored = events(chat)
    assert len(stored) == 200 and len({e.external_id for e in stored}) == 200 and queued(chat) == 0


def fast_path_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each tracked-link request was answered by the fast path (True) or handed to Flask (False)."""
    seen: list[bool] = []
    real = links_module._fast_follow

    def spy(*args: Any) -> Any:
        answer = real(*args)
        seen.append(answer is not None)
        return answer

    monkeypatch.setattr(links_module, "_fast_follow", spy)
    return seen


def test_the_fast_path_answers_and_records_a_click_exactly_as_flask_does(quiet: Chat, monkeypatch):
    """The second click of a link skips Flask: same 302 (status, target, headers, body) and the same stored
    click as the first, which Flask answered (the link was not cached yet)."""
    path = link(quiet, "竞品对比")
    answered_fast = fast_path_answers(monkeypatch)
    first, second = get(quiet, path), get(quiet, path)
    assert answered_fast == [False, True]
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] == "https://docs.example.com/compare.pdf?v=2"
    assert sorted(first.headers.items()) == sorted(second.headers.items())
    assert first.get_data() == second.get_data()
    assert drain(quiet.rt, followups=0) == (2, 0)
    a, b = events(quiet)
    same = ("customer_id", "type", "category", "item_id", "source", "data", "user_agent", "ip_hash")
    assert [getattr(a, k) for k in same] == [getattr(b, k) for k in same]
    assert a.ip_hash and a.user_agent == PHONE_UA and a.external_id != b.external_id


def test_a_preview_fetcher_on_the_fast_path_is_recorded_as_a_preview_not_a_click(quiet: Chat, monkeypatch):
    path = link(quiet, "竞品对比")
    answered_fast = fast_path_answers(monkeypatch)
    get(quiet, path)
    assert get(quiet, path, ua=PREVIEW_UA).status_code == 302
    assert answered_fast == [False, True]
    drain(quiet.rt, followups=0)
    assert len(events(quiet)) == 1 and len(events(quiet, "link_preview")) == 1


def test_a_failure_in_the_fast_path_is_answered_by_flask_and_the_click_stored_once(quiet: Chat, monkeypatch,
                                                                                    caplog):
    path = link(quiet, "竞品对比")
    get(quiet, path)  # cached now: the next one takes the fast path
    real, calls = links_module._redirect_wsgi, []

    def failing_once(url: str) -> Any:
        calls.append(url)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(url)

    monkeypatch.setattr(links_module, "_redirect_wsgi", failing_once)
    assert get(quiet, path).status_code == 302
    assert "fast path failed" in caplog.text
    assert drain(quiet.rt, followups=0) == (2, 0)  # the first click and this one, once each


def test_a_revocation_committed_while_redis_is_down_reaches_cached_redirects_once_redis_is_back(
        quiet: Chat, monkeypatch: pytest.MonkeyPatch):
    """The version bump that tells every web process to drop its cached links is retried until Redis takes
    it, so a cached link does not go on redirecting for the cache's 10 minutes."""
    monkeypatch.setattr(links_module, "BUMP_RETRY_S", 0.05)
    path = link(quiet, "竞品对比")
    token = path.rsplit("/", 1)[1]
    assert get(quiet, path).status_code == 302 and clicks_of(quiet).cache.known(token) is not None
    real_incr, down = quiet.rt.redis.incr, [True]

    def incr(*args: Any, **kwargs: Any) -> Any:
        if down[0]:
            raise redis.ConnectionError("redis is down")
        return real_incr(*args, **kwargs)

    monkeypatch.setattr(quiet.rt.redis, "incr", incr)
    before = quiet.rt.redis.get(links_module.VERSION_KEY)
    with quiet.rt.db.transaction() as s:
        s.get(TrackedLink, token).revoked = True  # the bump fails: Redis is down
    time.sleep(0.2)
    assert quiet.rt.redis.get(links_module.VERSION_KEY) == before  # still owed
    down[0] = False  # Redis is back: the retry lands within BUMP_RETRY_S
    deadline = time.monotonic() + 5
    while quiet.rt.redis.get(links_module.VERSION_KEY) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert quiet.rt.redis.get(links_module.VERSION_KEY) != before
    quiet.flush_clicks()  # the next flush reads the new version
    assert click(quiet, path).status_code == 404
