"""The process-wide objects every part of salesbot shares: config, database, Redis, WeCom client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from bot.config import Config
from bot.crypto import WeComCrypto
from bot.wecom import WeComClient
from storage.db import Database


@dataclass
class Runtime:
    config: Config
    db: Database
    redis: redis.Redis
    wecom: WeComClient
    crypto: WeComCrypto
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        """Current time in the configured zone (Asia/Shanghai by default)."""
        return datetime.now(self.config.tz)


def build_runtime(config: Config, *, embedded_redis_name: str = "default") -> Runtime:
    from storage.redis import connect

    db = Database(config.get("database.url"))
    r = connect(config.get("redis.url"), embedded_name=embedded_redis_name)
    wecom = WeComClient(config.get("wecom.corp_id"), config.get("wecom.secret"), config.get("wecom.agent_id"),
                        config.get("wecom.api_base_url"), r, timeout=config.get("wecom.request_timeout_s"))
    aes = config.get("wecom.encoding_aes_key") or "A" * 43
    crypto = WeComCrypto(config.get("wecom.token"), aes, config.get("wecom.corp_id"),
                         config.get("wecom.max_clock_skew_s"))
    rt = Runtime(config=config, db=db, redis=r, wecom=wecom, crypto=crypto)
    _configure_mappers()
    from bot.members import watch_member_changes

    watch_member_changes(rt)  # in every process: a member changed anywhere drops every process's cached copy
    return rt


def _configure_mappers() -> None:
    """Every ORM mapping set up now, at start: SQLAlchemy otherwise does it at the first ORM object made in the
    process (~30 ms here), i.e. within the first message answered or the first job run."""
    from sqlalchemy.orm import configure_mappers

    import storage.all_models  # noqa: F401  (every mapped class)

    configure_mappers()
