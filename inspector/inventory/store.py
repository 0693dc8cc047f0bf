"""Writing to the inventory: runs, and each document's outcome in one transaction of its own.

Every write is idempotent. A document recorded twice for the same run is stored once: the
``run_documents`` row for (run, document) is looked for first, and its primary key refuses a
second one written at the same moment by another process (the transaction is then tried again
and finds the first). Only a failure is replaced, by the outcome of a later attempt. So a
scan killed at any point, a batch run again after a worker died, or two processes recording
the same results leave the store as if each document had been recorded once.

A run starts in one transaction with its targets (and, for a run that lists everything, the
documents found gone), so a run in the store always knows what it set out to do.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspector.exceptions import InvalidArgument
from inspector.inventory import schema as t
from inspector.inventory.content import VersionContent, version_content
from inspector.inventory.planner import DeletionPlan, StaleListing, plan_deletions
from inspector.models import Document, Inspection
from inspector.redaction import redact

__all__ = ["PendingDocument", "RunStart", "Store"]

_R = TypeVar("_R")

# Rows per INSERT of many rows: big enough to be quick, small enough for any driver's limits.
_BATCH = 1000
# A second process wrote the same (run, document) or (document, version) at the same moment:
# the transaction is tried again, and finds the other's row.
_ATTEMPTS = 3


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@attrs.frozen
class PendingDocument:
    """A target of a run not yet recorded (or that failed), with what the store knows of it.

    Attributes:
        ordinal: Its place in the run's targets.
        document_id: The document.
        fingerprint: The fingerprint of its current stored version; None when it has none
            (never seen, or deleted), so it must be inspected.
    """

    ordinal: int
    document_id: str
    fingerprint: Optional[str]


@attrs.frozen
class RunStart:
    """What starting a run did: its id, and the documents marked deleted."""

    run_id: int
    deletions: DeletionPlan


class Store:
    """The inventory's writes (and the reads a scan needs), on one SQLAlchemy engine.

    Safe to use from several threads and processes at once: every method is one or a few
    transactions of its own.

    Args:
        engine: An engine on a database at the latest schema
            (:func:`inspector.inventory.database.open_engine`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- runs --

    def begin_run(
        self,
        *,
        server: Optional[str],
        selection_key: str,
        selection: Dict[str, Any],
        settings: Dict[str, Any],
        targets: Iterable[Tuple[str, bool]],
        trigger: str = "scan",
        stale_threshold: Optional[float] = None,
    ) -> RunStart:
        """Start a run with its targets, in one transaction.

        Args:
            server: The server's endpoint, without credentials.
            selection_key: Equal for runs of the same selection (see the planner).
            selection: What was asked for, for the record.
            settings: The run's settings, for the record.
            targets: (document id, listed by ``ListDocuments``) in the order to scan them;
                each id once.
            trigger: ``scan`` or ``watch``.
            stale_threshold: For a run whose targets include a listing: the largest fraction
                of the documents listed before that may be missing from this listing; those
                missing are marked deleted. None for a run that lists nothing.

        Raises:
            StaleListing: More than ``stale_threshold`` would be marked deleted; the run is
                stored as refused, with the reason, and nothing else changes.
        """
        try:
            return self._transaction(lambda connection: self._begin(
                connection, server, selection_key, selection, settings, targets, trigger,
                stale_threshold))
        except StaleListing as refusal:
            reason = str(refusal)
            run_id = self._transaction(lambda connection: self._insert_run(
                connection, server, selection_key, selection, settings, trigger,
                status="refused", message=reason, finished=True))
            refusal.run_id = run_id
            raise

    def _begin(self, connection: Connection, server: Optional[str], selection_key: str,
               selection: Dict[str, Any], settings: Dict[str, Any],
               targets: Iterable[Tuple[str, bool]], trigger: str,
               stale_threshold: Optional[float]) -> RunStart:
        run_id = self._insert_run(connection, server, selection_key, selection, settings,
                                  trigger, status="running")
        count = 0
        batch: List[Dict[str, Any]] = []
        for document_id, listed in targets:
            batch.append({"run_id": run_id, "ordinal": count, "document_id": document_id,
                          "listed": listed})
            count += 1
            if len(batch) >= _BATCH:
                connection.execute(sa.insert(t.run_targets), batch)
                batch = []
        if batch:
            connection.execute(sa.insert(t.run_targets), batch)
        connection.execute(sa.update(t.runs).where(t.runs.c.id == run_id).values(targets=count))
        plan = DeletionPlan(listed_before=0, missing=0)
        if stale_threshold is not None:
            plan = self._mark_deleted(connection, run_id, stale_threshold)
        return RunStart(run_id, plan)

    def _insert_run(self, connection: Connection, server: Optional[str], selection_key: str,
                    selection: Dict[str, Any], settings: Dict[str, Any], trigger: str, *,
                    status: str, message: Optional[str] = None, finished: bool = False) -> int:
        now = _now()
        result = connection.execute(sa.insert(t.runs).values(
            started_at=now, finished_at=now if finished else None,
            server=server, selection_key=selection_key, selection=selection,
            settings=settings, trigger=trigger, status=status, message=message,
            seconds=0.0,
        ))
        return int(_primary_key(result))

    def _mark_deleted(self, connection: Connection, run_id: int,
                      stale_threshold: float) -> DeletionPlan:
        documents = t.documents
        earlier, now = t.run_targets.alias("earlier"), t.run_targets.alias("now")
        live_and_listed_before = sa.and_(
            documents.c.current_version_id.is_not(None),
            documents.c.deleted_run_id.is_(None),
            sa.exists().where(earlier.c.document_id == documents.c.id,
                              earlier.c.listed.is_(True), earlier.c.run_id < run_id),
        )
        missing = sa.and_(live_and_listed_before, ~sa.exists().where(
            now.c.run_id == run_id, now.c.document_id == documents.c.id))
        count = sa.select(sa.func.count()).select_from(documents)
        plan = plan_deletions(
            listed_before=connection.execute(count.where(live_and_listed_before)).scalar_one(),
            missing=connection.execute(count.where(missing)).scalar_one(),
            threshold=stale_threshold,
        )  # raises StaleListing: the transaction is rolled back
        if plan.missing:
            connection.execute(sa.insert(t.run_documents).from_select(
                ["run_id", "document_id", "outcome", "version_id", "recorded_at"],
                sa.select(sa.literal(run_id), documents.c.id, sa.literal("deleted"),
                          documents.c.current_version_id,
                          sa.literal(_now(), t.UTCDateTime())).where(missing),
            ))
            connection.execute(sa.update(documents).where(missing).values(deleted_run_id=run_id))
        return plan

    def find_resumable(self, selection_key: str) -> Optional[int]:
        """The latest run of this selection, if it did not end: it was stopped or killed.

        A later completed or refused run of the same selection means there is nothing to
        resume.
        """
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(t.runs.c.id, t.runs.c.status)
                .where(t.runs.c.selection_key == selection_key)
                .order_by(t.runs.c.id.desc()).limit(1)
            ).first()
        if row is None or row.status not in ("running", "interrupted"):
            return None
        return int(row.id)

    def latest_unfinished(self) -> Optional[int]:
        """The latest run of any selection, if it did not end (for ``scan --resume``)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(t.runs.c.id, t.runs.c.status).where(t.runs.c.trigger == "scan")
                .order_by(t.runs.c.id.desc()).limit(1)
            ).first()
        if row is None or row.status not in ("running", "interrupted"):
            return None
        return int(row.id)

    def resume_run(self, run_id: int) -> None:
        """Mark a stopped run as running again, and count the resumption."""
        self._transaction(lambda connection: connection.execute(
            sa.update(t.runs).where(t.runs.c.id == run_id)
            .values(status="running", resumed=t.runs.c.resumed + 1, finished_at=None)
        ))

    def finish_run(self, run_id: int, status: str, *, seconds: float = 0.0,
                   message: Optional[str] = None) -> None:
        """End a run: its status, time spent added, and its counts taken from what it stored.

        Args:
            run_id: The run.
            status: ``completed`` or ``interrupted``.
            seconds: Time this segment of the run took.
            message: Why it was interrupted.
        """
        def finish(connection: Connection) -> None:
            counts: Dict[str, int] = dict(tuple(row) for row in connection.execute(
                sa.select(t.run_documents.c.outcome, sa.func.count())
                .where(t.run_documents.c.run_id == run_id)
                .group_by(t.run_documents.c.outcome)
            ).all())
            connection.execute(sa.update(t.runs).where(t.runs.c.id == run_id).values(
                status=status, finished_at=_now(), message=message,
                seconds=sa.func.coalesce(t.runs.c.seconds, 0.0) + seconds,
                **{outcome: counts.get(outcome, 0) for outcome in t.OUTCOMES},
            ))
        self._transaction(finish)

    def run_row(self, run_id: int) -> Any:
        """The run's row, or None."""
        with self.engine.connect() as connection:
            return connection.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()

    def pending(self, run_id: int, *, after: int = -1, limit: int = _BATCH
                ) -> List[PendingDocument]:
        """The run's targets after ordinal ``after`` not yet recorded, or failed, in order."""
        target, done, document, version = (t.run_targets, t.run_documents, t.documents,
                                            t.document_versions)
        query = (
            sa.select(target.c.ordinal, target.c.document_id, version.c.fingerprint)
            .select_from(
                target.outerjoin(done, sa.and_(done.c.run_id == target.c.run_id,
                                               done.c.document_id == target.c.document_id))
                .outerjoin(document, sa.and_(document.c.id == target.c.document_id,
                                             document.c.deleted_run_id.is_(None)))
                .outerjoin(version, version.c.id == document.c.current_version_id)
            )
            .where(target.c.run_id == run_id, target.c.ordinal > after,
                   sa.or_(done.c.outcome.is_(None), done.c.outcome == "failed"))
            .order_by(target.c.ordinal).limit(limit)
        )
        with self.engine.connect() as connection:
            return [PendingDocument(row.ordinal, row.document_id, row.fingerprint)
                    for row in connection.execute(query)]

    # -- documents --

    def record(self, run_id: int, inspection: Inspection) -> str:
        """Store an inspected document for a run, in one transaction; idempotent.

        Returns:
            The outcome: ``new``, ``changed`` (a new version), ``unchanged`` (its content is
            that of its current version), or the outcome already recorded for this run.
        """
        content = version_content(inspection)
        return self._transaction(lambda connection: self._record(connection, run_id, content))

    def _record(self, connection: Connection, run_id: int, content: VersionContent) -> str:
        state = connection.execute(_STATE, {"run_id": run_id,
                                            "document_id": content.document_id}).first()
        if state is None:  # never stored: only a failure can have been recorded
            previous = self._recorded(connection, run_id, content.document_id)
        else:
            previous = state.recorded
        if previous is not None and previous != "failed":
            return str(previous)
        live = state is not None and state.current_version_id is not None and (
            state.deleted_run_id is None)
        if state is None:
            connection.execute(_INSERT_DOCUMENT, {"id": content.document_id,
                                                  "first_run_id": run_id})
        if live and state.content_hash == content.content_hash:  # type: ignore[union-attr]
            outcome, version_id = "unchanged", state.current_version_id  # type: ignore[union-attr]  # noqa: E501
        else:
            outcome = "changed" if live else "new"
            known = state is not None and state.version is not None
            number = state.version + 1 if known else 1  # type: ignore[union-attr]
            version_id = self._insert_version(connection, run_id, number, content)
            connection.execute(_SET_CURRENT, {"b_document_id": content.document_id,
                                              "current_version_id": version_id})
        self._write_outcome(connection, run_id, content.document_id, previous,
                            outcome=outcome, version_id=version_id)
        return outcome

    def _insert_version(self, connection: Connection, run_id: int, number: int,
                        content: VersionContent) -> int:
        result = connection.execute(_INSERT_VERSION, {
            "document_id": content.document_id, "version": number, "run_id": run_id,
            "stored_at": _now(), "fingerprint": content.fingerprint,
            "content_hash": content.content_hash, "updated_at": content.updated_at,
            "type": content.type, "name": content.name, "owner": content.owner,
            "raw_json": content.raw_json,
        })
        version_id = int(_primary_key(result))
        for statement, rows in ((_INSERT_CONTAINERS, content.containers),
                                (_INSERT_WIDGETS, content.widgets),
                                (_INSERT_DATA_SOURCES, content.data_sources),
                                (_INSERT_TABLE_REFS, content.table_refs)):
            for start in range(0, len(rows), _BATCH):
                connection.execute(statement, [
                    {"version_id": version_id, **row} for row in rows[start:start + _BATCH]
                ])
        return version_id

    def record_unchanged(self, run_id: int, document: Document) -> str:
        """Record that a document's ``GetDocument`` reply matched its current version.

        Nothing more was fetched; the current version stands for this run. Idempotent.

        Raises:
            InvalidArgument: The document has no current version to stand for it.
        """
        return self.record_unchanged_many(run_id, [document.id])[document.id]

    def record_unchanged_many(self, run_id: int, document_ids: Sequence[str]) -> Dict[str, str]:
        """:meth:`record_unchanged` for many documents, in one transaction (each is one row).

        Returns:
            {document id: outcome} (the outcome already recorded, for a document recorded
            before in this run).

        Raises:
            InvalidArgument: A document has no current version; nothing is recorded.
        """
        def write(connection: Connection) -> Dict[str, str]:
            ids = list(dict.fromkeys(document_ids))
            states = {row.document_id: row for row in connection.execute(
                _STATES, {"run_id": run_id, "document_ids": ids})}
            outcomes: Dict[str, str] = {}
            inserts: List[Dict[str, Any]] = []
            now = _now()
            for document_id in ids:
                state = states.get(document_id)
                previous = None if state is None else state.recorded
                if previous is not None and previous != "failed":
                    outcomes[document_id] = str(previous)
                    continue
                if state is None or state.current_version_id is None or (
                        state.deleted_run_id is not None):
                    raise InvalidArgument(
                        f"document: {document_id!r} has no stored version to be unchanged from")
                row = {"run_id": run_id, "document_id": document_id, "outcome": "unchanged",
                       "version_id": state.current_version_id, "error": None,
                       "recorded_at": now}
                if previous is None:
                    inserts.append(row)
                else:
                    connection.execute(_UPDATE_OUTCOME, _update_row(row))
                outcomes[document_id] = "unchanged"
            if inserts:
                connection.execute(_INSERT_OUTCOME, inserts)
            return outcomes
        return self._transaction(write)

    def record_failure(self, run_id: int, document_id: str, reason: str) -> str:
        """Record that a document could not be inspected in this run, and why. Idempotent.

        A document already recorded for this run keeps that outcome.
        """
        def write(connection: Connection) -> str:
            previous = self._recorded(connection, run_id, document_id)
            if previous is not None:
                return previous
            self._write_outcome(connection, run_id, document_id, None, outcome="failed",
                                version_id=None, error=redact(reason))
            return "failed"
        return self._transaction(write)

    def record_deleted(self, run_id: int, document_id: str) -> Optional[str]:
        """Mark a stored document deleted in this run (the server said it is gone).

        Returns:
            ``deleted``, the outcome already recorded for this run, or None when the store
            holds no live version of the document (nothing to delete).
        """
        def write(connection: Connection) -> Optional[str]:
            state = connection.execute(_STATE, {"run_id": run_id,
                                                "document_id": document_id}).first()
            previous = None if state is None else state.recorded
            if previous is not None and previous != "failed":
                return str(previous)
            if state is None or state.current_version_id is None or (
                    state.deleted_run_id is not None):
                return None
            connection.execute(sa.update(t.documents).where(t.documents.c.id == document_id)
                               .values(deleted_run_id=run_id))
            self._write_outcome(connection, run_id, document_id, previous, outcome="deleted",
                                version_id=state.current_version_id)
            return "deleted"
        return self._transaction(write)

    # -- helpers --

    @staticmethod
    def _recorded(connection: Connection, run_id: int, document_id: str) -> Optional[str]:
        outcome: Optional[str] = connection.execute(
            _RECORDED, {"run_id": run_id, "document_id": document_id}).scalar()
        return outcome

    @staticmethod
    def _write_outcome(connection: Connection, run_id: int, document_id: str,
                       previous: Optional[str], *, outcome: str, version_id: Optional[int],
                       error: Optional[str] = None) -> None:
        row = {"run_id": run_id, "document_id": document_id, "outcome": outcome,
               "version_id": version_id, "error": error, "recorded_at": _now()}
        # A failure is replaced by a later attempt's outcome; otherwise the row is new.
        if previous is None:
            connection.execute(_INSERT_OUTCOME, row)
        else:
            connection.execute(_UPDATE_OUTCOME, _update_row(row))

    def _transaction(self, work: Callable[[Connection], _R]) -> _R:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
                    return work(connection)
            except sa.exc.IntegrityError:
                if attempt == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")


# The statements stored for every document, built once: executing the same statement object
# with new parameters is SQLAlchemy's quickest path, and this is the scan's inner loop.
_recorded_outcome = (
    sa.select(t.run_documents.c.outcome)
    .where(t.run_documents.c.run_id == sa.bindparam("run_id"),
           t.run_documents.c.document_id == t.documents.c.id)
    .scalar_subquery()
)
_state_columns = (
    t.documents.c.id.label("document_id"), t.documents.c.current_version_id,
    t.documents.c.deleted_run_id, t.document_versions.c.version,
    t.document_versions.c.content_hash, _recorded_outcome.label("recorded"),
)
_with_version = t.documents.outerjoin(
    t.document_versions, t.document_versions.c.id == t.documents.c.current_version_id)
# A document's state and what this run recorded of it, in one query. (A document the store
# has never stored has no row; only a failure can have been recorded for it.)
_STATE = (sa.select(*_state_columns).select_from(_with_version)
          .where(t.documents.c.id == sa.bindparam("document_id")))
_STATES = (sa.select(*_state_columns).select_from(_with_version)
           .where(t.documents.c.id.in_(sa.bindparam("document_ids", expanding=True))))
_RECORDED = sa.select(t.run_documents.c.outcome).where(
    t.run_documents.c.run_id == sa.bindparam("run_id"),
    t.run_documents.c.document_id == sa.bindparam("document_id"))
_INSERT_DOCUMENT = sa.insert(t.documents)
_INSERT_VERSION = sa.insert(t.document_versions)
_INSERT_CONTAINERS = sa.insert(t.containers)
_INSERT_WIDGETS = sa.insert(t.widgets)
_INSERT_DATA_SOURCES = sa.insert(t.data_sources)
_INSERT_TABLE_REFS = sa.insert(t.table_refs)
_INSERT_OUTCOME = sa.insert(t.run_documents)
_UPDATE_OUTCOME = (
    sa.update(t.run_documents)
    .where(t.run_documents.c.run_id == sa.bindparam("b_run_id"),
           t.run_documents.c.document_id == sa.bindparam("b_document_id"))
)
_SET_CURRENT = (
    sa.update(t.documents).where(t.documents.c.id == sa.bindparam("b_document_id"))
    .values(deleted_run_id=None)
)


def _update_row(row: Dict[str, Any]) -> Dict[str, Any]:
    """An outcome row as _UPDATE_OUTCOME's parameters: the key renamed, the rest set."""
    values = {k: v for k, v in row.items() if k not in ("run_id", "document_id")}
    return {"b_run_id": row["run_id"], "b_document_id": row["document_id"], **values}


def _primary_key(result: Any) -> Any:
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has one
    return key[0]
