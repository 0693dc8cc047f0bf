"""DocumentInspector: the whole inspection of a document at the three-round-trip limit.

An inspection is ``GetDocument``, then ``GetWidgetContainer`` for every container, then
``GetWidgetProperties`` for every widget, each follow-up sent as soon as the reply that names it
arrives. No thread ever sits blocked on a reply while work is ready: every request's Future has
a done-callback, and the follow-ups are chained on the replies.

Why replies are handled in bursts: a done-callback runs on the connection's I/O thread, which
must only route. Handing every reply to the executor as its own task costs a thread hop per
reply, and that hop, not the wire, becomes the limit (measured at 1.4-1.5x of the three round
trips). So a callback only appends the reply to one queue and, if no drain is running, submits
one to the executor; a drain takes everything queued, handles it, and sends the follow-ups it
found in one ``request_many()`` (one write), round after round until the queue is empty.
Replies that arrive together are handled together. One drain runs at a time: under the GIL a
second would only trade the interpreter back and forth with the first.

The requests in flight are bounded by the inspector's own window (``max_in_flight`` to start
with): what does not fit waits in a backlog, oldest first, and goes out from the next drain, as
replies make room. So no thread ever waits for a slot, and a request reaches the connection only
when it can be sent at once.

Results are assembled in document order whatever order the replies came in: containers in the
document's order, widgets in each container's order, each widget once, attributed to the first
container (in document order) that lists it.

Staying up. Every method is read-only and safe to repeat, so a request whose reply was lost is
simply sent again: after the connection dropped (on a connection reopened with exponential
backoff and jitter), after ``request_timeout`` of silence, and after a busy reply (429, 503),
each a bounded number of times and always inside the call's ``timeout``. A request is sent again
only once its previous attempt has failed for good (the connection never settles a Future
twice), and a job keeps one entry per object, so an inspection completes with exactly the
right widgets, none missing, none twice. Handshakes refused with 401 or 403 are never retried.
On a 429, or a connection lost with many requests in flight, the inspector also halves its
window, and lets it grow back one at a time as replies succeed (additive increase,
multiplicative decrease): a server that is busy, or a proxy that drops connections under load,
gets fewer requests at once instead of the same burst again.
"""

from __future__ import annotations

import functools
import heapq
import logging
import os
import random
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

import attrs

from inspector.connection import Connection
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    InvalidArgument,
    ProtocolError,
    RequestTimeout,
    ServerError,
)
from inspector.models import Document, Inspection, Widget, WidgetContainer
from inspector.redaction import redact_url
from inspector.serialization import from_wire

__all__ = ["DocumentInspector", "InspectorStats"]

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
        self.deadline = None if timeout is None else self.started + timeout
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


@attrs.define
class InspectorStats:
    """What a DocumentInspector had to do to stay up (read without locking).

    Attributes:
        connections_opened: Connections opened, the first included.
        resent_after_loss: Requests sent again because their connection was lost.
        resent_after_silence: Requests sent again after ``request_timeout`` without a reply.
        resent_after_busy: Requests sent again after a busy reply (429, 503).
    """

    connections_opened: int = 0
    resent_after_loss: int = 0
    resent_after_silence: int = 0
    resent_after_busy: int = 0


class _Call:
    """One request an inspection needs, and how many times it has been sent."""

    __slots__ = ("job", "method", "object_id", "attempt")

    def __init__(self, job: _Job, method: str, object_id: str) -> None:
        self.job = job
        self.method = method
        self.object_id = object_id
        self.attempt = 0


class _RetryTimer:
    """One thread that sends delayed retries when they fall due; nothing polls.

    Started on the first delayed retry, stopped by ``close()``.
    """

    def __init__(self, send: Callable[[List[_Call]], None]) -> None:
        self._send = send
        self._due: List[Tuple[float, int, List[_Call]]] = []
        self._order = 0  # breaks ties in the heap: lists of calls do not compare
        self._condition = threading.Condition(threading.Lock())
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="inspector-retry", daemon=True)
        self._thread.start()

    def schedule(self, delay: float, calls: List[_Call]) -> None:
        with self._condition:
            self._order += 1
            heapq.heappush(self._due, (time.monotonic() + delay, self._order, calls))
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped:
                    now = time.monotonic()
                    if self._due and self._due[0][0] <= now:
                        break
                    self._condition.wait(self._due[0][0] - now if self._due else None)
                if self._stopped:
                    return
                _, _, calls = heapq.heappop(self._due)
            self._send(calls)

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()


class DocumentInspector:
    """Inspect documents: each document, its widget containers and every widget's properties.

    One connection and one thread pool, shared by every call; any number of threads may use one
    inspector at once. Use it as a context manager, or call ``close()``. The connection is
    reopened when it was lost or closed by the server, and a request whose reply was lost is
    sent again (see the module docstring), always within the call's ``timeout``.

    Args:
        url: ``ws://`` or ``wss://`` endpoint of the documents API.
        token: Sent as ``Authorization: Bearer <token>``; never logged, never in a repr.
        headers: Extra handshake headers.
        timeout: Seconds for one whole ``get_widgets()``/``inspect()`` call, retries and
            reopening included; None: no limit.
        request_timeout: Seconds for one request's reply before it is sent again.
        connect_timeout: Seconds for TCP, TLS and the handshake together, per attempt.
        max_workers: Threads handling replies and sending follow-ups.
        max_in_flight: Requests awaiting a reply on the connection at once; None: no limit.
        ssl_context: For ``wss://``; the default verifies certificates.
        max_message_size: A larger incoming message is refused, never held in memory.
        max_documents_in_flight: Documents ``inspect_many()`` works on at once.
        retries: How many times one request is sent again after its connection was lost or
            it went unanswered for ``request_timeout``.
        busy_retries: How many times one request is sent again after a busy reply (429, 503).
        connect_attempts: Attempts to (re)open the connection before giving up, for refused
            or failed handshakes other than 401/403.
        backoff: The first retry delay in seconds; it doubles with each attempt, with full
            jitter, up to ``backoff_max``.
        backoff_max: The longest retry delay.
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
        retries: int = 5,
        busy_retries: int = 20,
        connect_attempts: int = 5,
        backoff: float = 0.05,
        backoff_max: float = 2.0,
        **connection_options: Any,
    ) -> None:
        if max_documents_in_flight < 1:
            raise InvalidArgument("max_documents_in_flight must be at least 1")
        if max_in_flight is not None and max_in_flight < 1:
            raise InvalidArgument("max_in_flight must be at least 1, or None")
        self.url = url
        self.timeout = timeout
        self.max_workers = max_workers
        self.max_in_flight = max_in_flight
        self.max_documents_in_flight = max_documents_in_flight
        self.retries = retries
        self.busy_retries = busy_retries
        self.connect_attempts = max(1, connect_attempts)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._open_connection = functools.partial(
            Connection,
            url,
            token=token,
            headers=headers,
            request_timeout=request_timeout,
            max_in_flight=max_in_flight,
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            **connection_options,
        )
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.stats = InspectorStats()
        self._closed = False
        self._set_up_process_state()
        start = time.monotonic()
        self._connection_lock = threading.Lock()
        self._connection: Optional[Connection] = None
        self._connect(None if timeout is None else start + timeout)

    def _set_up_process_state(self) -> None:
        """The threads, locks and queues of this process (anew in a child after os.fork)."""
        self._pid = os.getpid()
        self._executor = ThreadPoolExecutor(self.max_workers,
                                            thread_name_prefix="inspector-worker")
        # Replies waiting for the drain, and whether a drain is submitted or running.
        self._arrived: Deque[Tuple[_Call, Future[Any]]] = deque()
        self._drain_lock = threading.Lock()
        self._draining = False
        # Requests waiting for room in the in-flight window, oldest first.
        self._backlog: Deque[_Call] = deque()
        self._send_lock = threading.Lock()
        self._retry_timer: Optional[_RetryTimer] = None
        self._retry_timer_lock = threading.Lock()
        # Additive increase, multiplicative decrease of the in-flight window on 429.
        self._window: Optional[int] = self.max_in_flight
        self._throttled = False
        self._successes_since_cut = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<DocumentInspector {redact_url(self.url)} {state}>"

    def __enter__(self) -> DocumentInspector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def in_flight_window(self) -> Optional[int]:
        """How many requests the inspector keeps in flight now: ``max_in_flight``, or less
        after 429 replies or a connection lost under load (it grows back as replies succeed).
        """
        return self._window

    @property
    def connection(self) -> Connection:
        """The current connection (reopened if it was lost), for low-level calls."""
        self._check_open()
        return self._connect(None)

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
            ConnectionFailed: the connection could not be reopened.
            ConnectionLost: the connection kept failing beyond ``retries``.
            ClientClosed: the inspector was closed.
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

        Sent again, like an inspection's requests, after a lost connection, silence or a busy
        reply, within ``timeout``.

        Raises:
            ServerError: the server does not offer ``ListDocuments`` (400) or failed.
            ProtocolError: the reply is not ``{"documentIds": [str, ...]}``.
            RequestTimeout, ConnectionLost, ConnectionFailed: as for ``inspect()``.
        """
        self._check_open()
        limit = self.timeout if timeout is ... else timeout
        deadline = None if limit is None else time.monotonic() + limit
        attempt = 0
        while True:
            attempt += 1
            wait = self.request_timeout
            if deadline is not None:
                left = max(deadline - time.monotonic(), 0.0)
                wait = left if wait is None else min(wait, left)
            try:
                result = self._connect(deadline).call(_LIST_DOCUMENTS, {}, timeout=wait)
                break
            except (ConnectionLost, RequestTimeout, ServerError) as error:
                busy = isinstance(error, ServerError)
                if busy and not error.retryable:  # type: ignore[union-attr]
                    raise
                delay = self._backoff_delay(attempt - 1) if busy else 0.0
                out_of_time = deadline is not None and time.monotonic() + delay >= deadline
                if attempt > (self.busy_retries if busy else self.retries) or out_of_time:
                    raise
                time.sleep(delay)  # the caller's own thread, waiting for its own answer
        ids = result.get("documentIds") if isinstance(result, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProtocolError(
                f"{_LIST_DOCUMENTS}: field 'documentIds': expected a list of strings"
            )
        return ids

    def close(self) -> None:
        """Close the connection and the threads; idempotent.

        Inspections still running fail with ClientClosed.
        """
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return  # the parent's connection and threads are the parent's to close
        with self._connection_lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        if self._retry_timer is not None:
            self._retry_timer.stop()
        on_worker = threading.current_thread().name.startswith("inspector-worker")
        self._executor.shutdown(wait=not on_worker)

    # -- the connection, reopened when lost --

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("Cannot use a closed DocumentInspector")
        if self._pid != os.getpid():
            # A forked child: the parent's I/O thread, workers and socket are not ours. Open
            # our own on first use and leave the parent's untouched.
            self._connection = None
            self._connection_lock = threading.Lock()
            self._set_up_process_state()

    def _connect(self, deadline: Optional[float]) -> Connection:
        """Return an open connection, opening one (with backoff) if there is none.

        Raises:
            ConnectionFailed: no attempt succeeded, or the handshake was refused with 401/403
                (never retried), or ``deadline`` passed.
        """
        connection = self._connection
        if connection is not None and connection.is_open:
            return connection
        with self._connection_lock:
            connection = self._connection
            if connection is not None and connection.is_open:
                return connection  # another thread reopened it meanwhile
            if self._closed:
                raise ClientClosed("Cannot use a closed DocumentInspector")
            if connection is not None:
                connection.close()  # lost already: this only joins its I/O thread
            # The in-flight window learned on the old connection carries over: a server that
            # was busy, or dropped connections under load, is the same server.
            self._connection = self._open_with_backoff(deadline)
            return self._connection

    def _open_with_backoff(self, deadline: Optional[float]) -> Connection:
        last_error: Optional[ConnectionFailed] = None
        for attempt in range(self.connect_attempts):
            if attempt:
                delay = self._backoff_delay(attempt - 1)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    break
                logger.info("reopening %s in %.2fs (attempt %d): %s",
                            redact_url(self.url), delay, attempt + 1, last_error)
                time.sleep(delay)  # this thread has nothing to do until the server is back
            limit = self.connect_timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                limit = left if limit is None else min(limit, left)
            try:
                connection = self._open_connection(connect_timeout=limit)
                self.stats.connections_opened += 1
                return connection
            except ConnectionFailed as error:
                if error.status in (400, 401, 403, 404):
                    raise  # retrying cannot help, and would hammer the server's auth
                last_error = error
        if last_error is None:
            raise ConnectionFailed(f"could not connect to {redact_url(self.url)} in time")
        raise last_error

    def _backoff_delay(self, attempt: int) -> float:
        # Exponential backoff with full jitter: clients that failed together spread out.
        ceiling = min(self.backoff_max, self.backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    # -- the inspection --

    def _start(self, document_id: str, timeout: Any) -> _Job:
        self._check_open()
        if not isinstance(document_id, str) or not document_id:
            raise InvalidArgument(
                f"a document id must be a non-empty string, not {document_id!r}"
            )
        job = _Job(document_id, self.timeout if timeout is ... else timeout)
        job.outstanding = 1
        self._send([_Call(job, _GET_DOCUMENT, document_id)])
        return job

    def _send(self, calls: List[_Call], *, oldest: bool = False) -> None:
        """Queue requests, then send as many as the in-flight window lets through.

        Each call must already be counted in its job's ``outstanding``: a reply may arrive
        before this returns.

        Args:
            calls: The requests, in the order they should go out.
            oldest: They are older than what is queued (retries): they go first.
        """
        if oldest:
            self._backlog.extendleft(reversed(calls))
        else:
            self._backlog.extend(calls)
        self._pump()

    def _pump(self) -> None:
        """Send queued requests while the window has room, in one write per batch.

        The window is kept here rather than by blocking in ``request_many()``: no thread
        waits for a slot, and a request is handed to the connection only when it can go out
        at once, so a connection that dies takes with it only requests that were sent, and
        only those spend an attempt. Whatever cannot go now goes from the next drain, when
        replies have freed room.
        """
        backlog = self._backlog
        with self._send_lock:
            while backlog:
                connection = self._connection
                if connection is None or not connection.is_open:
                    calls = [call for call in backlog if not call.job.ended]
                    if not calls:
                        backlog.clear()  # their jobs failed or timed out meanwhile
                        return
                    # Reopening may take as long as the most patient waiting job allows.
                    deadlines = [call.job.deadline for call in calls]
                    deadline = None if None in deadlines else max(filter(None, deadlines))
                    try:
                        connection = self._connect(deadline)
                    except InspectorError as error:
                        backlog.clear()
                        self._fail_calls(calls, error)
                        return
                room = len(backlog) if self._window is None else self._window - connection.pending
                if room <= 0:
                    return  # replies will make room, and the drain that takes them pumps
                batch: List[_Call] = []
                while backlog and len(batch) < room:
                    call = backlog.popleft()
                    if not call.job.ended:
                        batch.append(call)
                if not batch:
                    continue
                requests = []
                callbacks = []
                arrive = self._arrive
                for call in batch:
                    call.attempt += 1
                    requests.append((call.method, {"id": call.object_id}))
                    callbacks.append(functools.partial(arrive, call))
                try:
                    connection.request_many(requests, callbacks=callbacks)
                except InspectorError as error:  # none of the batch went out
                    self._fail_calls(batch, error)

    def _fail_calls(self, calls: List[_Call], error: InspectorError) -> None:
        """Report ``error`` for calls that could not be sent, as a failed reply would be."""
        failed: Future[Any] = Future()
        failed.set_exception(error)
        for call in calls:
            self._arrive(call, failed)

    def _arrive(self, call: _Call, future: Future[Any]) -> None:
        # On the I/O thread: queue the reply, and make sure a drain is running. Nothing more.
        self._arrived.append((call, future))
        if self._draining:
            return  # the drain re-checks the queue under the lock before it stops
        with self._drain_lock:
            if self._draining:
                return
            self._draining = True
        try:
            self._executor.submit(self._drain)
        except RuntimeError:  # the pool is shut down: close() is failing every job anyway
            with self._drain_lock:
                self._draining = False

    def _drain(self) -> None:
        """Handle replies until none are queued, sending each round's follow-ups in one write.

        While it works, replies pile up in the queue and the next round takes them all.
        """
        arrived = self._arrived
        while True:
            follow_ups: List[_Call] = []
            retry_now: List[_Call] = []
            retry_later: Dict[float, List[_Call]] = {}
            lost = 0
            for _ in range(len(arrived)):
                call, future = arrived.popleft()
                job = call.job
                try:
                    self._handle(call, future, follow_ups)
                except InspectorError as error:
                    lost += isinstance(error, ConnectionLost)
                    delay = self._retry_delay(call, error)
                    if delay is None:
                        job.fail(error)
                    elif delay == 0:
                        retry_now.append(call)
                    else:
                        retry_later.setdefault(delay, []).append(call)
                except Exception:  # a bug must fail the call, not vanish in a worker
                    logger.exception("handling a reply for %r failed", job.document_id)
                    job.fail(InspectorError(
                        f"internal error handling {call.method} {call.object_id!r}"
                    ))
            if lost:
                # A connection that dropped with this many requests in flight may drop again
                # under the same load (a proxy's request limit, say): send fewer at a time.
                self._cut_window(lost, f"connection lost with {lost} requests in flight")
            if retry_now:
                self._backlog.extendleft(reversed(retry_now))  # older than anything queued
            if follow_ups:
                self._backlog.extend(follow_ups)
            if self._backlog:
                self._pump()  # this round's replies made room
            for delay, calls in retry_later.items():
                self._schedule(delay, calls)
            with self._drain_lock:
                if arrived:
                    continue
                self._draining = False
            # A reply queued between the check and the flag going down saw the flag still up
            # and left it to this drain: take it back rather than strand it.
            if not arrived:
                return
            with self._drain_lock:
                if self._draining:
                    return  # a new drain was submitted for it
                self._draining = True

    def _retry_delay(self, call: _Call, error: InspectorError) -> Optional[float]:
        """Seconds to wait before sending ``call`` again, or None to fail its job with ``error``."""
        job = call.job
        if job.ended or self._closed:
            return None
        if isinstance(error, ServerError):
            if not error.retryable or call.attempt > self.busy_retries:
                return None
            if error.code == 429 and self._connection is not None:
                self._cut_window(self._connection.pending + 1, "server busy (429)")
            delay = self._backoff_delay(call.attempt - 1)
            self.stats.resent_after_busy += 1
        elif isinstance(error, (ConnectionLost, RequestTimeout)) or (
            isinstance(error, ClientClosed) and not self._closed
        ):
            if call.attempt > self.retries:
                return None
            delay = 0.0  # reopening has its own backoff; silence has waited long enough
            if isinstance(error, RequestTimeout):
                self.stats.resent_after_silence += 1
            else:
                self.stats.resent_after_loss += 1
        else:
            return None  # a protocol error or a refused handshake: sending again cannot help
        if job.deadline is not None and time.monotonic() + delay >= job.deadline:
            return None
        logger.debug("sending %s %r again (attempt %d): %s",
                     call.method, call.object_id, call.attempt + 1, error)
        return delay

    def _schedule(self, delay: float, calls: List[_Call]) -> None:
        with self._retry_timer_lock:
            if self._retry_timer is None:
                self._retry_timer = _RetryTimer(functools.partial(self._send, oldest=True))
        self._retry_timer.schedule(delay, calls)

    def _cut_window(self, in_flight: int, reason: str) -> None:
        """Halve the requests kept in flight, given how many were in flight at the signal.

        At most once per round: only after a success since the last cut, so that the many
        429s of one burst, or the many requests one lost connection takes with it, count as
        one signal.
        """
        if self._throttled and not self._successes_since_cut:
            return
        current = self._window if self._window is not None else in_flight
        self._window = max(1, min(current, in_flight) // 2)
        self._throttled = True
        self._successes_since_cut = 0
        logger.info("%s: keeping at most %d requests in flight", reason, self._window)

    def _note_success(self) -> None:
        self._successes_since_cut += 1
        window = self._window or 1
        if self._successes_since_cut >= window:
            self._successes_since_cut = 0
            if self.max_in_flight is None or window < self.max_in_flight:
                self._window = window + 1
            if self._window == self.max_in_flight:
                self._throttled = False

    def _handle(self, call: _Call, future: Future[Any], follow_ups: List[_Call]) -> None:
        job, method, object_id = call.job, call.method, call.object_id
        if job.ended:
            return  # failed or timed out already: later replies change nothing
        result = future.result()  # settled: raises the request's error, if any
        if self._throttled:
            self._note_success()
        # Structure outside the job's lock.
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
                        follow_ups.append(_Call(job, _GET_WIDGET, widget_id))
                        job.outstanding += 1
            else:
                job.document = model
                for container_id in dict.fromkeys(model.widget_container_ids):
                    follow_ups.append(_Call(job, _GET_CONTAINER, container_id))
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
