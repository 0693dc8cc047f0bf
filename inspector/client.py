"""DocumentInspector: the whole inspection of a document at the three-round-trip limit.

An inspection is ``GetDocument``, then ``GetWidgetContainer`` for every container, then
``GetWidgetProperties`` for every widget, each follow-up sent as soon as the reply that names it
arrives. No thread ever sits blocked on a reply while work is ready: every request's Future has
a done-callback, and the follow-ups are chained on the replies.

Why replies are handled in bursts: a done-callback runs on the connection's I/O thread, which
must only route. Handing every reply to the executor as its own task costs a thread hop per
reply, and that hop, not the wire, becomes the limit (measured at 1.4-1.5x of the three round
trips). So a callback only appends the reply to one queue and, if no drain is already waiting to
run, submits one; a drain takes everything queued at that moment, handles it, and sends all the
follow-ups it found in one ``request_many()`` (one write). Replies that arrive together are
handled together, and several drains can still run at once on the executor's threads.

Results are assembled in document order whatever order the replies came in: containers in the
document's order, widgets in each container's order, each widget once, attributed to the first
container (in document order) that lists it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import (
    Any,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import attrs

from inspector.connection import Connection, redact_url
from inspector.exceptions import (
    ClientClosed,
    InspectorError,
    ProtocolError,
    RequestTimeout,
)
from inspector.models import Document, Inspection, Widget, WidgetContainer
from inspector.serialization import from_wire

__all__ = ["DocumentInspector"]

logger = logging.getLogger("inspector")

_GET_DOCUMENT = "GetDocument"
_GET_CONTAINER = "GetWidgetContainer"
_GET_WIDGET = "GetWidgetProperties"
_LIST_DOCUMENTS = "ListDocuments"


class _Job:
    """The state of one document's inspection while its replies arrive."""

    def __init__(self, document_id: str, timeout: Optional[float]) -> None:
        self.document_id = document_id
        self.timeout = timeout
        self.started = time.monotonic()
        self.result: Future[Inspection] = Future()
        self.lock = threading.Lock()
        self.document: Optional[Document] = None
        self.containers: Dict[str, WidgetContainer] = {}
        self.widgets: Dict[str, Widget] = {}
        self.requested_widgets: Dict[str, str] = {}  # widget id -> container that asked first
        self.outstanding = 0  # requests sent or about to be, whose replies are not handled yet
        self.ended = False  # result set or failed; read without the lock as a hint only

    def fail(self, error: BaseException) -> None:
        with self.lock:
            if not self.ended:
                self.ended = True
                self.result.set_exception(error)

    def wait(self) -> Inspection:
        """Wait for the result within the job's timeout."""
        left = None if self.timeout is None else self.timeout - (time.monotonic() - self.started)
        try:
            return self.result.result(max(left, 0.0) if left is not None else None)
        except FutureTimeout:
            error = RequestTimeout(
                f"inspecting {self.document_id!r} did not complete within {self.timeout}s"
            )
            self.fail(error)  # replies still on their way are then ignored
            raise error from None


# A request the inspector sends: (job, method, object id).
_Call = Tuple[_Job, str, str]


class DocumentInspector:
    """Inspect documents: each document, its widget containers and every widget's properties.

    One connection and one thread pool, shared by every call; any number of threads may use one
    inspector at once. Use it as a context manager, or call ``close()``.

    Args:
        url: ``ws://`` or ``wss://`` endpoint of the documents API.
        token: Sent as ``Authorization: Bearer <token>``; never logged, never in a repr.
        headers: Extra handshake headers.
        timeout: Seconds for one whole ``get_widgets()``/``inspect()`` call; None: no limit.
        request_timeout: Seconds for one request's reply.
        connect_timeout: Seconds for TCP, TLS and the handshake together.
        max_workers: Threads handling replies and sending follow-ups.
        max_in_flight: Requests awaiting a reply on the connection at once.
        ssl_context: For ``wss://``; the default verifies certificates.
        max_message_size: A larger incoming message is refused, never held in memory.
        max_documents_in_flight: Documents ``inspect_many()`` works on at once.
        **connection_options: Passed on to :class:`~inspector.Connection` (``close_timeout``,
            ``ping_interval``, ``ping_timeout``).

    Raises:
        ConnectionFailed: the connection could not be opened.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = 30.0,
        request_timeout: Optional[float] = 10.0,
        connect_timeout: Optional[float] = 10.0,
        max_workers: Optional[int] = None,
        max_in_flight: Optional[int] = 256,
        ssl_context: Any = None,
        max_message_size: Optional[int] = 16 * 2**20,
        *,
        max_documents_in_flight: int = 8,
        **connection_options: Any,
    ) -> None:
        if max_documents_in_flight < 1:
            raise ValueError("max_documents_in_flight must be at least 1")
        self.url = url
        self.timeout = timeout
        self.max_documents_in_flight = max_documents_in_flight
        self._connection = Connection(
            url,
            token=token,
            headers=headers,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            max_in_flight=max_in_flight,
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            **connection_options,
        )
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="inspector-worker")
        self._closed = False
        # Replies waiting for a drain, and whether a drain is submitted but not yet started.
        self._arrived: Deque[Tuple[_Call, Future[Any]]] = deque()
        self._drain_lock = threading.Lock()
        self._drain_scheduled = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<DocumentInspector {redact_url(self.url)} {state}>"

    def __enter__(self) -> DocumentInspector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connection(self) -> Connection:
        """The underlying connection, for low-level calls on the same socket."""
        return self._connection

    # -- the public calls --

    def get_widgets(self, document_id: str, *, timeout: Any = ...) -> List[Widget]:
        """Return every widget of a document, in document order.

        Args:
            document_id: The document's id.
            timeout: Seconds for the whole call; default the inspector's ``timeout``.

        Returns:
            Each widget once, containers in the document's order and widgets in each
            container's order; empty for a document type without widgets.

        Raises:
            ServerError: the document (404) or a container or widget failed; the message
                names the object.
            RequestTimeout: the call did not complete within ``timeout``.
            ProtocolError: a reply had the wrong shape.
            ConnectionLost, ClientClosed: the connection ended.
        """
        return list(self.inspect(document_id, timeout=timeout).widgets)

    def inspect(self, document_id: str, *, timeout: Any = ...) -> Inspection:
        """Return the whole inspection of a document: the document, containers and widgets.

        Args:
            document_id: The document's id.
            timeout: Seconds for the whole call; default the inspector's ``timeout``.

        Raises:
            As ``get_widgets()``.
        """
        return self._start(document_id, timeout).wait()

    def inspect_many(
        self,
        document_ids: Iterable[str],
        *,
        timeout: Any = ...,
        return_exceptions: bool = False,
    ) -> Iterator[Union[Inspection, InspectorError]]:
        """Yield the inspection of each document, in the order given.

        Up to ``max_documents_in_flight`` documents are worked on at once, so many small
        documents do not cost three round trips each.

        Args:
            document_ids: The documents' ids.
            timeout: Seconds for each document; default the inspector's ``timeout``.
            return_exceptions: Yield a document's error in its place instead of raising it
                (then the other documents still come).

        Raises:
            As ``get_widgets()``, for the first document that fails, unless
            ``return_exceptions``.
        """
        ids = list(document_ids)
        started: Dict[int, _Job] = {}
        next_to_start = 0
        try:
            for index in range(len(ids)):
                window_end = min(len(ids), index + self.max_documents_in_flight)
                while next_to_start < window_end:
                    started[next_to_start] = self._start(ids[next_to_start], timeout)
                    next_to_start += 1
                job = started.pop(index)
                try:
                    yield job.wait()
                except InspectorError as error:
                    if not return_exceptions:
                        raise
                    yield error
        finally:
            for job in started.values():  # the caller stopped early: abandon the rest
                job.fail(ClientClosed("inspect_many() was stopped before this document"))

    def list_documents(self, *, timeout: Any = ...) -> List[str]:
        """Return the ids of every document the caller may read (``ListDocuments``).

        Raises:
            ServerError: the server does not offer ``ListDocuments`` (400) or failed.
            ProtocolError: the reply is not ``{"documentIds": [str, ...]}``.
        """
        self._check_open()
        limit = self.timeout if timeout is ... else timeout
        result = self._connection.call(_LIST_DOCUMENTS, {}, timeout=limit)
        ids = result.get("documentIds") if isinstance(result, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProtocolError(
                f"{_LIST_DOCUMENTS}: field 'documentIds': expected a list of strings"
            )
        return ids

    def close(self) -> None:
        """Close the connection and the thread pool; idempotent.

        Inspections still running fail with ClientClosed.
        """
        if self._closed:
            return
        self._closed = True
        self._connection.close()
        on_worker = threading.current_thread().name.startswith("inspector-worker")
        self._executor.shutdown(wait=not on_worker)

    # -- the inspection --

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("Cannot use a closed DocumentInspector")

    def _start(self, document_id: str, timeout: Any) -> _Job:
        self._check_open()
        if not isinstance(document_id, str) or not document_id:
            raise InspectorError(f"a document id must be a non-empty string, not {document_id!r}")
        job = _Job(document_id, self.timeout if timeout is ... else timeout)
        job.outstanding = 1
        self._send([(job, _GET_DOCUMENT, document_id)])
        return job

    def _send(self, calls: Sequence[_Call]) -> None:
        """Send requests for jobs in one write; their replies come back through ``_arrive``.

        Each call must already be counted in its job's ``outstanding``: a reply may arrive
        before this returns.
        """
        try:
            futures = self._connection.request_many(
                [(method, {"id": object_id}) for _, method, object_id in calls]
            )
        except InspectorError as error:
            for job, _, _ in calls:
                job.fail(error)
            return
        for call, future in zip(calls, futures):
            future.add_done_callback(functools.partial(self._arrive, call))

    def _arrive(self, call: _Call, future: Future[Any]) -> None:
        # On the I/O thread: queue the reply, and make sure a drain will run. Nothing more.
        self._arrived.append((call, future))
        if not self._drain_scheduled:
            with self._drain_lock:
                if self._drain_scheduled:
                    return
                self._drain_scheduled = True
            try:
                self._executor.submit(self._drain)
            except RuntimeError:  # the pool is shut down: close() is failing every job anyway
                with self._drain_lock:
                    self._drain_scheduled = False

    def _drain(self) -> None:
        """Handle every reply queued so far, then send all their follow-ups in one write."""
        with self._drain_lock:
            self._drain_scheduled = False
        follow_ups: List[_Call] = []
        arrived = self._arrived
        while arrived:
            try:
                call, future = arrived.popleft()
            except IndexError:
                break  # another drain took it
            job = call[0]
            try:
                self._handle(call, future, follow_ups)
            except InspectorError as error:
                job.fail(error)
            except Exception:  # a bug must fail the call, not vanish in a worker
                logger.exception("handling a reply for %r failed", job.document_id)
                job.fail(InspectorError(f"internal error handling {call[1]} {call[2]!r}"))
        if follow_ups:
            self._send(follow_ups)

    def _handle(self, call: _Call, future: Future[Any], follow_ups: List[_Call]) -> None:
        job, method, object_id = call
        if job.ended:
            return  # failed or timed out already: later replies change nothing
        result = future.result()  # settled: raises the request's error, if any
        # Structure outside the job's lock, so drains on other threads overlap here.
        if method == _GET_WIDGET:
            model: Any = from_wire(
                result, Widget, method=method, container_id=job.requested_widgets.get(object_id)
            )
        elif method == _GET_CONTAINER:
            model = from_wire(result, WidgetContainer, method=method)
        else:
            model = from_wire(result, Document, method=method)
        if model.id != object_id:
            raise ProtocolError(f"{method} {object_id!r}: the reply describes {model.id!r}")
        with job.lock:
            if method == _GET_WIDGET:
                job.widgets[object_id] = model
            elif method == _GET_CONTAINER:
                job.containers[object_id] = model
                for widget_id in model.widget_ids:
                    if widget_id not in job.requested_widgets:
                        job.requested_widgets[widget_id] = object_id
                        follow_ups.append((job, _GET_WIDGET, widget_id))
                        job.outstanding += 1
            else:
                job.document = model
                for container_id in dict.fromkeys(model.widget_container_ids):
                    follow_ups.append((job, _GET_CONTAINER, container_id))
                    job.outstanding += 1
            job.outstanding -= 1
            if job.outstanding == 0 and not job.ended:
                job.ended = True
                job.result.set_result(self._assemble(job))

    @staticmethod
    def _assemble(job: _Job) -> Inspection:
        document = job.document
        assert document is not None  # the last reply of a job is never its first
        containers = [job.containers[c] for c in dict.fromkeys(document.widget_container_ids)]
        widgets: List[Widget] = []
        placed = set()
        for container in containers:
            for widget_id in container.widget_ids:
                if widget_id in placed:
                    continue
                placed.add(widget_id)
                widget = job.widgets[widget_id]
                if widget.container_id != container.id:
                    # Replies came out of order: a later container asked for it first.
                    widget = attrs.evolve(widget, container_id=container.id)
                widgets.append(widget)
        return Inspection(document, tuple(containers), tuple(widgets))
