"""The asker's member row, cached per process against a version key: one database read less per message.

Every process's runtime bumps ``VERSION_KEY`` after a commit that changed or deleted a member (roles,
name, manager, deactivation; ``bot.versions``). The callback reads the key in the same Redis round trip as
its dedup key, and a member cached under another version, or longer ago than ``CACHE_TTL_S``, is read
again. So a role granted or revoked in any process applies from the next message on; a change made outside
the ORM (raw SQL), or whose bump Redis missed, within ``CACHE_TTL_S``. Without Redis nothing is cached.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

import redis
from sqlalchemy.orm import Session, make_transient_to_detached

from bot import versions
from bot.runtime import Runtime
from storage.models import Member

VERSION_KEY = "members:version"
CACHE_TTL_S = 60.0
CACHE_SIZE = 10_000
BUMP_RETRY_S = 1.0
_EXTRA = "salesbot.member_cache"
_COLUMNS = tuple(c.key for c in Member.__table__.columns)


class MemberCache:
    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.rows: OrderedDict[str, tuple[bytes, float, dict[str, Any]]] = OrderedDict()

    def attach(self, session: Session, userid: str, version: bytes) -> Member | None:
        """The member as cached under ``version``, attached to ``session`` as if just read; None on a miss."""
        with self.lock:
            entry = self.rows.get(userid)
        if entry is None or entry[0] != version or time.monotonic() - entry[1] > CACHE_TTL_S:
            return None
        values = dict(entry[2])
        values["roles"] = list(values["roles"] or [])  # the session's object may change them; the cache's may not
        member = Member(**values)
        make_transient_to_detached(member)  # persistent once added, its attributes loaded and unchanged
        session.add(member)
        return member

    def put(self, member: Member, version: bytes) -> None:
        values = {k: getattr(member, k) for k in _COLUMNS}
        values["roles"] = list(values["roles"] or [])
        with self.lock:
            self.rows[member.userid] = (version, time.monotonic(), values)
            self.rows.move_to_end(member.userid)
            while len(self.rows) > self.size:
                self.rows.popitem(last=False)


def version(rt: Runtime, seen: bytes | None) -> bytes:
    """The members version, given what a read of ``VERSION_KEY`` returned. A missing key (a new or flushed
    Redis) starts at a random number, so entries cached before a flush never match again."""
    if seen is not None:
        return seen
    try:
        rt.redis.set(VERSION_KEY, secrets.randbelow(2**62), nx=True)
        return rt.redis.get(VERSION_KEY) or b""
    except (redis.RedisError, OSError):
        return b""  # nothing cached for this message: the member is read from the database


def cache(rt: Runtime) -> MemberCache:
    found = rt.extras.get(_EXTRA)
    if found is None:
        found = rt.extras.setdefault(_EXTRA, MemberCache())
    return found


def watch_member_changes(rt: Runtime) -> None:
    versions.watch(rt, VERSION_KEY, (Member,), retry_s=lambda: BUMP_RETRY_S,
                   lost_note=f"a member's change reaches other processes at the latest within {CACHE_TTL_S:.0f} s,")
