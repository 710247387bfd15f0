"""archive search: an index to read the archive newest first

搜索 shows the ten newest matching messages. Without an index on the order (sent_at, id) every search of a
word too short for the text index (two characters: no trigram), and every search of a common word,
reads and sorts all matches: seconds over a million messages. With it the database walks the archive
from the newest message and stops at the tenth match.

Made by hand, like migration 0002's text index: its name starts with ``inbound_fts`` so
``storage.migrate.include_object`` leaves it out of model comparisons (the search's own objects).

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX inbound_fts_newest ON inbound_messages (sent_at, id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS inbound_fts_newest")
