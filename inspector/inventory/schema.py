"""The inventory's tables, declared once as SQLAlchemy Core ``MetaData``.

The migrations in :mod:`inspector.inventory.migrations` build exactly this schema (a test
compares them); the store and the queries use these ``Table`` objects, never table names in
strings, so one declaration serves SQLite and PostgreSQL alike.

What the tables hold:

* ``runs``: one per scan (or ``watch`` cycle): when, which server, which selection, its
  settings, how it ended and its counts.
* ``run_targets``: the documents a run set out to scan, in order, fixed when the run starts,
  so that a resumed run continues with the same documents. ``listed`` marks those that
  ``ListDocuments`` named (an ``--all`` run): the deletion check compares listings.
* ``documents``: one row per document ever seen; ``current_version_id`` is its latest stored
  version, ``deleted_run_id`` the run that found it gone (None while it exists).
* ``document_versions``: every version a document had, oldest first; a changed document gets a
  new one and the old ones stay. ``raw_json`` is what the server sent (secrets redacted), the
  evidence; ``fingerprint`` is what a ``GetDocument`` reply is compared with (its
  ``updatedAt``, or a hash of the reply).
* ``containers``, ``widgets``, ``data_sources`` (passwords redacted) and ``table_refs`` (the
  tables each data source's SQL reads and writes): a version's content, for the questions.
* ``run_documents``: what each run did with each document (new, changed, unchanged, deleted,
  failed and why). Its primary key, (run, document), is what makes storing idempotent: a
  document is stored once per run however often it is recorded.
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "OUTCOMES",
    "containers",
    "data_sources",
    "document_versions",
    "documents",
    "metadata",
    "risk_assessments",
    "risk_findings",
    "run_documents",
    "run_targets",
    "runs",
    "table_refs",
    "widgets",
]

#: What a run can do with a document, as stored in ``run_documents.outcome``.
OUTCOMES = ("new", "changed", "unchanged", "deleted", "failed")

class UTCDateTime(TypeDecorator[datetime.datetime]):
    """A moment in UTC: stored as such, and read back timezone-aware on every dialect.

    SQLite keeps no offset, PostgreSQL does; both read back the same aware datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime.datetime],
                           dialect: Any) -> Optional[datetime.datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime: give the time zone")
        return value.astimezone(datetime.timezone.utc)

    def process_result_value(self, value: Optional[datetime.datetime],
                             dialect: Any) -> Optional[datetime.datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc)


# Constraint names are given by convention, so migrations and MetaData name them alike on
# every dialect.
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# What the server sends (ids, types, updatedAt, ...) is Text: docs/protocol.md bounds none of
# it, and a bounded column would refuse a long value on PostgreSQL (SQLite keeps any length).
# Only what this package writes itself (statuses, outcomes, hashes) has a bound.

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("server", Text),  # the endpoint, credentials removed (redact_url)
    Column("selection_key", String(64), nullable=False),  # the same selection, the same key
    Column("selection", JSON, nullable=False),  # {"all": bool, "named": [ids]}
    Column("settings", JSON, nullable=False),  # {"full": bool, "stale_threshold": float}
    Column("trigger", String(20), nullable=False, server_default="scan"),  # scan | watch
    Column("status", String(20), nullable=False),  # running | completed | interrupted | refused
    Column("resumed", Integer, nullable=False, server_default="0"),  # times continued
    Column("message", Text),  # why it was refused or interrupted
    Column("seconds", Float),  # time spent scanning, over every segment
    Column("targets", Integer, nullable=False, server_default="0"),
    Column("new", Integer, nullable=False, server_default="0"),
    Column("changed", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("deleted", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Index(None, "selection_key", "status"),
)

run_targets = Table(
    "run_targets", metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("document_id", Text, nullable=False),
    Column("listed", Boolean, nullable=False),
    Index(None, "document_id", "run_id"),
)

documents = Table(
    "documents", metadata,
    Column("id", Text, primary_key=True),
    Column("first_run_id", Integer, ForeignKey("runs.id"), nullable=False),
    # No foreign key: a version refers to its document, and each must be insertable first.
    Column("current_version_id", Integer),
    Column("deleted_run_id", Integer, ForeignKey("runs.id")),
)

document_versions = Table(
    "document_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("document_id", Text, ForeignKey("documents.id"), nullable=False),
    Column("version", Integer, nullable=False),  # 1, 2, ... per document
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),  # the run that stored it
    Column("stored_at", UTCDateTime(), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("updated_at", Text),  # the server's updatedAt, as sent
    Column("type", Text, nullable=False),
    Column("name", Text),
    Column("owner", Text),
    Column("raw_json", Text, nullable=False),
    UniqueConstraint("document_id", "version"),
    Index(None, "run_id"),
)

containers = Table(
    "containers", metadata,
    Column("version_id", Integer, ForeignKey("document_versions.id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("container_id", Text, nullable=False),
    Column("layout", Text),
    Column("page", Integer),
)

widgets = Table(
    "widgets", metadata,
    Column("version_id", Integer, ForeignKey("document_versions.id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("widget_id", Text, nullable=False),
    Column("container_id", Text),
    Column("type", Text, nullable=False),
    Column("title", Text),
)

data_sources = Table(
    "data_sources", metadata,
    Column("version_id", Integer, ForeignKey("document_versions.id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),  # in document order, over all widgets
    Column("widget_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("connection", Text),  # passwords redacted
    Column("url", Text),  # secrets redacted
    Column("range", Text),
    Column("sql", Text),
    Column("sql_error", Text),  # why the SQL's tables are not known
)

table_refs = Table(
    "table_refs", metadata,
    Column("version_id", Integer, primary_key=True),
    Column("source_ordinal", Integer, primary_key=True),  # data_sources.ordinal
    Column("access", String(5), primary_key=True),  # read | write
    Column("table_name", Text, primary_key=True),  # as written: sales.orders
    # The last part, case-folded: a query for "orders" or "sales.orders" narrows on it first.
    Column("name_key", Text, nullable=False),
    Index(None, "name_key"),
)

run_documents = Table(
    "run_documents", metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("document_id", Text, primary_key=True),
    Column("outcome", String(10), nullable=False),  # one of OUTCOMES
    Column("version_id", Integer),  # the version the document had after this run
    Column("error", Text),  # why it failed
    Column("recorded_at", UTCDateTime(), nullable=False),
    Index(None, "document_id", "run_id"),
)

# The personal-data review of a version (inspector.risk): its score, and each finding with its
# evidence, so that the inventory answers "which documents show national_id raw?".
risk_assessments = Table(
    "risk_assessments", metadata,
    Column("version_id", Integer, ForeignKey("document_versions.id"), primary_key=True),
    Column("assessed_at", UTCDateTime(), nullable=False),
    Column("rules_key", String(64), nullable=False),  # which rules: a hash of the rule set
    Column("score", Integer, nullable=False),  # 0-100
    Column("level", String(10), nullable=False),  # none | low | medium | high
    Column("reasons", JSON, nullable=False),  # the heaviest findings, in words
    Column("security", JSON, nullable=False),  # security findings, secrets redacted
)

risk_findings = Table(
    "risk_findings", metadata,
    Column("version_id", Integer, ForeignKey("document_versions.id"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("widget_id", Text, nullable=False),
    Column("kind", String(20), nullable=False),  # column | all_columns | unparseable
    Column("table_name", Text),  # None when only a schema could say
    Column("column_name", Text, nullable=False),
    Column("category", String(40), nullable=False),
    Column("exposure", String(20), nullable=False),  # raw | transformed | aggregated | filter
    Column("confidence", Float, nullable=False),
    Column("evidence", JSON, nullable=False),
    Index(None, "category", "exposure"),
)
