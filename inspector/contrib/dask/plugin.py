"""The worker side: one inspector per worker process, and the task that inspects a batch.

:class:`InspectorPlugin` is a ``distributed`` worker plugin. Only its settings are pickled to
the workers; on each worker ``setup`` reads the token (from the environment or a secrets
callback, see :mod:`inspector.contrib.dask.settings`) and the first batch opens the worker's one
:class:`~inspector.DocumentInspector`, which then serves every later batch on that worker until
``teardown`` closes it.

The connection cap
------------------
``connection_cap`` is enforced by a ``distributed.Semaphore`` per endpoint with that many
leases. A worker holds one lease for as long as its connection is open, not per batch: the
lease is acquired before the inspector is opened and released only after it is closed, so the
count of open connections can never pass the cap, and a worker busy with batch after batch
neither re-opens its connection nor goes back to the scheduler for each batch. A worker that
has had no batch for ``idle_release`` seconds closes its connection and returns its lease, so
that a worker beyond the cap, waiting for one, gets its turn (and the scan can finish). A worker
that dies without ``teardown`` loses its lease when the scheduler's lease timeout
(``distributed.scheduler.locks.lease-timeout``) expires; its socket is closed by its operating
system at once.

Why ``setup`` does not open the connection: it runs on the worker's event loop, while
registering the plugin waits for every worker's ``setup``; a worker beyond the cap waiting there
for a lease would stall the registration and the worker's heartbeats. A batch runs on a task
thread, where waiting is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import pickle
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    cast,
)

from distributed import Semaphore, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from inspector.client import DocumentInspector
from inspector.contrib.dask.leased import LeasedInspector
from inspector.contrib.dask.settings import InspectorSettings, read_token
from inspector.contrib.dask.writing import Recorded, WorkerStore, WriteTo
from inspector.exceptions import ClientClosed, InspectorError
from inspector.models import Document, Inspection
from inspector.redaction import redact_url

if TYPE_CHECKING:
    from distributed import Worker

__all__ = ["BatchOutcome", "InspectorPlugin", "inspect_batch", "inspect_batch_pickled",
           "iter_outcomes", "unpickle_outcomes"]

logger = logging.getLogger("inspector.contrib.dask")

#: What a batch returns per document: its id, and its inspection, its ``Document`` alone when
#: it had not changed since it was stored (see ``fingerprints``), the error it failed with, or
#: what the worker recorded of it in the inventory (see ``write_to``).
BatchOutcome = Tuple[str, Union[Inspection, Document, InspectorError, Recorded]]

#: What inspecting one document of a batch gives, before anything is recorded of it.
Outcome = Tuple[str, Union[Inspection, Document, InspectorError]]

#: Per document of a batch, the fingerprint of its stored version (None: none stored).
Fingerprints = Mapping[str, Optional[str]]


def semaphore_name(url: str) -> str:
    """The cluster-wide semaphore that caps the connections to one endpoint."""
    return f"inspector-connections-{redact_url(url)}"


class InspectorPlugin(WorkerPlugin):
    """A worker plugin that gives each worker process one long-lived inspector.

    Register it with ``client.register_plugin(InspectorPlugin(settings))``, or let
    :func:`inspector.contrib.dask.inspect_across` do it; tasks reach it through
    :func:`inspect_batch`.

    Args:
        settings: How to open the inspector; never the token.
        name: The name it is registered under; default from the settings.
    """

    def __init__(self, settings: InspectorSettings, *, name: Optional[str] = None) -> None:
        self.settings = settings
        self.name = name or f"inspector-{settings.key}"
        self._reset()

    def _reset(self) -> None:
        # Worker-side state, made anew after unpickling; none of it is ever pickled.
        self._leased: Optional[LeasedInspector] = None
        self._setup_error: Optional[BaseException] = None
        self._store = WorkerStore(self.settings)

    def __getstate__(self) -> Dict[str, Any]:
        # The settings only: never the token, a socket or a lock.
        return {"settings": self.settings, "name": self.name}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.settings = state["settings"]
        self.name = state["name"]
        self._reset()

    def __repr__(self) -> str:
        return f"<InspectorPlugin {self.name} {self.settings!r}>"

    # -- the plugin's life on a worker --

    def setup(self, worker: Worker) -> None:
        """Read the token on this worker and choose its endpoint (no connection yet)."""
        try:
            token = read_token(self.settings)
        except InspectorError as error:
            # A worker that joins later only logs a failed setup: its batches say why.
            self._setup_error = error
            raise
        url = self.settings.url_for(worker.name)
        lease = None
        if self.settings.connection_cap is not None:
            lease = Semaphore(  # type: ignore[no-untyped-call]
                max_leases=self.settings.connection_cap,
                name=semaphore_name(url),
                scheduler_rpc=worker.scheduler,
                loop=worker.loop,
            )
        options = self.settings.inspector_options()

        def open_inspector() -> DocumentInspector:
            inspector = DocumentInspector(url, token=token, **options)
            logger.info("worker inspector connected to %s", redact_url(url))
            return inspector

        self._leased = LeasedInspector(open_inspector, lease, self.settings.idle_release)

    async def teardown(self, worker: Worker) -> None:
        """Close the inspector and give back the lease, off the worker's event loop."""
        # Closing joins threads and releasing the lease is a blocking call to the scheduler:
        # both run on an executor thread, as the event loop must stay free to serve them.
        await asyncio.get_running_loop().run_in_executor(None, self._close_for_good)

    def _close_for_good(self) -> None:
        if self._leased is not None:
            self._leased.close()
        self._store.close()

    # -- batches --

    def outcomes(self, document_ids: Sequence[str], fingerprints: Optional[Fingerprints] = None,
                 *, full: bool = False) -> Generator[Outcome, None, None]:
        """Inspect a batch with this worker's inspector; yield each document's outcome, in
        order, as it is ready (the batch counts as running until the generator ends).

        A document that fails is yielded with its error, not raised. The batch itself fails
        (so that it runs again elsewhere) only when this worker's inspector was closed under
        it: the worker is leaving.

        Args:
            document_ids: The batch.
            fingerprints: For an incremental scan, each document's stored fingerprint: a
                document whose ``GetDocument`` reply still matches it is returned as that
                ``Document`` after one request, not inspected whole. None: inspect all.
            full: Inspect every document whole even so (the fingerprints are then unused).

        Raises:
            ClientClosed: the plugin was torn down during the batch.
            InspectorError: the token or the connection could not be had at all.
        """
        if self._setup_error is not None:
            raise self._setup_error
        if self._leased is None:
            raise InspectorError("the InspectorPlugin was not set up on this worker")
        inspector = self._leased.start_batch()
        options: Dict[str, Any] = {}
        if fingerprints is not None and not full:
            options["should_inspect"] = _changed_since(fingerprints)
        try:
            for document_id, outcome in zip(
                document_ids,
                inspector.inspect_many(document_ids, return_exceptions=True, **options),
            ):
                if isinstance(outcome, ClientClosed):
                    raise outcome
                yield document_id, outcome
        finally:
            self._leased.end_batch()

    def inspect(self, document_ids: Sequence[str], fingerprints: Optional[Fingerprints] = None,
                *, full: bool = False, write_to: Optional[WriteTo] = None
                ) -> List[BatchOutcome]:
        """Inspect a batch with this worker's inspector; each document's outcome, in order.

        Args:
            document_ids: See :meth:`outcomes`.
            fingerprints: See :meth:`outcomes`.
            full: See :meth:`outcomes`.
            write_to: Record each outcome in the inventory from here, and return only what
                was recorded (see :mod:`inspector.contrib.dask.writing`).

        Raises:
            ClientClosed: the plugin was torn down during the batch.
            InspectorError: the token or the connection could not be had at all.
        """
        outcomes = list(self.outcomes(document_ids, fingerprints, full=full))
        if write_to is None:
            return cast(List[BatchOutcome], outcomes)  # a list of the narrower kind
        return list(self._store.record(write_to, outcomes))


def _changed_since(fingerprints: Fingerprints) -> Callable[[Document], bool]:
    """``should_inspect`` for an incremental scan: whether a document changed since stored."""
    # Imported here: the inventory's pure parts only (no database), and only when asked for.
    from inspector.inventory.content import document_fingerprint
    from inspector.inventory.planner import needs_inspection

    def should_inspect(document: Document) -> bool:
        stored = fingerprints.get(document.id)
        return needs_inspection(stored, document_fingerprint(document), full=False)

    return should_inspect


def _plugin(plugin_name: str) -> InspectorPlugin:
    """The :class:`InspectorPlugin` of the worker this task runs on."""
    plugin = get_worker().plugins.get(plugin_name)
    if not isinstance(plugin, InspectorPlugin):
        raise InspectorError(
            f"no InspectorPlugin {plugin_name!r} on this worker: register it with "
            "client.register_plugin(InspectorPlugin(settings))"
        )
    return plugin


def inspect_batch(
    document_ids: Sequence[str],
    plugin_name: str,
    fingerprints: Optional[Fingerprints] = None,
    full: bool = False,
    write_to: Optional[WriteTo] = None,
) -> List[BatchOutcome]:
    """The task: inspect a batch of documents with the inspector of the worker it runs on.

    Args:
        document_ids: The batch.
        plugin_name: The name the :class:`InspectorPlugin` was registered under.
        fingerprints: See :meth:`InspectorPlugin.outcomes`.
        full: See :meth:`InspectorPlugin.outcomes`.
        write_to: See :meth:`InspectorPlugin.inspect`.

    Returns:
        ``(document_id, outcome)`` per document, in the order given: its ``Inspection``, its
        unchanged ``Document``, or the ``InspectorError`` it failed with.
    """
    return _plugin(plugin_name).inspect(document_ids, fingerprints, full=full,
                                        write_to=write_to)


def inspect_batch_pickled(
    document_ids: Sequence[str],
    plugin_name: str,
    fingerprints: Optional[Fingerprints] = None,
    full: bool = False,
    write_to: Optional[WriteTo] = None,
) -> bytes:
    """:func:`inspect_batch`, each outcome pickled as it is ready, all in one bytes object.

    What :func:`~inspector.contrib.dask.inspect_across` submits. Held as models until the
    batch ended, a batch's thousands of objects lived through the worker's garbage collections
    (measured: three times the collections of one process doing the same work), and were then
    pickled one by one on the worker's event loop. Pickled as each document is done, they die
    young, and the worker holds and sends one bytes object, which Dask also sizes right. Read
    them back with :func:`iter_outcomes` (one at a time) or :func:`unpickle_outcomes`.
    """
    plugin = _plugin(plugin_name)
    if write_to is not None:  # what was recorded, a few small objects a document
        return _pickled_one_by_one(plugin.inspect(document_ids, fingerprints, full=full,
                                                  write_to=write_to))
    with contextlib.closing(plugin.outcomes(document_ids, fingerprints, full=full)) as outcomes:
        return _pickled_one_by_one(outcomes)


def _pickled_one_by_one(outcomes: Iterable[BatchOutcome]) -> bytes:
    return b"".join([pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
                     for outcome in outcomes])


def iter_outcomes(data: bytes) -> Iterator[BatchOutcome]:
    """The outcomes :func:`inspect_batch_pickled` returned, loaded one document at a time
    (from a worker of the cluster the caller submitted to: Dask trusts its workers with
    pickles both ways).

    One at a time, so that a caller that handles each and lets it go never holds a batch's
    models at once: loaded whole, they lived through the client's collections, which in a
    process that also runs the scheduler walk a large heap (measured: a third of the client's
    time).
    """
    stream = io.BytesIO(data)
    while stream.tell() < len(data):  # one pickle a document
        outcome: BatchOutcome = pickle.load(stream)
        yield outcome


def unpickle_outcomes(data: bytes) -> List[BatchOutcome]:
    """Every outcome :func:`inspect_batch_pickled` returned, in a list."""
    return list(iter_outcomes(data))
