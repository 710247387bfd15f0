"""Alembic environment: runs against the URL given by storage.migrate (never a hard-coded one)."""

from __future__ import annotations

from alembic import context

import storage.all_models  # noqa: F401  (registers every table on Base.metadata)
from storage.db import make_engine
from storage.migrate import include_object
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                      include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `salesbot db upgrade`")
run_migrations_online()
