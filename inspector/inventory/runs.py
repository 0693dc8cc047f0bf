"""The inventory's runs: starting one with its targets, resuming, finishing, what is left.

A run starts in one transaction with its targets (and, for a run that lists everything, the
documents found gone), so a run in the store always knows what it set out to do; what is left
of it is whatever target has no outcome yet (or a failure), read in order, a batch at a time.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspector.inventory import schema as t
from inspector.inventory.database import database_errors, inserted_id, transaction, utc_now
from inspector.inventory.planner import DeletionPlan, StaleListing, plan_deletions

__all__ = ["PendingDocument", "RunStart", "RunStore"]

# Rows per INSERT of many rows, and targets per read of what is left.
_BATCH = 1000


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


class RunStore:
    """The runs' side of the store, on one SQLAlchemy engine; every method is one or a few
    transactions of its own, safe from several threads and processes.

    Args:
        engine: An engine on a database at the latest schema.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @database_errors
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
            return transaction(self.engine, lambda connection: self._begin(
                connection, server, selection_key, selection, settings, targets, trigger,
                stale_threshold))
        except StaleListing as refusal:
            reason = str(refusal)
            run_id = transaction(self.engine, lambda connection: self._insert_run(
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
        now = utc_now()
        result = connection.execute(sa.insert(t.runs).values(
            started_at=now, finished_at=now if finished else None,
            server=server, selection_key=selection_key, selection=selection,
            settings=settings, trigger=trigger, status=status, message=message,
            seconds=0.0,
        ))
        return inserted_id(result)

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
                          sa.literal(utc_now(), t.UTCDateTime())).where(missing),
            ))
            connection.execute(sa.update(documents).where(missing).values(deleted_run_id=run_id))
        return plan

    @database_errors
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

    @database_errors
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

    @database_errors
    def resume_run(self, run_id: int) -> None:
        """Mark a stopped run as running again, and count the resumption."""
        transaction(self.engine, lambda connection: connection.execute(
            sa.update(t.runs).where(t.runs.c.id == run_id)
            .values(status="running", resumed=t.runs.c.resumed + 1, finished_at=None)
        ))

    @database_errors
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
                status=status, finished_at=utc_now(), message=message,
                seconds=sa.func.coalesce(t.runs.c.seconds, 0.0) + seconds,
                **{outcome: counts.get(outcome, 0) for outcome in t.OUTCOMES},
            ))
        transaction(self.engine, finish)

    @database_errors
    def run_row(self, run_id: int) -> Any:
        """The run's row, or None."""
        with self.engine.connect() as connection:
            return connection.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()

    @database_errors
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
