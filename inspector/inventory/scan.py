"""The scan: which documents, which need inspecting, what to store; and the loop that does it.

:class:`ScanRun` is a run in progress, independent of how inspections are obtained: it starts a
run or resumes the stopped one of the same selection, hands out the documents still to do
(:meth:`ScanRun.pending_ids`), says which of them need inspecting (:meth:`ScanRun.should_inspect`,
from the planner) and records each result in the store. :func:`scan` drives one with a
:class:`~inspector.DocumentInspector`; a Dask client drives one with its cluster's results.

A run is resumable at any point: its targets were stored when it started, each document's
outcome is stored in a transaction of its own, and resuming hands out only the targets with no
outcome yet (or a failure, tried again). A connection lost for good, Ctrl-C or a crash leaves
the run ``interrupted`` or ``running``; the next scan of the same selection continues it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Union

import attrs

from inspector.client import DocumentInspector
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    InvalidArgument,
    ServerError,
)
from inspector.inventory.content import document_fingerprint
from inspector.inventory.planner import (
    DEFAULT_STALE_THRESHOLD,
    check_threshold,
    named_ids,
    needs_inspection,
    selection_key,
    targets,
)
from inspector.inventory.store import PendingDocument, Store
from inspector.models import Document, Inspection
from inspector.redaction import redact_url

__all__ = ["Failure", "NothingToResume", "ScanRun", "scan"]

logger = logging.getLogger("inspector.inventory.scan")

# Unchanged documents recorded in one transaction.
_UNCHANGED_BATCH = 500

# Failures that are the connection's, not the document's: the run stops, to be resumed.
_CONNECTION_ERRORS = (ConnectionFailed, ConnectionLost, ClientClosed)


class NothingToResume(InspectorError):
    """``resume`` was asked for, and no stopped run of that selection exists."""


@attrs.frozen
class Failure:
    """A document that could not be inspected, and why (what :meth:`ScanRun.record` stores)."""

    document_id: str
    reason: str

    @classmethod
    def from_error(cls, document_id: str, error: BaseException) -> Failure:
        """The failure an exception describes: its type and message."""
        return cls(document_id, f"{type(error).__name__}: {error}")


#: What a run records per document: an inspection, its unchanged ``Document``, or a failure.
Result = Union[Inspection, Document, Failure]


class ScanRun:
    """A scan run in progress: started (or resumed) in the store, fed results one by one.

    Use :meth:`start` to make one. Thread-safe: results may be recorded from several threads.

    Attributes:
        run_id: The run in the store.
        resumed: Whether this continues a run that was stopped.
        full: Every document is inspected whole, unchanged or not.
    """

    def __init__(self, store: Store, run_id: int, *, resumed: bool, full: bool) -> None:
        self.store = store
        self.run_id = run_id
        self.resumed = resumed
        self.full = full
        # Stored fingerprints of the documents handed out and not yet recorded: filled by
        # pending_ids(), read by should_inspect() on the inspector's worker threads (a dict
        # read needs no lock), emptied by record(). Bounded by the documents in flight.
        self._stored_fingerprints: Dict[str, Optional[str]] = {}
        # Unchanged documents waiting to be recorded together: each is one row, and a
        # transaction per row would cost a rescan more than its requests. Lost by a kill -9,
        # they are handed out again on resuming.
        self._unchanged: List[str] = []
        self._started = time.monotonic()
        self._lock = threading.Lock()  # guards _stored_fingerprints' writers and _unchanged

    @classmethod
    def start(
        cls,
        store: Store,
        *,
        server: Optional[str],
        document_ids: Sequence[str] = (),
        list_documents: Optional[Callable[[], Sequence[str]]] = None,
        full: bool = False,
        resume: bool = False,
        stale_threshold: float = DEFAULT_STALE_THRESHOLD,
        trigger: str = "scan",
    ) -> ScanRun:
        """Resume the stopped run of this selection, or start a new one.

        Args:
            store: Where the run is stored.
            server: The server's endpoint (credentials are removed before it is stored).
            document_ids: Documents named.
            list_documents: For a run of every document: returns the server's listing. Called
                only when a new run starts (a resumed one keeps its targets).
            full: Inspect every document whole, changed or not.
            resume: Only resume: raise :class:`NothingToResume` rather than start a run. With
                no documents named and no listing, the latest stopped scan is resumed.
            stale_threshold: See :func:`inspector.inventory.planner.plan_deletions`.
            trigger: ``scan`` or ``watch``, for the record.

        Raises:
            NothingToResume: ``resume`` and there is no stopped run to continue.
            StaleListing: The listing lacks too many documents; the run was refused.
            InvalidArgument: A bad id or threshold; no documents and no listing, without
                ``resume``.
        """
        threshold = check_threshold(stale_threshold)
        named = named_ids(document_ids)
        endpoint = None if server is None else redact_url(server)
        list_all = list_documents is not None
        if resume and not named and not list_all:
            run_id = store.latest_unfinished()
        elif not named and not list_all:
            raise InvalidArgument("document_ids: name at least one document, or list them all")
        else:
            run_id = store.find_resumable(selection_key(endpoint, named, list_all))
        if run_id is not None:
            store.resume_run(run_id)
            settings = store.run_row(run_id).settings or {}
            return cls(store, run_id, resumed=True, full=bool(settings.get("full", full)))
        if resume:
            raise NothingToResume("no stopped scan of this selection to resume")
        listing = list_documents() if list_documents is not None else None
        begun = store.begin_run(
            server=endpoint,
            selection_key=selection_key(endpoint, named, list_all),
            selection={"all": list_all, "named": len(named), "first_named": named[:20]},
            settings={"full": full, "stale_threshold": threshold},
            targets=targets(named, listing),
            trigger=trigger,
            stale_threshold=threshold if list_all else None,
        )
        return cls(store, begun.run_id, resumed=False, full=full)

    def pending_documents(self, *, batch: int = 1000) -> Iterator[PendingDocument]:
        """The run's documents still to do, in order, each with its stored fingerprint (for
        workers elsewhere to decide with :func:`~inspector.inventory.planner.needs_inspection`),
        read from the store a batch at a time."""
        after = -1
        while True:
            pending = self.store.pending(self.run_id, after=after, limit=batch)
            if not pending:
                return
            yield from pending
            after = pending[-1].ordinal

    def pending_ids(self, *, batch: int = 1000) -> Iterator[str]:
        """The run's documents still to do, in order; :meth:`should_inspect` knows them until
        :meth:`record` takes their result."""
        for document in self.pending_documents(batch=batch):
            with self._lock:
                self._stored_fingerprints[document.document_id] = document.fingerprint
            yield document.document_id

    def should_inspect(self, document: Document) -> bool:
        """Whether ``document`` (its ``GetDocument`` reply) needs inspecting whole.

        Quick and thread-safe: called on the inspector's worker threads.
        """
        stored = self._stored_fingerprints.get(document.id)
        return needs_inspection(stored, document_fingerprint(document), full=self.full)

    def stored_fingerprint(self, document_id: str) -> Optional[str]:
        """The fingerprint of a handed-out document's current version (None: none stored)."""
        return self._stored_fingerprints.get(document_id)

    def record(self, document_id: str, result: Result) -> str:
        """Store one document's result for this run; idempotent. Returns the outcome.

        An inspection or a failure is stored at once, in a transaction of its own; an
        unchanged ``Document`` joins others, recorded together by :meth:`flush` (at the latest
        by :meth:`finish`).
        """
        with self._lock:
            self._stored_fingerprints.pop(document_id, None)
        if isinstance(result, Inspection):
            return self.store.record(self.run_id, result)
        if isinstance(result, Document):
            with self._lock:
                self._unchanged.append(document_id)
                full = len(self._unchanged) >= _UNCHANGED_BATCH
            if full:
                self.flush()
            return "unchanged"
        return self.store.record_failure(self.run_id, result.document_id, result.reason)

    def record_deleted(self, document_id: str) -> Optional[str]:
        """Mark a document deleted in this run (None: the store has no live version of it)."""
        with self._lock:
            self._stored_fingerprints.pop(document_id, None)
        return self.store.record_deleted(self.run_id, document_id)

    def flush(self) -> None:
        """Record the unchanged documents waiting to be, in one transaction."""
        with self._lock:
            waiting, self._unchanged = self._unchanged, []
        if waiting:
            self.store.record_unchanged_many(self.run_id, waiting)

    def finish(self, status: str = "completed", message: Optional[str] = None) -> None:
        """End this segment of the run: what waits recorded, its status, time spent, counts."""
        self.flush()
        self.store.finish_run(self.run_id, status, seconds=time.monotonic() - self._started,
                              message=message)


def scan(
    store: Store,
    inspector: DocumentInspector,
    document_ids: Sequence[str] = (),
    *,
    list_all: bool = False,
    full: bool = False,
    resume: bool = False,
    stale_threshold: float = DEFAULT_STALE_THRESHOLD,
    trigger: str = "scan",
    on_result: Optional[Callable[[str, str, Optional[str]], None]] = None,
    timeout: Optional[float] = None,
    missing_means_deleted: bool = False,
) -> int:
    """Scan documents into the store with ``inspector``; return the run's id.

    Args:
        store: The inventory's store.
        inspector: An open inspector.
        document_ids: Documents to scan.
        list_all: Also every document the server lists.
        full: Inspect every document whole (otherwise one request for each unchanged one).
        resume: Only continue a stopped run (see :meth:`ScanRun.start`).
        stale_threshold: See :func:`inspector.inventory.planner.plan_deletions`.
        trigger: ``scan`` or ``watch``, for the record.
        on_result: Called with (document id, outcome, failure reason) as each is stored.
        timeout: Seconds per document; None for the inspector's own.
        missing_means_deleted: A document the server answers 404 for is marked deleted
            (``watch``, told by a ``DocumentRemoved``), not failed.

    Raises:
        As :meth:`ScanRun.start`; ConnectionLost, ConnectionFailed: the connection was lost
        for good (the run is stored as interrupted, to be resumed); KeyboardInterrupt (idem).
    """
    run = ScanRun.start(
        store, server=inspector.url, document_ids=document_ids,
        list_documents=inspector.list_documents if list_all else None,
        full=full, resume=resume, stale_threshold=stale_threshold, trigger=trigger,
    )
    in_order: Deque[str] = collections.deque()

    def handed_out() -> Iterator[str]:
        for document_id in run.pending_ids():
            in_order.append(document_id)
            yield document_id

    # The inspector's own timeout unless one is given (it has its own marker for "not given").
    options: Dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    results = inspector.inspect_many(handed_out(), return_exceptions=True,
                                     should_inspect=run.should_inspect, **options)
    try:
        for answer in results:
            document_id = in_order.popleft()
            result: Union[Result, InspectorError] = answer
            if isinstance(result, _CONNECTION_ERRORS):
                raise result
            outcome = None
            if missing_means_deleted and isinstance(result, ServerError) and result.code == 404:
                outcome = run.record_deleted(document_id)
            if isinstance(result, InspectorError):
                result = Failure.from_error(document_id, result)
            if outcome is None:
                outcome = run.record(document_id, result)
            if on_result is not None:
                reason = result.reason if isinstance(result, Failure) else None
                on_result(document_id, outcome, reason)
    except _CONNECTION_ERRORS as error:
        _interrupted(run, f"{type(error).__name__}: {error}")
        raise
    except BaseException as error:  # Ctrl-C, or the store failed: resumable
        _interrupted(run, f"stopped: {type(error).__name__}")
        raise
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    run.finish("completed")
    return run.run_id


def _interrupted(run: ScanRun, message: str) -> None:
    """Store the run as interrupted, if the store can; the error that stopped it goes on."""
    try:
        run.finish("interrupted", message)
    except Exception as error:  # the store itself failed: the run stays "running", resumable
        logger.warning("run %s could not be marked interrupted: %s", run.run_id, error)
