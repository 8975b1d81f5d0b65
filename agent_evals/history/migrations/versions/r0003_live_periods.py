"""Deploy times, the business metric an eval set names, the judges' calibration per verdict, and
which shard runs a merged run replaced.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("metric", sa.Text))
    with op.batch_alter_table("verdicts") as batch:
        batch.add_column(sa.Column("calibration", sa.JSON))
    op.create_table(
        "shards",
        sa.Column("shard_run_id", sa.String(), primary_key=True),
        sa.Column("run_id", sa.String(), nullable=False),
    )
    op.create_table(
        "deploys",
        sa.Column("prompt_id", sa.String(), primary_key=True),
        sa.Column("at", sa.DateTime, primary_key=True),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("prompt_hash", sa.String()),
        sa.Column("git_commit", sa.String()),
        sa.Column("source", sa.Text),
    )
