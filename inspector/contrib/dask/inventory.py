"""A scan into the inventory whose inspections run across a Dask cluster.

The same run as :meth:`inspector.inventory.Inventory.scan` (started or resumed in the store,
incremental unless ``full``, the same run record at the end), with the inspections done by the
cluster's workers. This process stays the inventory's single writer: it hands out the run's
pending documents in batches, with the stored fingerprint of each so that a worker inspects
whole only the documents that changed, and records each outcome as its batch comes back, one
transaction per document. That suits SQLite, which takes one writer, and PostgreSQL alike; the
database and its password never travel to a worker.

With a PostgreSQL inventory the workers may write instead (``workers_write``): each records
its batch's outcomes and sends back only what it recorded, so the writing scales with the
workers (see :mod:`inspector.contrib.dask.writing`); this process still starts, hands out and
finishes the run.

A batch whose worker dies runs again elsewhere; its outcomes arrive once, and recording is
idempotent besides, so nothing is stored twice. A document that fails is recorded as failed
(a later ``resume`` tries it again), never retried for ever. A token or URL the server refuses
for good stops the run as ``interrupted``, as does Ctrl-C; the next scan of the same
selection continues it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence

from distributed import Client

from inspector.client import DocumentInspector
from inspector.contrib.dask.cluster import DEFAULT_BATCH_SIZE
from inspector.contrib.dask.settings import InspectorSettings, read_token
from inspector.contrib.dask.submission import inspect_across
from inspector.contrib.dask.writing import (
    Recorded,
    StoreUnavailable,
    WriteTo,
    database_identity,
)
from inspector.exceptions import ConnectionFailed, InspectorError, InvalidArgument

if TYPE_CHECKING:
    from inspector.inventory.inventory import Inventory
    from inspector.inventory.queries import RunRecord
    from inspector.inventory.scan import ScanRun

__all__ = ["scan"]


class _Pending:
    """A run's documents still to do, and the stored fingerprint of each kept only until its
    batch is cut (so memory is bounded by the batches in flight, even when no result comes
    back here to be recorded)."""

    def __init__(self, run: ScanRun) -> None:
        self._run = run
        self._fingerprints: Dict[str, Optional[str]] = {}

    def ids(self) -> Iterator[str]:
        for document in self._run.pending_documents():
            self._fingerprints[document.document_id] = document.fingerprint
            yield document.document_id

    def stored_fingerprint(self, document_id: str) -> Optional[str]:
        return self._fingerprints.pop(document_id, None)


def scan(
    inventory: Inventory,
    client: Client,
    settings: InspectorSettings,
    document_ids: Sequence[str] = (),
    *,
    list_all: bool = False,
    full: bool = False,
    resume: bool = False,
    stale_threshold: Optional[float] = None,
    on_result: Optional[Callable[[str, str, Optional[str]], None]] = None,
    on_start: Optional[Callable[[int], None]] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches_in_flight: Optional[int] = None,
    workers_write: bool = False,
) -> RunRecord:
    """Scan documents into ``inventory``, inspecting them on ``client``'s cluster.

    Args:
        inventory: The inventory; this process writes every result (unless
            ``workers_write``) and starts and finishes the run. Its server of record is the
            first of ``settings.url``.
        client: A ``distributed.Client``.
        settings: How the workers reach the server (and read the token, on their side).
        document_ids: Documents to scan.
        list_all: Also every document the server lists (``ListDocuments``, asked from this
            process with the token read here as the workers read theirs).
        full: Inspect every document whole; otherwise an unchanged one costs one request.
        resume: Only continue a stopped scan of this selection.
        stale_threshold: See :meth:`inspector.inventory.Inventory.scan`; None: its default.
        on_result: Called with (document id, outcome, failure reason) as each is stored.
        on_start: Called once the run is started or resumed, with the number of documents
            it has left to do (for a progress bar).
        batch_size: Documents per task.
        max_batches_in_flight: Batches submitted at once; see :func:`inspect_across`.
        workers_write: The workers record the outcomes (a PostgreSQL inventory; the
            variable ``settings.store_env`` names holds its URL on each worker).

    Returns:
        The run's record, as the single-process scan returns it.

    Raises:
        As :meth:`inspector.inventory.Inventory.scan`.
    """
    from inspector.inventory.planner import DEFAULT_STALE_THRESHOLD
    from inspector.inventory.scan import Failure, ScanRun

    def listing() -> List[str]:
        options = settings.inspector_options()
        with DocumentInspector(settings.url[0], token=read_token(settings), **options) as di:
            return di.list_documents()

    if workers_write and inventory.engine.dialect.name == "sqlite":
        raise InvalidArgument("workers_write: SQLite takes one writer; use PostgreSQL, "
                              "or let this process write")
    run = ScanRun.start(
        inventory.store, server=settings.url[0], document_ids=document_ids,
        list_documents=listing if list_all else None, full=full, resume=resume,
        stale_threshold=DEFAULT_STALE_THRESHOLD if stale_threshold is None else stale_threshold,
    )
    if on_start is not None:
        started = inventory.run(run.run_id)
        # Failures are handed out again when a run resumes: they count as still to do.
        on_start(started.targets - started.new - started.changed - started.unchanged)
    write_to = None
    if workers_write:
        write_to = WriteTo(run.run_id, database_identity(inventory.engine))
    pending = _Pending(run)
    outcomes = inspect_across(
        client, pending.ids(), settings, batch_size=batch_size,
        max_batches_in_flight=max_batches_in_flight,
        stored_fingerprint=pending.stored_fingerprint, full=run.full, write_to=write_to,
    )
    try:
        for document_id, outcome in outcomes:
            if isinstance(outcome, Recorded):  # a worker stored it
                recorded, reason = outcome.outcome, outcome.reason
            else:
                result: Any = outcome
                if isinstance(outcome, InspectorError):
                    result = Failure.from_error(document_id, outcome)
                recorded = run.record(document_id, result)
                reason = result.reason if isinstance(result, Failure) else None
            if on_result is not None:
                on_result(document_id, recorded, reason)
    except (ConnectionFailed, StoreUnavailable) as error:  # every batch would fail alike
        run.finish("interrupted", f"{type(error).__name__}: {error}")
        raise
    except BaseException:  # Ctrl-C, the store or the cluster failed: resumable
        run.finish("interrupted", "stopped")
        raise
    finally:
        outcomes.close()  # cancels the batches in flight, unregisters the plugin
    run.finish("completed")
    return inventory.run(run.run_id)
