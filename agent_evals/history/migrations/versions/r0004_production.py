"""After the merge: production runs (`monitor`), the checks of monitor, verify and freshness, and
the incidents they paged for (one per prompt and kind of drop, resolved on recovery).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("kind", sa.String()))
        batch.add_column(sa.Column("window_start", sa.DateTime))
        batch.add_column(sa.Column("window_end", sa.DateTime))
    op.create_table(
        "checks",
        sa.Column("check_id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("prompt_id", sa.String(), nullable=False),
        sa.Column("evalset_id", sa.String()),
        sa.Column("version", sa.String()),
        sa.Column("prompt_hash", sa.String()),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("window_start", sa.DateTime),
        sa.Column("window_end", sa.DateTime),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("headline", sa.Text),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String()),
        sa.Column("pr", sa.Integer),
        sa.Column("alert", sa.JSON),
    )
    op.create_index("ix_checks_prompt_time", "checks", ["prompt_id", "at"])
    op.create_table(
        "incidents",
        sa.Column("dedup_key", sa.String(), primary_key=True),
        sa.Column("prompt_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("resolved_at", sa.DateTime),
        sa.Column("check_id", sa.String()),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
    )
    op.create_index("ix_incidents_prompt", "incidents", ["prompt_id", "status"])
