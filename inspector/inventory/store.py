"""Writing documents to the inventory: each one's outcome in a run, in a transaction of its own.

Every write is idempotent. A document recorded twice for the same run is stored once: the
``run_documents`` row for (run, document) is looked for first, and its primary key refuses a
second one written at the same moment by another process (the transaction is then tried again
and finds the first). Only a failure is replaced, by the outcome of a later attempt. So a
scan killed at any point, a batch run again after a worker died, or two processes recording
the same results leave the store as if each document had been recorded once.

The runs themselves are :mod:`inspector.inventory.runs`'.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspector.exceptions import InvalidArgument
from inspector.inventory import schema as t
from inspector.inventory.content import VersionContent, version_content
from inspector.inventory.database import database_errors, inserted_id, transaction, utc_now
from inspector.inventory.runs import RunStore
from inspector.models import Document, Inspection
from inspector.redaction import redact

__all__ = ["Store"]

# Rows per INSERT of many rows: big enough to be quick, small enough for any driver's limits.
_BATCH = 1000


class Store:
    """The inventory's writes, on one SQLAlchemy engine: documents here, runs in ``runs``.

    Safe to use from several threads and processes at once: every method is one transaction
    of its own.

    Args:
        engine: An engine on a database at the latest schema
            (:func:`inspector.inventory.database.open_engine`).

    Attributes:
        runs: The runs' side: starting, resuming, finishing, what is left to do.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.runs = RunStore(engine)

    # -- documents --

    @database_errors
    def record(self, run_id: int, inspection: Inspection) -> str:
        """Store an inspected document for a run, in one transaction; idempotent.

        Returns:
            The outcome: ``new``, ``changed`` (a new version), ``unchanged`` (its content is
            that of its current version), or the outcome already recorded for this run.
        """
        content = version_content(inspection)
        return transaction(self.engine,
                           lambda connection: self._record(connection, run_id, content))

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
            "stored_at": utc_now(), "fingerprint": content.fingerprint,
            "content_hash": content.content_hash, "updated_at": content.updated_at,
            "type": content.type, "name": content.name, "owner": content.owner,
            "raw_json": content.raw_json,
        })
        version_id = inserted_id(result)
        for statement, rows in ((_INSERT_CONTAINERS, content.containers),
                                (_INSERT_WIDGETS, content.widgets),
                                (_INSERT_DATA_SOURCES, content.data_sources),
                                (_INSERT_TABLE_REFS, content.table_refs)):
            for start in range(0, len(rows), _BATCH):
                connection.execute(statement, [
                    {"version_id": version_id, **row} for row in rows[start:start + _BATCH]
                ])
        return version_id

    @database_errors
    def record_unchanged(self, run_id: int, document: Document) -> str:
        """Record that a document's ``GetDocument`` reply matched its current version.

        Nothing more was fetched; the current version stands for this run. Idempotent.

        Raises:
            InvalidArgument: The document has no current version to stand for it.
        """
        return self.record_unchanged_many(run_id, [document.id])[document.id]

    @database_errors
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
            now = utc_now()
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
        return transaction(self.engine, write)

    @database_errors
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
        return transaction(self.engine, write)

    @database_errors
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
        return transaction(self.engine, write)

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
               "version_id": version_id, "error": error, "recorded_at": utc_now()}
        # A failure is replaced by a later attempt's outcome; otherwise the row is new.
        if previous is None:
            connection.execute(_INSERT_OUTCOME, row)
        else:
            connection.execute(_UPDATE_OUTCOME, _update_row(row))


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
