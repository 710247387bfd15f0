"""Each web process keeps the askers' member rows (bot.members); a change of roles made anywhere applies to
the very next message, and a Redis flush or a change behind the app's back cannot keep a stale row alive."""

from __future__ import annotations

from sqlalchemy import update

from bot import members
from bot.app import create_app
from storage.models import Member
from tests.harness import Chat

USAGE = "用法：联系人"  # what a rep gets for a bare 联系人 (sales only)
REFUSED = "「联系人」仅限"


def behind_the_apps_back(rt) -> None:
    """zhangsan becomes finance by SQL on a bare connection (as a DBA would): no version bump."""
    with rt.db.engine.begin() as conn:
        conn.execute(update(Member.__table__).where(Member.userid == "zhangsan").values(roles=["finance"]))


def test_a_role_revoked_through_another_process_applies_to_the_next_message(chat: Chat, make_runtime, wecom,
                                                                           company):
    assert USAGE in chat.say("zhangsan", "联系人")  # this process has now read (and kept) zhangsan's row
    other = Chat(create_app(runtime=make_runtime()), chat.rt, wecom)  # a second web process, same DB + Redis
    assert "财务" in other.say("admin", "角色 zhangsan 财务")
    reply = chat.say("zhangsan", "联系人")
    assert REFUSED in reply and "财务" in reply
    assert "销售代表" in chat.say("admin", "角色 zhangsan 销售代表")  # and back, through this process
    assert USAGE in other.say("zhangsan", "联系人")


def test_a_flushed_redis_does_not_bring_back_a_row_cached_before(chat: Chat, rt, company):
    assert USAGE in chat.say("zhangsan", "联系人")
    behind_the_apps_back(rt)
    rt.redis.flushdb()  # the version key starts again, at a number the cached row was not read under
    assert REFUSED in chat.say("zhangsan", "联系人")


def test_a_change_behind_the_apps_back_is_seen_once_the_cached_row_is_old(chat: Chat, rt, company, monkeypatch):
    assert USAGE in chat.say("zhangsan", "联系人")
    behind_the_apps_back(rt)
    assert USAGE in chat.say("zhangsan", "联系人")  # cached: raw SQL bumps nothing
    monkeypatch.setattr(members, "CACHE_TTL_S", 0.0)
    assert REFUSED in chat.say("zhangsan", "联系人")


def test_redis_failing_to_start_the_version_key_only_costs_a_database_read(chat: Chat, rt, company, monkeypatch):
    """The dedup round trip got through, but the members version cannot be started (Redis failed just then):
    the member is read from the database and the message answered as usual, not apologised for."""
    import redis

    rt.redis.delete(members.VERSION_KEY)

    def failing_set(*args, **kwargs):
        raise redis.ConnectionError("redis went away")

    monkeypatch.setattr(rt.redis, "set", failing_set)
    assert USAGE in chat.say("zhangsan", "联系人")
