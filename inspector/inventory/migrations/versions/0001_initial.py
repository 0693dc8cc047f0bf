"""The first inventory: runs, their targets, documents and their versions, and what runs did.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = 512


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("server", sa.String(2000)),
        sa.Column("selection_key", sa.String(64), nullable=False),
        sa.Column("selection", sa.JSON, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("resumed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message", sa.Text),
        sa.Column("seconds", sa.Float),
        sa.Column("targets", sa.Integer, nullable=False, server_default="0"),
        sa.Column("new", sa.Integer, nullable=False, server_default="0"),
        sa.Column("changed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_selection_key_status", "runs", ["selection_key", "status"])
    op.create_table(
        "run_targets",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("document_id", sa.String(_ID), nullable=False),
        sa.Column("listed", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "ordinal", name="pk_run_targets"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_targets_run_id_runs"),
    )
    op.create_index("ix_run_targets_document_id_run_id", "run_targets", ["document_id", "run_id"])
    op.create_table(
        "documents",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("first_run_id", sa.Integer, nullable=False),
        sa.Column("current_version_id", sa.Integer),
        sa.Column("deleted_run_id", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
        sa.ForeignKeyConstraint(["first_run_id"], ["runs.id"],
                                name="fk_documents_first_run_id_runs"),
        sa.ForeignKeyConstraint(["deleted_run_id"], ["runs.id"],
                                name="fk_documents_deleted_run_id_runs"),
    )
    op.create_table(
        "document_versions",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("document_id", sa.String(_ID), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(600), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.String(100)),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("owner", sa.Text),
        sa.Column("raw_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_document_versions"),
        sa.UniqueConstraint("document_id", "version",
                            name="uq_document_versions_document_id_version"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name="fk_document_versions_document_id_documents"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"],
                                name="fk_document_versions_run_id_runs"),
    )
    op.create_index("ix_document_versions_run_id", "document_versions", ["run_id"])
    op.create_table(
        "containers",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("container_id", sa.String(_ID), nullable=False),
        sa.Column("layout", sa.String(200)),
        sa.Column("page", sa.Integer),
        sa.PrimaryKeyConstraint("version_id", "ordinal", name="pk_containers"),
        sa.ForeignKeyConstraint(["version_id"], ["document_versions.id"],
                                name="fk_containers_version_id_document_versions"),
    )
    op.create_table(
        "widgets",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("widget_id", sa.String(_ID), nullable=False),
        sa.Column("container_id", sa.String(_ID)),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("title", sa.Text),
        sa.PrimaryKeyConstraint("version_id", "ordinal", name="pk_widgets"),
        sa.ForeignKeyConstraint(["version_id"], ["document_versions.id"],
                                name="fk_widgets_version_id_document_versions"),
    )
    op.create_table(
        "data_sources",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("widget_id", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("connection", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("range", sa.Text),
        sa.Column("sql", sa.Text),
        sa.Column("sql_error", sa.Text),
        sa.PrimaryKeyConstraint("version_id", "ordinal", name="pk_data_sources"),
        sa.ForeignKeyConstraint(["version_id"], ["document_versions.id"],
                                name="fk_data_sources_version_id_document_versions"),
    )
    op.create_table(
        "table_refs",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("source_ordinal", sa.Integer, nullable=False),
        sa.Column("access", sa.String(5), nullable=False),
        sa.Column("table_name", sa.String(_ID), nullable=False),
        sa.Column("name_key", sa.String(_ID), nullable=False),
        sa.PrimaryKeyConstraint("version_id", "source_ordinal", "access", "table_name",
                                name="pk_table_refs"),
    )
    op.create_index("ix_table_refs_name_key", "table_refs", ["name_key"])
    op.create_table(
        "run_documents",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("document_id", sa.String(_ID), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("version_id", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "document_id", name="pk_run_documents"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_documents_run_id_runs"),
    )
    op.create_index("ix_run_documents_document_id_run_id", "run_documents",
                    ["document_id", "run_id"])


def downgrade() -> None:
    for table in ("run_documents", "table_refs", "data_sources", "widgets", "containers",
                  "document_versions", "documents", "run_targets", "runs"):
        op.drop_table(table)
