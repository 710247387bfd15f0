"""Storage: migrations match the models on both backends, money is exact, times are aware."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect, select
from sqlalchemy.exc import StatementError

import storage.all_models  # noqa: F401
from bot.cli import main
from storage.db import make_engine
from storage.migrate import include_object
from storage.models import Base, Member
from storage.types import Money, TZDateTime


def test_migrations_create_exactly_the_models(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_going_back_before_the_outbox_media_column_keeps_unsent_images_as_base64(db_url):
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from storage.migrate import alembic_config, upgrade
    from storage.models import OutboxMessage

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    engine = make_engine(db_url)
    with Session(engine) as s, s.begin():
        s.add(OutboxMessage(recipient="zhangsan", msgtype="image", body={"filename": "funnel.png"}, media=png))
    try:
        command.downgrade(alembic_config(db_url), "0005")
        with engine.connect() as conn:
            [body] = conn.execute(text("SELECT body FROM outbox")).scalars().all()
        body = body if isinstance(body, dict) else json.loads(body)
        assert body["filename"] == "funnel.png" and base64.b64decode(body["png_b64"]) == png
    finally:
        upgrade(db_url)
        engine.dispose()


def test_db_upgrade_command_creates_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"SALESBOT_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"members", "audit_log", "inbound_messages", "processed_callbacks", "outbox", "cards",
            "job_runs", "settings", "alembic_version"} <= tables


def test_money_is_exact_and_times_come_back_aware(db_url):
    engine = make_engine(db_url)
    meta = MetaData()
    t = Table("money_probe", meta, Column("id", Integer, primary_key=True), Column("amount", Money()),
              Column("at", TZDateTime()))
    meta.create_all(engine)
    try:
        shanghai = datetime(2026, 12, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
        with engine.begin() as conn:
            conn.execute(t.insert(), [{"amount": Decimal("150000.10"), "at": shanghai},
                                      {"amount": Decimal("0.1") + Decimal("0.2"), "at": shanghai}])
        with engine.connect() as conn:
            rows = conn.execute(select(t.c.amount, t.c.at).order_by(t.c.id)).all()
        assert [r.amount for r in rows] == [Decimal("150000.10"), Decimal("0.30")]
        assert all(isinstance(r.amount, Decimal) for r in rows)
        assert rows[0].at == shanghai and rows[0].at.tzinfo is not None
        with pytest.raises(StatementError, match="not float"), engine.begin() as conn:
            conn.execute(t.insert(), [{"amount": 0.1, "at": shanghai}])
    finally:
        meta.drop_all(engine)
        engine.dispose()


def test_naive_datetimes_are_refused(rt):
    with pytest.raises(Exception, match="naive"), rt.db.transaction() as s:
        s.add(Member(userid="x", name="x", roles=[], created_at=datetime(2026, 1, 1)))
    with rt.db.transaction() as s:
        s.add(Member(userid="y", name="y", roles=[]))
    with rt.db.sessions() as s:
        created = s.scalar(select(Member.created_at).where(Member.userid == "y"))
    assert created is not None and created.tzinfo is not None
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
