"""job runs: heartbeat and attempts, so a run left behind by a dead worker is taken over

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job_runs') as batch:
        batch.add_column(sa.Column('heartbeat_at', storage.types.TZDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='1'))
    op.create_index('ix_job_runs_running', 'job_runs', ['status', 'heartbeat_at'])


def downgrade() -> None:
    op.drop_index('ix_job_runs_running', table_name='job_runs')
    with op.batch_alter_table('job_runs') as batch:
        batch.drop_column('attempts')
        batch.drop_column('heartbeat_at')
