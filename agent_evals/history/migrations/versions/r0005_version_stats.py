"""A version's figures from its case rows, kept until one of its runs changes (`query.version_stats`).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_stats",
        sa.Column("prompt_id", sa.String(), primary_key=True),
        sa.Column("scope", sa.String(), primary_key=True),
        sa.Column("version_id", sa.String(), primary_key=True),
        sa.Column("stamp", sa.String(), nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime, nullable=False),
    )
