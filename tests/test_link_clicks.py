"""Tracked-link clicks through the Redis queue (issue 9, benchmark goal): the redirect queues, the drain
stores each click exactly once, follow-ups still reach the rep, revocation still stops redirects, and a
Redis outage loses nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.app import create_app, drain_background_work
from bot.links import CACHE_SIZE, CACHE_TTL_S, UNKNOWN_SIZE, Link, LinkCache
from jobs import link_clicks
from jobs.link_clicks import QUEUE, WORKER_KEY, drain
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.behaviour import CustomerEvent, TrackedLink
from tests.harness import Chat

PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh")
PREVIEW_UA = "wxwork/4.1.22 CFNetwork/1410.0.3 Darwin/22.6.0"
REMINDER = "【杭州云栖科技有限公司】客户刚查看了《竞品对比白皮书》，建议 2 小时内发送我方差异化对比"


@pytest.fixture
def bot(make_runtime, wecom, company) -> Chat:
    rt = make_runtime()
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司 信用代码 91330100716105852F 行业 软件")
    chat.say("zhangsan", "新商机 杭州云栖 15万 方案演示")
    chat.say("admin", "资料 新增 竞品对比白皮书 https://docs.example.com/compare.pdf?v=2 竞品对比")
    chat.say("admin", "资料 新增 产品手册 https://docs.example.com/manual.pdf 手册")
    return chat


@pytest.fixture
def quiet(bot: Chat, monkeypatch: pytest.MonkeyPatch) -> Chat:
    """The web process does not drain in the background: the test decides when the drain runs."""
    monkeypatch.setattr(bot.app.extensions["salesbot.links"], "kick", lambda: None)
    return bot


def link(chat: Chat, item: str) -> str:
    reply = chat.say("zhangsan", f"链接 杭州云栖 {item}")
    return reply.split("127.0.0.1:8000", 1)[1].split()[0]


def get(chat: Chat, path: str, ua: str = PHONE_UA) -> Any:
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


def test_revoking_or_removing_a_cached_link_stops_the_next_redirect(quiet: Chat):
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
