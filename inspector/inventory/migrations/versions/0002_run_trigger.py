"""Runs say what started them: ``scan`` (the command or the library) or ``watch``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs stored before this revision were all scans.
    with op.batch_alter_table("runs") as runs:
        runs.add_column(
            sa.Column("trigger", sa.String(20), nullable=False, server_default="scan")
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("trigger")
