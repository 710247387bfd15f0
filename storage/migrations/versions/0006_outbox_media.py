"""outbox: an image's bytes in a column of their own

An image used to be queued as base64 inside the row's JSON body: a third larger, encoded by the job, and
parsed as JSON by the database on the way in (the weekly funnel heatmaps: ~23 MB of it for 100 managers).
It is now stored as it is in ``outbox.media`` until WeCom has it. Rows queued before keep their base64
body and are delivered from it.

Revision ID: 0006
Revises: 0005
"""
import base64
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("media", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # an image not yet uploaded goes back into its body as base64, as it was queued before this revision
    outbox = sa.table("outbox", sa.column("id", sa.BigInteger()), sa.column("body", sa.JSON()),
                      sa.column("media", sa.LargeBinary()))
    conn = op.get_bind()
    for row_id, body, media in conn.execute(sa.select(outbox.c.id, outbox.c.body, outbox.c.media)
                                            .where(outbox.c.media.is_not(None))).all():
        conn.execute(sa.update(outbox).where(outbox.c.id == row_id)
                     .values(body=dict(body, png_b64=base64.b64encode(media).decode())))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("media")
