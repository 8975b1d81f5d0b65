"""Gate verdicts and business-metric points.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verdicts",
        sa.Column("verdict_id", sa.String(), primary_key=True),
        sa.Column("prompt_id", sa.String()),
        sa.Column("evalset_id", sa.String()),
        sa.Column("change", sa.String()),
        sa.Column("base_run_id", sa.String()),
        sa.Column("cand_run_id", sa.String()),
        sa.Column("base_prompt_version", sa.String()),
        sa.Column("cand_prompt_version", sa.String()),
        sa.Column("cand_prompt_hash", sa.String()),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=False),
        sa.Column("headline", sa.Text),
        sa.Column("base_ref", sa.String()),
        sa.Column("merge_base", sa.String()),
        sa.Column("git_commit", sa.String()),
        sa.Column("git_branch", sa.String()),
        sa.Column("pr", sa.Integer),
        sa.Column("decided_at", sa.DateTime),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("tests", sa.JSON, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("power", sa.JSON),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("imported_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_verdicts_prompt_time", "verdicts", ["prompt_id", "decided_at"])
    op.create_index("ix_verdicts_cand_run", "verdicts", ["cand_run_id"])
    op.create_index("ix_verdicts_pr", "verdicts", ["pr"])
    op.create_table(
        "metric_points",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("at", sa.DateTime, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("source", sa.Text),
    )
