"""Redis connection: a real server from redis.url, or an embedded in-process one when it is empty."""

from __future__ import annotations

import threading

import fakeredis
import redis

_EMBEDDED: dict[str, fakeredis.FakeServer] = {}
_LOCK = threading.Lock()


def connect(url: str, *, embedded_name: str = "default") -> redis.Redis:
    """A client for ``url``; empty means the process-wide embedded server named ``embedded_name``.

    The embedded server is shared by every client in this process (web, worker and scheduler of
    ``salesbot demo``), never across processes.
    """
    if url:
        return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
    with _LOCK:
        server = _EMBEDDED.setdefault(embedded_name, fakeredis.FakeServer())
    return fakeredis.FakeRedis(server=server, decode_responses=True)
