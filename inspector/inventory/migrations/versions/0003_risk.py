"""The personal-data review of each version: its assessment and its findings (inspector.risk).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None



def upgrade() -> None:
    op.create_table(
        "risk_assessments",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rules_key", sa.String(64), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("security", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("version_id", name="pk_risk_assessments"),
        sa.ForeignKeyConstraint(["version_id"], ["document_versions.id"],
                                name="fk_risk_assessments_version_id_document_versions"),
    )
    op.create_table(
        "risk_findings",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("widget_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("table_name", sa.Text()),
        sa.Column("column_name", sa.Text(), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("exposure", sa.String(20), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("version_id", "ordinal", name="pk_risk_findings"),
        sa.ForeignKeyConstraint(["version_id"], ["document_versions.id"],
                                name="fk_risk_findings_version_id_document_versions"),
    )
    op.create_index("ix_risk_findings_category_exposure", "risk_findings",
                    ["category", "exposure"])


def downgrade() -> None:
    op.drop_index("ix_risk_findings_category_exposure", "risk_findings")
    op.drop_table("risk_findings")
    op.drop_table("risk_assessments")
