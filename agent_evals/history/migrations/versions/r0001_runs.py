"""Runs, their case results and grades.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("prompt_id", sa.String(), nullable=False),
        sa.Column("prompt_version", sa.String()),
        sa.Column("prompt_hash", sa.String()),
        sa.Column("evalset_id", sa.String(), nullable=False),
        sa.Column("evalset_hash", sa.String()),
        sa.Column("evalset_cases", sa.Integer),
        sa.Column("git_commit", sa.String()),
        sa.Column("git_branch", sa.String()),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("provider", sa.String()),
        sa.Column("provider_type", sa.String()),
        sa.Column("model", sa.String()),
        sa.Column("tool_version", sa.String()),
        sa.Column("code_hash", sa.String()),
        sa.Column("repeat", sa.Integer),
        sa.Column("shard", sa.String()),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("results", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("source", sa.Text),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("header", sa.JSON, nullable=False),
    )
    op.create_index("ix_runs_prompt_time", "runs", ["prompt_id", "started_at"])
    op.create_index("ix_runs_evalset_time", "runs", ["evalset_id", "started_at"])
    op.create_index("ix_runs_prompt_hash", "runs", ["prompt_hash"])
    op.create_table(
        "cases",
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("case_id", sa.String(), primary_key=True),
        sa.Column("repeat", sa.Integer, primary_key=True),
        sa.Column("case_index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("passed", sa.Boolean),
        sa.Column("score", sa.Float),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("cost_usd", sa.Float),
        sa.Column("latency_ms", sa.Float),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("model_calls", sa.Integer, nullable=False),
        sa.Column("tool_calls", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("finish_reason", sa.String()),
        sa.Column("cluster", sa.String()),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "grades",
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("case_id", sa.String(), primary_key=True),
        sa.Column("repeat", sa.Integer, primary_key=True),
        sa.Column("grader", sa.String(), primary_key=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("passed", sa.Boolean),
        sa.Column("score", sa.Float),
        sa.Column("needs_review", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
    )
