"""The inventory from Python: scan into it, record results, ask it questions.

.. code-block:: python

    from inspector.inventory import Inventory

    with Inventory("inventory.db") as inventory, inspector.DocumentInspector(url) as di:
        report = inventory.scan(di, list_all=True)
        inventory.reads("sales.customers")       # [TableUse, ...]
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

from inspector.client import DocumentInspector
from inspector.inventory import queries
from inspector.inventory.database import open_engine
from inspector.inventory.planner import DEFAULT_STALE_THRESHOLD
from inspector.inventory.scan import Failure, ScanRun, scan
from inspector.inventory.store import Store
from inspector.models import Document, Inspection

__all__ = ["Inventory"]


class Inventory:
    """A store of record for documents: runs, versions, data sources, and the questions.

    Args:
        db: A SQLite path or a SQLAlchemy URL (``postgresql+psycopg://...``); None for
            ``$INSPECTOR_DB``. The schema is created, or upgraded, on opening.
        **engine_options: More arguments for :func:`sqlalchemy.create_engine`.

    Raises:
        InvalidArgument: No database given, or not a usable path or URL.
        InspectorError: The database cannot be opened or upgraded.
    """

    def __init__(self, db: Optional[str] = None, **engine_options: Any) -> None:
        self.engine = open_engine(db, **engine_options)
        self.store = Store(self.engine)

    def __repr__(self) -> str:
        return f"<Inventory {self.engine.url!r}>"  # SQLAlchemy's repr hides the password

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database's connections. Safe to call twice."""
        self.engine.dispose()

    # -- scanning --

    def scan(
        self,
        inspector: DocumentInspector,
        document_ids: Sequence[str] = (),
        *,
        list_all: bool = False,
        full: bool = False,
        resume: bool = False,
        stale_threshold: float = DEFAULT_STALE_THRESHOLD,
        on_result: Optional[Callable[[str, str, Optional[str]], None]] = None,
    ) -> queries.RunRecord:
        """Scan documents into the inventory; return the run's record.

        Args:
            inspector: An open inspector on the server.
            document_ids: Documents to scan.
            list_all: Also every document the server lists; documents an earlier listing
                named and this one lacks are marked deleted (within ``stale_threshold``).
            full: Inspect every document whole; otherwise an unchanged one costs one request.
            resume: Only continue a stopped scan (of this selection; with none named and no
                ``list_all``, the latest).
            stale_threshold: The largest fraction of listed documents one run may mark
                deleted; beyond it the run is refused (:class:`StaleListing`).
            on_result: Called with (document id, outcome, failure reason) as each is stored.

        A scan of a selection whose last run was stopped continues that run.

        Raises:
            StaleListing, NothingToResume, InvalidArgument: see above.
            ConnectionLost, ConnectionFailed: the connection was lost for good; the run is
                stored as interrupted and the next scan continues it.
        """
        run_id = scan(self.store, inspector, document_ids, list_all=list_all, full=full,
                      resume=resume, stale_threshold=stale_threshold, on_result=on_result)
        return self.run(run_id)

    def start_run(self, *, server: Optional[str], document_ids: Sequence[str] = (),
                  listing: Optional[Sequence[str]] = None, full: bool = False,
                  resume: bool = False,
                  stale_threshold: float = DEFAULT_STALE_THRESHOLD) -> ScanRun:
        """Start (or resume) a run whose inspections you obtain yourself, e.g. on a cluster.

        Hand out ``run.pending_ids()``, ask ``run.should_inspect(document)`` after each
        ``GetDocument``, and store each result with :meth:`record` / :meth:`record_unchanged`
        (or ``run.record``); end with ``run.finish()``. ``listing`` is the server's
        ``ListDocuments``, for a run of every document.
        """
        return ScanRun.start(
            self.store, server=server, document_ids=document_ids,
            list_documents=None if listing is None else (lambda: listing),
            full=full, resume=resume, stale_threshold=stale_threshold,
        )

    def record(self, run_id: int, result: Union[Inspection, Failure]) -> str:
        """Store one inspection (or failure) for a run, in one transaction; idempotent.

        Recording the same document twice for a run stores it once (a failure is replaced by
        a later success). Safe from several threads and processes.

        Returns:
            The outcome: ``new``, ``changed``, ``unchanged`` or ``failed``.
        """
        if isinstance(result, Failure):
            return self.store.record_failure(run_id, result.document_id, result.reason)
        return self.store.record(run_id, result)

    def record_unchanged(self, run_id: int, document: Document) -> str:
        """Record that a document's ``GetDocument`` reply matched its stored version."""
        return self.store.record_unchanged(run_id, document)

    # -- questions --

    def runs(self) -> List[queries.RunRecord]:
        """Every run, oldest first, with its counts and how it ended."""
        return queries.runs(self.engine)

    def run(self, run_id: int) -> queries.RunRecord:
        """One run's record."""
        return queries.run_record(self.engine, run_id)

    def failures(self, run_id: int) -> List[Tuple[str, str]]:
        """(document id, reason) of each document that failed in a run."""
        return queries.run_failures(self.engine, run_id)

    def reads(self, table: str, *, run_id: Optional[int] = None) -> List[queries.TableUse]:
        """The documents that read ``table`` (``name``, ``schema.name``, ...), now or as of a
        run; see :func:`inspector.inventory.queries.table_matches`."""
        return queries.documents_reading(self.engine, table, run_id=run_id)

    def writes(self, table: str, *, run_id: Optional[int] = None) -> List[queries.TableUse]:
        """The documents whose SQL writes ``table``."""
        return queries.documents_reading(self.engine, table, run_id=run_id, access="write")

    def sources_of(self, document_id: str, *, run_id: Optional[int] = None,
                   at: Optional[datetime.datetime] = None
                   ) -> Optional[queries.DocumentSources]:
        """A document's data sources now, as of a run, or as of a moment (None: it had none
        stored then)."""
        return queries.sources_of(self.engine, document_id, run_id=run_id, at=at)

    def diff(self, run_a: int, run_b: int) -> List[queries.DiffEntry]:
        """New, changed and deleted documents from run A to run B."""
        return queries.diff(self.engine, run_a, run_b)

    def inspections(self, *, run_id: Optional[int] = None) -> Iterator[Inspection]:
        """The stored inspection of every live document, now or as of a run."""
        return queries.inspections(self.engine, run_id=run_id)

    def check_integrity(self) -> List[str]:
        """Problems found in the store's invariants; an empty list when there are none."""
        return queries.check_integrity(self.engine)
