"""The questions the inventory answers from the store alone, without the server.

Each function takes an engine and returns plain attrs values (or yields them, for answers that
may be as large as the inventory). "As of a run" means the state the store had when that run
ended: each document's version from the latest run at or before it that stored or deleted it.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspector.exceptions import InvalidArgument
from inspector.inventory import schema as t
from inspector.inventory.content import table_name_key
from inspector.models import Inspection
from inspector.serialization import from_json

__all__ = [
    "DataSourceRecord",
    "DiffEntry",
    "DocumentSources",
    "RunRecord",
    "TableUse",
    "check_integrity",
    "diff",
    "documents_reading",
    "inspections",
    "run_failures",
    "runs",
    "sources_of",
    "table_matches",
]

_BATCH = 500
_STATE_EVENTS = ("new", "changed", "deleted")


@attrs.frozen
class RunRecord:
    """A run as stored: what it was asked, how it ended, its counts."""

    id: int
    trigger: str
    status: str
    started_at: datetime.datetime
    finished_at: Optional[datetime.datetime]
    server: Optional[str]
    selection: Dict[str, Any]
    settings: Dict[str, Any]
    resumed: int
    message: Optional[str]
    seconds: Optional[float]
    targets: int
    new: int
    changed: int
    unchanged: int
    deleted: int
    failed: int

    @property
    def scanned(self) -> int:
        """Documents with an outcome other than deleted."""
        return self.new + self.changed + self.unchanged + self.failed

    @property
    def rate(self) -> Optional[float]:
        """Documents scanned per second, when the time is known."""
        return self.scanned / self.seconds if self.seconds else None


@attrs.frozen
class TableUse:
    """A document whose data source reads (or writes) a table."""

    document_id: str
    version: int
    table: str
    access: str
    widget_id: str
    connection: Optional[str]
    sql: Optional[str]


@attrs.frozen
class DataSourceRecord:
    """One data source of a stored version, secrets redacted."""

    widget_id: str
    kind: str
    connection: Optional[str]
    url: Optional[str]
    range: Optional[str]
    sql: Optional[str]
    sql_error: Optional[str]
    reads: Tuple[str, ...]
    writes: Tuple[str, ...]

    @property
    def location(self) -> str:
        """The connection and/or the link, as one string."""
        return " ".join(part for part in (self.connection, self.url) if part)


@attrs.frozen
class DocumentSources:
    """A document's data sources in one version."""

    document_id: str
    version: int
    run_id: int
    stored_at: datetime.datetime
    updated_at: Optional[str]
    sources: Tuple[DataSourceRecord, ...]


@attrs.frozen
class DiffEntry:
    """How a document differs between two runs.

    Attributes:
        document_id: The document.
        change: ``new``, ``changed`` or ``deleted``.
        sources_added, sources_removed: Data sources (kind and location) that came or went.
        tables_added, tables_removed: Tables read that came or went.
    """

    document_id: str
    change: str
    sources_added: Tuple[str, ...] = ()
    sources_removed: Tuple[str, ...] = ()
    tables_added: Tuple[str, ...] = ()
    tables_removed: Tuple[str, ...] = ()


# -- runs --


def runs(engine: Engine, *, run_ids: Optional[Sequence[int]] = None) -> List[RunRecord]:
    """Every run, oldest first (or those named)."""
    query = sa.select(t.runs).order_by(t.runs.c.id)
    if run_ids is not None:
        query = query.where(t.runs.c.id.in_(list(run_ids)))
    with engine.connect() as connection:
        return [_run_record(row) for row in connection.execute(query)]


def run_record(engine: Engine, run_id: int) -> RunRecord:
    """One run. Raises InvalidArgument if there is none of that id."""
    found = runs(engine, run_ids=[run_id])
    if not found:
        raise InvalidArgument(f"run: no run {run_id} in the inventory")
    return found[0]


def _run_record(row: Any) -> RunRecord:
    return RunRecord(**{field.name: getattr(row, field.name)
                        for field in attrs.fields(RunRecord)})


def run_failures(engine: Engine, run_id: int) -> List[Tuple[str, str]]:
    """(document id, reason) of each document that failed in the run."""
    with engine.connect() as connection:
        return [(row.document_id, row.error or "") for row in connection.execute(
            sa.select(t.run_documents.c.document_id, t.run_documents.c.error)
            .where(t.run_documents.c.run_id == run_id, t.run_documents.c.outcome == "failed")
            .order_by(t.run_documents.c.document_id))]


# -- which version, as of when --


def _live_versions(run_id: Optional[int] = None,
                   at: Optional[datetime.datetime] = None) -> Any:
    """A subquery of (document_id, version_id): each live document's version, as of a run or a
    moment (None, None: now)."""
    if run_id is None and at is None:
        return (sa.select(t.documents.c.id.label("document_id"),
                          t.documents.c.current_version_id.label("version_id"))
                .where(t.documents.c.deleted_run_id.is_(None),
                       t.documents.c.current_version_id.is_not(None))
                .subquery("live"))
    events = t.run_documents
    before = (events.c.run_id <= run_id) if run_id is not None else (events.c.recorded_at <= at)
    last = (sa.select(events.c.document_id, sa.func.max(events.c.run_id).label("run_id"))
            .where(events.c.outcome.in_(_STATE_EVENTS), before)
            .group_by(events.c.document_id).subquery("last_event"))
    return (sa.select(events.c.document_id, events.c.version_id)
            .join(last, sa.and_(last.c.document_id == events.c.document_id,
                                last.c.run_id == events.c.run_id))
            .where(events.c.outcome != "deleted")
            .subquery("live"))


# -- the questions --


def table_matches(query: str, table: str) -> bool:
    """Whether ``table`` is the one ``query`` names, its schema (and catalog) given or not.

    ``customers`` and ``sales.customers`` both match ``sales.customers`` and
    ``warehouse.sales.customers``; ``crm.customers`` matches neither. Case is ignored.
    """
    wanted = query.casefold().split(".")
    parts = table.casefold().split(".")
    return len(wanted) <= len(parts) and parts[-len(wanted):] == wanted


def documents_reading(engine: Engine, table: str, *, run_id: Optional[int] = None,
                      access: str = "read") -> List[TableUse]:
    """The documents whose data sources read ``table`` (see :func:`table_matches`).

    Args:
        engine: The inventory.
        table: ``name``, ``schema.name`` or ``catalog.schema.name``.
        run_id: As of this run; None for the current versions.
        access: ``read`` or ``write``.

    Raises:
        InvalidArgument: ``table`` is empty or has an empty part.
    """
    if not isinstance(table, str) or not table or "" in table.split("."):
        raise InvalidArgument(f"table: expected a table name like sales.customers, got "
                              f"{table!r}")
    if access not in ("read", "write"):
        raise InvalidArgument(f"access: expected 'read' or 'write', got {access!r}")
    live = _live_versions(run_id)
    refs, sources, versions = t.table_refs, t.data_sources, t.document_versions
    query = (
        sa.select(versions.c.document_id, versions.c.version, refs.c.table_name,
                  sources.c.widget_id, sources.c.connection, sources.c.sql)
        .select_from(
            refs.join(sources, sa.and_(sources.c.version_id == refs.c.version_id,
                                       sources.c.ordinal == refs.c.source_ordinal))
            .join(versions, versions.c.id == refs.c.version_id)
            .join(live, live.c.version_id == refs.c.version_id)
        )
        .where(refs.c.name_key == table_name_key(table), refs.c.access == access)
        .order_by(versions.c.document_id, sources.c.ordinal, refs.c.table_name)
    )
    with engine.connect() as connection:
        return [
            TableUse(row.document_id, row.version, row.table_name, access, row.widget_id,
                     row.connection, row.sql)
            for row in connection.execute(query) if table_matches(table, row.table_name)
        ]


def sources_of(engine: Engine, document_id: str, *, run_id: Optional[int] = None,
               at: Optional[datetime.datetime] = None) -> Optional[DocumentSources]:
    """A document's data sources: now, as of a run, or as of a moment.

    Returns:
        None when the document had no live version then.
    """
    if at is not None and at.tzinfo is None:
        raise InvalidArgument("at: give a timezone-aware datetime")
    live = _live_versions(run_id, at)
    versions = t.document_versions
    with engine.connect() as connection:
        version = connection.execute(
            sa.select(versions).join(live, live.c.version_id == versions.c.id)
            .where(live.c.document_id == document_id)
        ).first()
        if version is None:
            return None
        records = _source_records(connection, [version.id])[version.id]
    return DocumentSources(document_id, version.version, version.run_id, version.stored_at,
                           version.updated_at, tuple(records))


def _source_records(connection: Connection, version_ids: Sequence[int]
                    ) -> Dict[int, List[DataSourceRecord]]:
    tables: Dict[Tuple[int, int, str], List[str]] = {}
    for row in connection.execute(
            sa.select(t.table_refs).where(t.table_refs.c.version_id.in_(version_ids))
            .order_by(t.table_refs.c.table_name)):
        tables.setdefault((row.version_id, row.source_ordinal, row.access), []).append(
            row.table_name)
    records: Dict[int, List[DataSourceRecord]] = {version_id: [] for version_id in version_ids}
    for row in connection.execute(
            sa.select(t.data_sources).where(t.data_sources.c.version_id.in_(version_ids))
            .order_by(t.data_sources.c.version_id, t.data_sources.c.ordinal)):
        key = (row.version_id, row.ordinal)
        records[row.version_id].append(DataSourceRecord(
            widget_id=row.widget_id, kind=row.kind, connection=row.connection, url=row.url,
            range=row.range, sql=row.sql, sql_error=row.sql_error,
            reads=tuple(tables.get((*key, "read"), ())),
            writes=tuple(tables.get((*key, "write"), ())),
        ))
    return records


def diff(engine: Engine, run_a: int, run_b: int) -> List[DiffEntry]:
    """What changed from run A to run B: new, changed and deleted documents, by id.

    For a changed document, the data sources and the tables read that came or went.
    """
    for run_id in (run_a, run_b):
        run_record(engine, run_id)  # raises for an unknown run
    low, high = min(run_a, run_b), max(run_a, run_b)
    events = t.run_documents
    entries: List[DiffEntry] = []
    with engine.connect() as connection:
        touched = [row[0] for row in connection.execute(
            sa.select(events.c.document_id).distinct()
            .where(events.c.run_id > low, events.c.run_id <= high,
                   events.c.outcome.in_(_STATE_EVENTS))
            .order_by(events.c.document_id))]
        for start in range(0, len(touched), _BATCH):
            batch = touched[start:start + _BATCH]
            before = _versions_of(connection, batch, run_a)
            after = _versions_of(connection, batch, run_b)
            changed = [d for d in batch if d in before and d in after
                       and before[d] != after[d]]
            records = _source_records(
                connection, [before[d] for d in changed] + [after[d] for d in changed])
            for document_id in batch:
                if document_id not in before and document_id in after:
                    entries.append(DiffEntry(document_id, "new"))
                elif document_id in before and document_id not in after:
                    entries.append(DiffEntry(document_id, "deleted"))
                elif document_id in changed:
                    entries.append(_changed(document_id, records[before[document_id]],
                                            records[after[document_id]]))
    return entries


def _versions_of(connection: Connection, document_ids: Sequence[str],
                 run_id: int) -> Dict[str, int]:
    live = _live_versions(run_id)
    return {row.document_id: row.version_id for row in connection.execute(
        sa.select(live).where(live.c.document_id.in_(document_ids)))}


def _changed(document_id: str, before: List[DataSourceRecord],
             after: List[DataSourceRecord]) -> DiffEntry:
    def sources(records: List[DataSourceRecord]) -> Set[str]:
        return {f"{record.kind} {record.location}".strip() for record in records}

    def tables(records: List[DataSourceRecord]) -> Set[str]:
        return {table for record in records for table in record.reads}

    return DiffEntry(
        document_id, "changed",
        sources_added=tuple(sorted(sources(after) - sources(before))),
        sources_removed=tuple(sorted(sources(before) - sources(after))),
        tables_added=tuple(sorted(tables(after) - tables(before))),
        tables_removed=tuple(sorted(tables(before) - tables(after))),
    )


def inspections(engine: Engine, *, run_id: Optional[int] = None) -> Iterator[Inspection]:
    """The stored inspection of every live document (now, or as of a run), by id.

    Read a batch at a time, so the whole inventory is never in memory.
    """
    live = _live_versions(run_id)
    versions = t.document_versions
    after = ""
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(live.c.document_id, versions.c.raw_json)
                .join(versions, versions.c.id == live.c.version_id)
                .where(live.c.document_id > after)
                .order_by(live.c.document_id).limit(_BATCH)
            ).all()
        if not rows:
            return
        for row in rows:
            yield from_json(row.raw_json, Inspection)
        after = rows[-1].document_id


def check_integrity(engine: Engine) -> List[str]:
    """Check the inventory's invariants; return each problem found (none: an empty list).

    * every run's outcomes are for its targets (or documents it deleted), once each;
    * a completed run has an outcome for every target;
    * each document's current version is its latest, and every version is complete (a
      ``run_documents`` row of a new or changed outcome points at a version of the document).
    """
    problems: List[str] = []
    target, done, versions = t.run_targets, t.run_documents, t.document_versions
    with engine.connect() as connection:
        duplicates = connection.execute(
            sa.select(target.c.run_id, target.c.document_id, sa.func.count())
            .group_by(target.c.run_id, target.c.document_id).having(sa.func.count() > 1)
        ).all()
        problems += [f"run {r}: {d} is a target {n} times" for r, d, n in duplicates]
        strays = connection.execute(
            sa.select(done.c.run_id, done.c.document_id)
            .where(done.c.outcome != "deleted", ~sa.exists().where(
                target.c.run_id == done.c.run_id, target.c.document_id == done.c.document_id))
        ).all()
        problems += [f"run {r}: {d} recorded but not a target" for r, d in strays]
        missing = connection.execute(
            sa.select(target.c.run_id, sa.func.count())
            .join(t.runs, t.runs.c.id == target.c.run_id)
            .where(t.runs.c.status == "completed", ~sa.exists().where(
                done.c.run_id == target.c.run_id, done.c.document_id == target.c.document_id))
            .group_by(target.c.run_id)
        ).all()
        problems += [f"run {r}: completed with {n} targets not recorded" for r, n in missing]
        latest = (sa.select(versions.c.document_id, sa.func.max(versions.c.id).label("id"))
                  .group_by(versions.c.document_id).subquery())
        stale = connection.execute(
            sa.select(t.documents.c.id).join(latest, latest.c.document_id == t.documents.c.id)
            .where(sa.or_(t.documents.c.current_version_id.is_(None),
                          t.documents.c.current_version_id != latest.c.id))
        ).all()
        problems += [f"document {d}: current version is not its latest" for (d,) in stale]
        unversioned = connection.execute(
            sa.select(done.c.run_id, done.c.document_id)
            .outerjoin(versions, sa.and_(versions.c.id == done.c.version_id,
                                         versions.c.document_id == done.c.document_id))
            .where(done.c.outcome.in_(("new", "changed", "unchanged", "deleted")),
                   versions.c.id.is_(None))
        ).all()
        problems += [f"run {r}: {d} recorded without its version" for r, d in unversioned]
        counts = connection.execute(
            sa.select(t.runs.c.id, t.runs.c.targets, sa.func.count(target.c.ordinal))
            .outerjoin(target, target.c.run_id == t.runs.c.id)
            .group_by(t.runs.c.id, t.runs.c.targets)
        ).all()
        problems += [f"run {r}: says {n} targets, has {m}" for r, n, m in counts if n != m]
    return problems
