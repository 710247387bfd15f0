"""archive search: the database's own text index over inbound messages

SQLite: an FTS5 table with the trigram tokenizer (Chinese keywords match inside sentences), kept in
step by triggers. PostgreSQL: pg_trgm and a GIN trigram index used by ILIKE.

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE inbound_fts USING fts5(content, content='inbound_messages', "
                   "content_rowid='id', tokenize='trigram')")
        op.execute("INSERT INTO inbound_fts(rowid, content) SELECT id, content FROM inbound_messages")
        op.execute("CREATE TRIGGER inbound_fts_ai AFTER INSERT ON inbound_messages BEGIN "
                   "INSERT INTO inbound_fts(rowid, content) VALUES (new.id, new.content); END")
        op.execute("CREATE TRIGGER inbound_fts_ad AFTER DELETE ON inbound_messages BEGIN "
                   "INSERT INTO inbound_fts(inbound_fts, rowid, content) VALUES ('delete', old.id, old.content); END")
        op.execute("CREATE TRIGGER inbound_fts_au AFTER UPDATE OF content ON inbound_messages BEGIN "
                   "INSERT INTO inbound_fts(inbound_fts, rowid, content) VALUES ('delete', old.id, old.content); "
                   "INSERT INTO inbound_fts(rowid, content) VALUES (new.id, new.content); END")
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_inbound_messages_content_trgm ON inbound_messages "
                   "USING gin (content gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("inbound_fts_ai", "inbound_fts_ad", "inbound_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS inbound_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_inbound_messages_content_trgm")
