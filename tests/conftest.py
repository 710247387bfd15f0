"""Fixtures: a fresh database (SQLite file, or PostgreSQL when SALESBOT_TEST_DATABASE_URL is set), a
Redis (embedded, or real when SALESBOT_TEST_REDIS_URL is set), the app with the official test
credentials, WeCom faked at the HTTP layer, and a small company."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import create_engine, text

from bot.app import create_app
from bot.config import Config, load_config
from bot.emulator.state import WeComState
from bot.runtime import Runtime, build_runtime
from storage.migrate import upgrade
from storage.models import Base, Member
from tests.harness import API, Chat, install_fake_wecom

# The official vector of PROTOCOL.md §1 (token, EncodingAESKey, corp id).
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
SECRET = "test-secret-0123456789"
AGENT_ID = 1000002

PG_URL = os.environ.get("SALESBOT_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("SALESBOT_TEST_REDIS_URL", "")

_TEMPLATE: dict[str, Path] = {}


def _sqlite_template(tmp_root: Path) -> Path:
    """Migrate once per session into a template file; each test copies it."""
    if "db" not in _TEMPLATE:
        path = tmp_root / "template.db"
        upgrade(f"sqlite:///{path}")
        _TEMPLATE["db"] = path
    return _TEMPLATE["db"]


@pytest.fixture(scope="session")
def _pg_migrated() -> Iterator[str]:
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(PG_URL)
    yield PG_URL


@pytest.fixture(autouse=True)
def _no_background_work_leaks_into_the_next_test() -> Iterator[None]:
    yield
    from bot.app import drain_background_work

    drain_background_work()


def _truncate(url: str) -> None:
    """Empty every table; retried, since a lock held by a test's last moments can deadlock a TRUNCATE."""
    import time

    from sqlalchemy.exc import OperationalError

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    try:
        for attempt in range(5):
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                return
            except OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.5)
    finally:
        engine.dispose()


@pytest.fixture
def db_url(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    if PG_URL:
        url = request.getfixturevalue("_pg_migrated")
        _truncate(url)
        return url
    template = _sqlite_template(tmp_path_factory.getbasetemp())
    target = tmp_path / "salesbot.db"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    if REDIS_URL:
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        r.flushdb()
        yield REDIS_URL
        r.flushdb()
    else:
        yield ""


@pytest.fixture
def make_config(db_url: str, redis_url: str, tmp_path: Path) -> Callable[..., Config]:
    def make(**overrides: Any) -> Config:
        env = {
            "SALESBOT_WECOM_CORP_ID": CORP_ID, "SALESBOT_WECOM_AGENT_ID": str(AGENT_ID),
            "SALESBOT_WECOM_SECRET": SECRET, "SALESBOT_WECOM_TOKEN": TOKEN,
            "SALESBOT_WECOM_ENCODING_AES_KEY": AES_KEY, "SALESBOT_WECOM_API_BASE_URL": API,
            "SALESBOT_DATABASE_URL": db_url, "SALESBOT_REDIS_URL": redis_url,
            "SALESBOT_ROLES_ADMINS": "admin", "SALESBOT_LOG_JSON": "false",
            "SALESBOT_OUTBOX_BACKOFF_BASE_S": "0.01",
            # a loaded CI machine can take over 3 s for a handler: the reply would go to the outbox while
            # the handler is still running, and the next step of the test would not see its effects yet
            # (the deferral itself is tested with a short budget in test_callback)
            "SALESBOT_WECOM_PASSIVE_REPLY_BUDGET_S": "30",
        }
        return load_config(None, env=env).with_overrides(**overrides)
    return make


@pytest.fixture
def embedded_name() -> str:
    """Each test gets its own embedded Redis (shared by every runtime the test builds)."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def make_runtime(make_config: Callable[..., Config], embedded_name: str) -> Iterator[Callable[..., Runtime]]:
    built: list[Runtime] = []

    def make(config: Config | None = None, **overrides: Any) -> Runtime:
        rt = build_runtime(config or make_config(**overrides), embedded_redis_name=embedded_name)
        built.append(rt)
        return rt
    yield make
    for rt in built:
        rt.db.dispose()


@pytest.fixture
def rt(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """The HTTP layer: every outgoing request is faked here (add third-party APIs to it)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def wecom(http: responses.RequestsMock) -> WeComState:
    state = WeComState(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID)
    install_fake_wecom(http, state)
    return state


@pytest.fixture
def app(rt: Runtime) -> Any:
    return create_app(runtime=rt)


@pytest.fixture
def chat(app: Any, rt: Runtime, wecom: WeComState) -> Chat:
    return Chat(app, rt, wecom)


COMPANY = [
    # userid, name, roles, manager, region, hire date
    ("admin", "赵管理", ["admin"], None, "总部", date(2020, 1, 6)),
    ("wangwu", "王五", ["manager"], None, "华东", date(2021, 3, 1)),
    ("zhangsan", "张三", ["rep"], "wangwu", "华东", date(2024, 5, 6)),
    ("lisi", "李四", ["rep"], "wangwu", "华东", date(2026, 8, 15)),
    ("zhaoliu", "赵六", ["rep"], "wangwu", "华东", date(2025, 2, 10)),
    ("qianqi", "钱七", ["finance"], None, "总部", date(2022, 7, 1)),
    ("sunba", "孙八", ["csm"], None, "华东", date(2023, 4, 3)),
    ("zhoujiu", "周九", ["risk"], None, "总部", date(2022, 9, 9)),
]


@pytest.fixture
def company(rt: Runtime, wecom: WeComState) -> dict[str, str]:
    """A manager, three reps, finance, a CSM, a risk officer and an admin, known to WeCom too."""
    with rt.db.transaction() as s:
        for userid, name, roles, manager, region, hired in COMPANY:
            if manager is None:
                s.add(Member(userid=userid, name=name, roles=roles, region=region, hire_date=hired))
        s.flush()
        for userid, name, roles, manager, region, hired in COMPANY:
            if manager is not None:
                s.add(Member(userid=userid, name=name, roles=roles, manager_userid=manager, region=region,
                             hire_date=hired))
    for userid, name, *_ in COMPANY:
        wecom.add_member(userid, name)
    return {userid: name for userid, name, *_ in COMPANY}
