"""Version keys in Redis for the caches a process keeps of database rows (tracked links, members).

``watch`` makes every commit through ``rt.db`` that changed or deleted a watched class's rows — by the ORM
on objects or by an ORM UPDATE / DELETE statement — ``INCR`` the class's version key after the commit (a
new row needs no bump: the caches do not hold rows they never found). A cache entry belongs to the
version it was read under and is dropped when the key moves. A bump lost because Redis was unreachable at
the commit is retried every ``retry_s()`` seconds, by one thread per key while bumps are owed, until Redis
takes it; a change made outside the ORM (raw SQL) is seen only when the cache's own TTL runs out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, object_session

from bot.runtime import Runtime

log = logging.getLogger(__name__)


_MARKED: set[str] = set()


def _flag(key: str) -> str:
    return f"salesbot.changed:{key}"


def watch(rt: Runtime, key: str, classes: tuple[type, ...], *, retry_s: Callable[[], float],
          lost_note: str) -> None:
    """Bump ``key`` after each commit that changed a row of ``classes`` (once per runtime and key)."""
    flag = _flag(key)
    if rt.extras.get(flag):
        return
    rt.extras[flag] = True

    if flag not in _MARKED:  # mapper events are per class, for every runtime of the process: listen once
        _MARKED.add(flag)

        def mark(_mapper: Any, _conn: Any, target: Any) -> None:
            session = object_session(target)
            if session is not None:
                session.info[flag] = True

        for cls in classes:
            event.listen(cls, "after_update", mark)
            event.listen(cls, "after_delete", mark)

    def statement(state: ORMExecuteState) -> None:
        if (state.is_update or state.is_delete) and state.bind_mapper is not None \
                and state.bind_mapper.class_ in classes:
            state.session.info[flag] = True

    guard = threading.Lock()
    lost = [0]  # changes whose bump is still owed; a thread retries while there are any

    def bump() -> bool:
        try:
            rt.redis.incr(key)
            return True
        except (redis.RedisError, OSError):
            return False

    def retry() -> None:
        """Bump until Redis takes it; a bump covers every change counted before it."""
        while True:
            time.sleep(retry_s())
            with guard:
                owed = lost[0]
            if bump():
                with guard:
                    lost[0] -= owed
                    if lost[0] == 0:
                        log.info("version bumped after redis came back", extra={"key": key})
                        return

    def committed(session: Session) -> None:
        if session.info.pop(flag, False) and not bump():
            log.warning(f"redis unavailable: {lost_note} once redis is back (retried every {retry_s():g} s)",
                        extra={"key": key})
            with guard:
                lost[0] += 1
                start = lost[0] == 1
            if start:
                threading.Thread(target=retry, name=f"bump-{key}", daemon=True).start()

    event.listen(rt.db.sessions, "do_orm_execute", statement)
    event.listen(rt.db.sessions, "after_commit", committed)
