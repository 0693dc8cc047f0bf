"""The client side: batches submitted a few at a time, outcomes streamed back as they finish.

:class:`BatchPlan` is the policy, with no cluster of its own: it cuts the ids into batches as
they are needed (a million ids are never a million tasks, nor a million futures), says which
batch to submit next, and decides what a failed batch becomes (submitted again, or each of its
documents reported failed). :func:`inspect_across` is the shell that runs it on a
``distributed.Client`` with ``as_completed``, refilled as batches finish.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any, Callable, Dict, Generator, Iterable, List, Optional, Tuple

from distributed import Client, Future, as_completed
from distributed.scheduler import KilledWorker

from inspector.contrib.dask.cluster import DEFAULT_BATCH_SIZE
from inspector.contrib.dask.plugin import (
    BatchOutcome,
    InspectorPlugin,
    inspect_batch_pickled,
    iter_outcomes,
)
from inspector.contrib.dask.settings import InspectorSettings
from inspector.contrib.dask.writing import StoreUnavailable, WriteTo
from inspector.exceptions import ConnectionFailed, InspectorError, InvalidArgument

__all__ = ["Batch", "BatchFailed", "BatchPlan", "inspect_across"]


class BatchFailed(InspectorError):
    """A document's batch failed as a whole, again and again (its worker died each time)."""


class Batch:
    """One batch of document ids and how many times it was submitted."""

    def __init__(self, number: int, document_ids: Tuple[str, ...]) -> None:
        self.number = number
        self.document_ids = document_ids
        self.attempts = 0

    def __repr__(self) -> str:
        return f"<Batch {self.number}: {len(self.document_ids)} ids, attempts={self.attempts}>"


class BatchPlan:
    """Which batch goes next, and what a failed one becomes. No cluster, no clock.

    Args:
        document_ids: The ids to inspect, read lazily, in order.
        batch_size: Ids per batch.
        batch_attempts: Times one batch is submitted before its documents are reported
            failed (a batch fails as a whole only when its worker dies or leaves).
    """

    def __init__(self, document_ids: Iterable[str], *, batch_size: int,
                 batch_attempts: int) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgument("batch_size must be a whole number of at least 1")
        if (isinstance(batch_attempts, bool) or not isinstance(batch_attempts, int)
                or batch_attempts < 1):
            raise InvalidArgument("batch_attempts must be a whole number of at least 1")
        self._ids = iter(document_ids)
        self._batch_size = batch_size
        self._batch_attempts = batch_attempts
        self._numbers = itertools.count()
        self._again: List[Batch] = []  # failed batches to submit again, before new ones
        self._exhausted = False

    def next_batch(self) -> Optional[Batch]:
        """The batch to submit now (counted as an attempt), or None when none is left."""
        if self._again:
            batch = self._again.pop(0)
        else:
            ids = () if self._exhausted else tuple(itertools.islice(self._ids, self._batch_size))
            if not ids:
                self._exhausted = True
                return None
            batch = Batch(next(self._numbers), ids)
        batch.attempts += 1
        return batch

    def failed(self, batch: Batch, error: BaseException, *, again: bool = True
               ) -> List[BatchOutcome]:
        """A batch failed as a whole: submit it again, or give each document up.

        Args:
            batch: The batch.
            error: Why it failed.
            again: Whether another attempt may help; False gives its documents up at once.

        Returns:
            Nothing when it will be submitted again; else each document with a
            :class:`BatchFailed` that names the cause.
        """
        if again and batch.attempts < self._batch_attempts:
            self._again.append(batch)
            return []
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return [
            (document_id, BatchFailed(
                f"{document_id!r}: its batch failed {batch.attempts} time"
                f"{'' if batch.attempts == 1 else 's'}, last: {reason}"
            ))
            for document_id in batch.document_ids
        ]


def inspect_across(
    client: Client,
    document_ids: Iterable[str],
    settings: InspectorSettings,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches_in_flight: Optional[int] = None,
    batch_attempts: int = 3,
    stored_fingerprint: Optional[Callable[[str], Optional[str]]] = None,
    full: bool = False,
    write_to: Optional[WriteTo] = None,
) -> Generator[BatchOutcome, None, None]:
    """Inspect documents across a Dask cluster; yield each one's outcome as its batch finishes.

    Registers an :class:`InspectorPlugin` with ``settings`` for the duration (each worker opens
    one inspector), submits batches of ``batch_size`` ids, at most ``max_batches_in_flight`` at
    once, and submits the next one as each finishes. Outcomes come in the order batches finish,
    each batch's in its own order. Stopping the generator early cancels the batches in flight
    and unregisters the plugin (the workers close their connections).

    Args:
        client: A ``distributed.Client`` connected to the cluster.
        document_ids: The ids; read lazily, as batches are needed.
        settings: How the workers open their inspectors (never the token).
        batch_size: Ids per task.
        max_batches_in_flight: Batches submitted and not yet done; default twice the cluster's
            worker threads (at least 2), so no worker waits for the next batch.
        batch_attempts: Times a batch that failed as a whole (its worker left under it) is
            submitted before each of its documents is reported failed with
            :class:`BatchFailed`. A batch whose workers kept dying (``KilledWorker``, after
            the scheduler's own ``allowed-failures`` retries) is not submitted again.
        stored_fingerprint: For an incremental scan: the fingerprint of a document's stored
            version (None: none), asked as each batch is cut and sent with it; a document
            whose ``GetDocument`` reply still matches comes back as its ``Document`` alone.
        full: Inspect every document whole, stored fingerprints or not.
        write_to: The workers record each outcome in this run of the inventory themselves
            (PostgreSQL; ``settings.store_env`` names the database URL's variable on the
            workers) and yield only a :class:`~inspector.contrib.dask.writing.Recorded`.

    Yields:
        ``(document_id, Inspection or InspectorError)``; a document that failed is yielded
        with its error, never retried beyond the inspector's own retries.

    Raises:
        InvalidArgument: a number out of range.
        ConnectionFailed: the server refused the workers for good (``final``: a token refused).
        StoreUnavailable: the workers cannot write to the inventory (with ``write_to``).
    """
    plan = BatchPlan(document_ids, batch_size=batch_size, batch_attempts=batch_attempts)
    if max_batches_in_flight is None:
        threads = client.nthreads()  # type: ignore[no-untyped-call]
        max_batches_in_flight = max(2, 2 * sum(threads.values()))
    if (isinstance(max_batches_in_flight, bool) or not isinstance(max_batches_in_flight, int)
            or max_batches_in_flight < 1):
        raise InvalidArgument("max_batches_in_flight must be a whole number of at least 1")
    scan = uuid.uuid4().hex[:12]
    # A plugin of this scan's own: another scan on the cluster keeps its own inspectors.
    plugin = InspectorPlugin(settings, name=f"inspector-{settings.key}-{scan}")
    client.register_plugin(plugin)
    in_flight: Dict[str, Tuple[Batch, Future[Any]]] = {}
    completed = as_completed()  # type: ignore[no-untyped-call]

    def submit() -> bool:
        batch = plan.next_batch()
        if batch is None:
            return False
        key = f"inspect-batch-{scan}-{batch.number}-{batch.attempts}"
        fingerprints = None
        if stored_fingerprint is not None and not full:
            fingerprints = {i: stored_fingerprint(i) for i in batch.document_ids}
        future = client.submit(inspect_batch_pickled, batch.document_ids, plugin.name, fingerprints,
                               full, write_to, key=key, pure=False)
        in_flight[key] = (batch, future)
        completed.add(future)  # type: ignore[no-untyped-call]
        return True

    try:
        while len(in_flight) < max_batches_in_flight and submit():
            pass
        for future in completed:
            batch, _ = in_flight.pop(str(future.key))
            outcomes: Iterable[BatchOutcome]
            if future.status == "finished":
                outcomes = iter_outcomes(future.result())  # loaded as they are yielded
            elif future.status == "cancelled":  # by the scheduler, not by us: try again
                outcomes = plan.failed(batch, InspectorError("the batch was cancelled"))
            else:
                error = future.exception()
                if isinstance(error, StoreUnavailable) or (
                        isinstance(error, ConnectionFailed) and error.final):
                    raise error  # every batch would fail alike: the token was refused, ...
                # The scheduler already ran a batch whose workers died allowed-failures times
                # (KilledWorker): a document in it may kill any worker, so it is given up.
                outcomes = plan.failed(batch, error, again=not isinstance(error, KilledWorker))
            future.release()
            while len(in_flight) < max_batches_in_flight and submit():
                pass
            yield from outcomes
    finally:
        for _, future in in_flight.values():
            future.cancel()  # type: ignore[no-untyped-call]
        client.unregister_worker_plugin(plugin.name)  # type: ignore[no-untyped-call]
