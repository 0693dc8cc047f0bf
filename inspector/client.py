"""DocumentInspector: whole documents inspected at the three-round-trip limit, behind a plain
blocking API.

This module is configuration and the public calls; the work is done by smaller pieces, each with
one job (the arrows are "uses"):

* :mod:`inspector.jobs` (pure): what one document's inspection, or the document listing, asks
  for reply by reply, and the assembly of the result in document order.
* :mod:`inspector.window` (pure): how many requests may be in flight (slow start up to
  ``max_in_flight``, halved when the server pushes back).
* :mod:`inspector.retry` (pure): whether and when a failed request, or a lost connection, is
  tried again: one policy value shared by inspections, ``list_documents()`` and reopening.
* :mod:`inspector.dispatcher` (threads): the backlog, the window, the thread that handles
  replies, delayed retries.
* :mod:`inspector.reopening` (thread): the connection, reopened once per outage.
* :mod:`inspector.connection`: one WebSocket connection, replies routed by id into Futures.

The threads of one inspector, and why each exists:

* ``inspector-io``: the connection's I/O thread, sole owner of the socket (reads, writes,
  pings, request deadlines).
* ``inspector-dispatch``: a ThreadPoolExecutor of one thread that handles replies and sends the
  follow-ups. One, because under the GIL a second only trades the interpreter with the first;
  ``max_workers`` is therefore deprecated and ignored.
* ``inspector-retry``: started on the first delayed retry (after a 503 or a 429 at a window of
  one), it sends retries when they fall due.
* ``inspector-reopen``: one per outage, for as long as the outage lasts.
* ``inspector-notify``: started by the first subscriber, it runs notification callbacks.

Staying up. Every method is read-only and safe to repeat, so a request whose reply was lost is
sent again: after the connection dropped, after ``request_timeout`` of silence, after a busy
reply (429, 503), each a bounded number of times and always inside the call's ``timeout``. A
request is sent again only once its previous attempt has failed for good (the connection never
settles a Future twice), and a job keeps one entry per object, so an inspection completes with
exactly the right widgets, none missing, none twice. One outage is handled once: a single
thread reopens the connection on one backoff schedule while every waiting document waits, and
if it gives up, every waiting document fails at once with the same :class:`ConnectionLost`,
chained from the last :class:`ConnectionFailed`.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import warnings
import weakref
from typing import (
    Any,
    Callable,
    Deque,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Union,
    overload,
)

from inspector.connection import Connection
from inspector.deadline import Deadline
from inspector.dispatcher import Dispatcher, InspectorStats, Task
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    InvalidArgument,
)
from inspector.jobs import InspectionJob, Job, ListingJob
from inspector.models import Document, Inspection, Widget
from inspector.notifier import NotificationCallback
from inspector.options import USE_DEFAULT, Default, check_count, check_seconds
from inspector.redaction import redact_url
from inspector.reopening import Reopener
from inspector.retry import Retry
from inspector.window import FlowWindow

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "DocumentInspector", "InspectorStats"]

logger = logging.getLogger("inspector")

# The ceiling of the in-flight window. The window itself starts modest and grows to it within
# a few round trips, and shrinks when the server pushes back, so the ceiling only needs to be
# high enough not to cost speed against a server that never does (measured: 256 made a
# 2,000-widget document at 20 ms latency take 1.9x its three round trips).
DEFAULT_MAX_IN_FLIGHT = 4096
DEFAULT_PAGE_SIZE = 1000  # document ids asked for per ListDocuments page

Timeout = Union[Optional[float], Default]


class DocumentInspector:
    """Inspect documents: each document, its widget containers and every widget's properties.

    One connection, shared by every call; any number of threads may use one inspector at once.
    Use it as a context manager, or call ``close()``; an inspector dropped without either is
    closed when it is garbage collected. The connection is reopened when it was lost, and a
    request whose reply was lost is sent again (see the module docstring), always within the
    call's ``timeout``.

    Args:
        url: ``ws://`` or ``wss://`` endpoint of the documents API.
        token: Sent as ``Authorization: Bearer <token>``; never logged, never in a repr.
        headers: Extra handshake headers.
        timeout: Seconds for one whole ``get_widgets()``/``inspect()`` call, retries and
            reopening included; None: no limit.
        request_timeout: Seconds for one request's reply before it is sent again.
        connect_timeout: Seconds for TCP, TLS and the handshake together, per attempt.
        max_workers: Deprecated and ignored: replies are handled by one thread (see the module
            docstring for why).
        max_in_flight: The most requests in flight at once (the ceiling of the adaptive
            window); None: no ceiling.
        ssl_context: For ``wss://``; the default verifies certificates.
        max_message_size: A larger incoming message is refused, never held in memory.
        max_documents_in_flight: Documents ``inspect_many()`` works on at once.
        retries: Times one request is sent again after its connection was lost or it went
            unanswered for ``request_timeout``.
        busy_retries: Times one request is sent again after a busy reply (429, 503).
        connect_attempts: Attempts to open the connection in one outage (and at the start)
            before giving up; a refused token (401, 403) is never tried again.
        backoff: The first retry delay in seconds; it doubles with each attempt, with jitter,
            up to ``backoff_max``.
        backoff_max: The longest retry delay.
        page_size: Document ids asked for per ``ListDocuments`` page.
        **connection_options: Passed on to :class:`~inspector.Connection` (``close_timeout``,
            ``ping_interval``, ``ping_timeout``).

    Raises:
        ConnectionFailed: the connection could not be opened.
        InvalidArgument: an argument is out of range; the message names it.
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
        max_in_flight: Optional[int] = DEFAULT_MAX_IN_FLIGHT,
        ssl_context: Any = None,
        max_message_size: Optional[int] = 16 * 2**20,
        *,
        max_documents_in_flight: int = 32,
        retries: int = 5,
        busy_retries: int = 20,
        connect_attempts: int = 5,
        backoff: float = 0.05,
        backoff_max: float = 2.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        **connection_options: Any,
    ) -> None:
        if max_workers is not None:
            warnings.warn(
                "max_workers is deprecated and ignored: replies are handled by one thread",
                DeprecationWarning, stacklevel=2,
            )
        self.url = url
        self.timeout = check_seconds("timeout", timeout)
        self.request_timeout = check_seconds("request_timeout", request_timeout)
        self.connect_timeout = check_seconds("connect_timeout", connect_timeout)
        self.max_in_flight = check_count("max_in_flight", max_in_flight, minimum=1,
                                         allow_none=True)
        self.max_documents_in_flight = _count("max_documents_in_flight",
                                              max_documents_in_flight, 1)
        self.page_size = _count("page_size", page_size, 1)
        self.retry = Retry(
            resends=_count("retries", retries, 0),
            busy=_count("busy_retries", busy_retries, 0),
            reconnects=_count("connect_attempts", connect_attempts, 1),
            backoff=_seconds("backoff", backoff),
            backoff_max=_seconds("backoff_max", backoff_max),
        )
        self._open_connection = functools.partial(
            Connection,
            url,
            token=token,
            headers=headers,
            request_timeout=self.request_timeout,
            max_in_flight=None,  # the inspector's window is the only flow control
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            **connection_options,
        )
        self._closed = False
        self._engine = _Engine.start(self)
        # Closes the machinery when the inspector is dropped without close(); it refers to the
        # engine, never to the inspector, and no thread refers to the inspector either.
        self._finalizer = weakref.finalize(self, self._engine.close)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<DocumentInspector {redact_url(self.url)} {state}>"

    def __enter__(self) -> DocumentInspector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> Any:
        raise InspectorError(
            "a DocumentInspector holds a connection and threads, so it cannot be pickled or "
            "sent to another process; on a Dask cluster, register "
            "inspector.contrib.dask.InspectorPlugin and use the inspector it opens on each "
            "worker"
        )

    @property
    def stats(self) -> InspectorStats:
        """What the inspector had to do to stay up: connections opened, requests resent."""
        return self._engine.stats

    @property
    def in_flight_window(self) -> int:
        """How many requests the inspector lets into flight now (the adaptive window)."""
        return self._engine.dispatcher.window

    @property
    def connection(self) -> Connection:
        """The current connection (reopened if it was lost), for low-level calls.

        Raises:
            ConnectionFailed: it could not be reopened.
            ClientClosed: the inspector was closed.
        """
        return self._here().reopener.wait_open(Deadline(self.timeout))

    # -- the public calls --

    def get_widgets(self, document_id: str, *, timeout: Timeout = USE_DEFAULT) -> List[Widget]:
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
            ConnectionLost: the connection was lost and could not be reopened, or kept
                failing beyond ``retries``.
            ClientClosed: the inspector was closed.
        """
        return list(self.inspect(document_id, timeout=timeout).widgets)

    def inspect(self, document_id: str, *, timeout: Timeout = USE_DEFAULT) -> Inspection:
        """Return the whole inspection of a document: the document, containers and widgets.

        Args:
            document_id: The document's id.
            timeout: Seconds for the whole call; default the inspector's ``timeout``.

        Raises:
            As ``get_widgets()``.
        """
        job = InspectionJob(_check_document_id(document_id))
        result: Inspection = self._start(job, self._call_timeout(timeout)).wait()
        return result

    @overload
    def inspect_many(
        self,
        document_ids: Iterable[str],
        *,
        timeout: Timeout = ...,
        return_exceptions: bool = ...,
        should_inspect: None = ...,
    ) -> Iterator[Union[Inspection, InspectorError]]: ...

    @overload
    def inspect_many(
        self,
        document_ids: Iterable[str],
        *,
        timeout: Timeout = ...,
        return_exceptions: bool = ...,
        should_inspect: Callable[[Document], bool],
    ) -> Iterator[Union[Inspection, Document, InspectorError]]: ...

    def inspect_many(
        self,
        document_ids: Iterable[str],
        *,
        timeout: Timeout = USE_DEFAULT,
        return_exceptions: bool = False,
        should_inspect: Optional[Callable[[Document], bool]] = None,
    ) -> Iterator[Union[Inspection, Document, InspectorError]]:
        """Yield the inspection of each document, in the order given.

        Up to ``max_documents_in_flight`` documents are worked on at once, so many small
        documents do not cost three round trips each. ``document_ids`` is read as the
        documents are started, so a generator of a million ids is never held whole.

        Args:
            document_ids: The documents' ids (an iterable of strings, not one string).
            timeout: Seconds for each document; default the inspector's ``timeout``.
            return_exceptions: Yield a document's error in its place instead of raising it
                (then the other documents still come).
            should_inspect: Called with each document when its ``GetDocument`` reply is in
                (on the inspector's thread: keep it quick); when it returns False, that
                :class:`Document` is yielded in its place and nothing more is fetched for it.

        Raises:
            InvalidArgument: ``document_ids`` is a string, or holds an id that is not a
                non-empty string (in its place, with ``return_exceptions``).
            As ``get_widgets()``, for the first document that fails, unless
            ``return_exceptions``.
        """
        if isinstance(document_ids, (str, bytes)):
            raise InvalidArgument(
                "document_ids must be an iterable of ids, not one string "
                f"({document_ids[:40]!r}); use [document_id]"
            )
        limit = self._call_timeout(timeout)
        self._here()  # fail now, not at the first next(), when the inspector is closed
        return self._inspect_many(iter(document_ids), limit, return_exceptions, should_inspect)

    def _inspect_many(
        self,
        ids: Iterator[str],
        timeout: Optional[float],
        return_exceptions: bool,
        should_inspect: Optional[Callable[[Document], bool]],
    ) -> Iterator[Union[Inspection, Document, InspectorError]]:
        started: Deque[Union[Task, InspectorError]] = collections.deque()
        exhausted = False
        try:
            while True:
                while not exhausted and len(started) < self.max_documents_in_flight:
                    document_id = next(ids, _END)
                    if document_id is _END:
                        exhausted = True
                        break
                    try:
                        job = InspectionJob(_check_document_id(document_id), should_inspect)
                    except InvalidArgument as error:
                        started.append(error)
                        continue
                    started.append(self._start(job, timeout))
                if not started:
                    return
                task = started.popleft()
                try:
                    if isinstance(task, InspectorError):
                        raise task
                    yield task.wait()
                except InspectorError as error:
                    if not return_exceptions:
                        raise
                    yield error
        finally:
            stopped = ClientClosed("inspect_many() was stopped before this document")
            for task in started:  # the caller stopped early: abandon the rest
                if isinstance(task, Task):
                    task.dispatcher.fail(task, stopped)

    def list_documents(self, *, timeout: Timeout = USE_DEFAULT) -> List[str]:
        """Return the ids of every document the caller may read (``ListDocuments``).

        Follows ``nextCursor`` page by page (``page_size`` ids a page) until the listing is
        complete; a server that does not page answers everything at once. Sent again, like an
        inspection's requests, after a lost connection, silence or a busy reply, within
        ``timeout``.

        Raises:
            ServerError: the server does not offer ``ListDocuments`` (400) or failed.
            ProtocolError: a reply is not ``{"documentIds": [str, ...], "nextCursor": ...}``,
                or the server repeated a cursor.
            RequestTimeout, ConnectionLost, ClientClosed: as for ``inspect()``.
        """
        ids: List[str] = self._start(
            ListingJob(self.page_size), self._call_timeout(timeout)
        ).wait()
        return ids

    def subscribe(
        self,
        callback: NotificationCallback,
        *,
        on_reconnect: Optional[Callable[[], None]] = None,
    ) -> Callable[[], None]:
        """Call ``callback(method, params)`` for every notification, across reconnections.

        Args:
            callback: Runs on the notifier thread, one notification at a time; it may block
                or call the inspector. One that raises is logged and the others still run.
            on_reconnect: Called after each reopened connection: notifications sent while
                the connection was down are lost, so a client that keeps a copy lists
                everything again. A lost connection is reopened by the next request.

        Returns:
            A function that unsubscribes.
        """
        return self._here().reopener.subscribe(callback, on_reconnect)

    def close(self) -> None:
        """Close the connection and the threads; idempotent.

        Inspections still running fail with ClientClosed.
        """
        self._closed = True
        if self._engine.pid == os.getpid():
            self._finalizer()
        # else: a forked child; the parent's connection and threads are the parent's to close

    # -- internals --

    def _here(self) -> _Engine:
        """This process's engine; a forked child builds its own on first use."""
        if self._closed:
            raise ClientClosed("Cannot use a closed DocumentInspector")
        engine = self._engine
        if engine.pid != os.getpid():
            # The parent's I/O thread, workers and socket are not ours: leave them untouched.
            self._engine = engine = _Engine.start(self)
            self._finalizer = weakref.finalize(self, engine.close)
        return engine

    def _start(self, job: Job, timeout: Optional[float]) -> Task:
        return self._here().dispatcher.submit(job, timeout)

    def _call_timeout(self, timeout: Timeout) -> Optional[float]:
        if isinstance(timeout, Default):
            return self.timeout
        return check_seconds("timeout", timeout)


_END: Any = object()  # the end of an iterator, for next()


class _Engine:
    """One process's machinery of an inspector: the reopener, the dispatcher, their stats."""

    def __init__(self, inspector: DocumentInspector) -> None:
        self.pid = os.getpid()
        self.stats = InspectorStats()
        describe = redact_url(inspector.url)
        self.reopener = Reopener(
            inspector._open_connection,
            retry=inspector.retry,
            connect_timeout=inspector.connect_timeout,
            describe=describe,
            on_open=self._pump,
            on_give_up=self._give_up,
            on_opened=self._count_open,
        )
        self.dispatcher = Dispatcher(
            self.reopener,
            retry=inspector.retry,
            window=FlowWindow(inspector.max_in_flight),
            request_timeout=inspector.request_timeout,
            stats=self.stats,
        )
        self._describe = describe

    @classmethod
    def start(cls, inspector: DocumentInspector) -> _Engine:
        """Make the engine and open its first connection (within the inspector's timeout)."""
        engine = cls(inspector)
        try:
            engine.reopener.open_first(Deadline(inspector.timeout))
        except BaseException:
            engine.close()
            raise
        return engine

    def _pump(self) -> None:
        self.dispatcher.pump()

    def _count_open(self) -> None:
        self.stats.connections_opened += 1

    def _give_up(self, failure: ConnectionFailed) -> None:
        lost = ConnectionLost(
            f"the connection to {self._describe} was lost and could not be reopened: "
            f"{failure}"
        )
        lost.__cause__ = failure
        self.dispatcher.fail_waiting(lost)

    def close(self) -> None:
        self.dispatcher.close()
        self.reopener.close()


def _check_document_id(document_id: Any) -> str:
    if not isinstance(document_id, str) or not document_id:
        raise InvalidArgument(
            f"a document id must be a non-empty string, not {_short_repr(document_id)}"
        )
    return document_id


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(name: str, value: Any, minimum: int) -> int:
    count = check_count(name, value, minimum=minimum)
    assert count is not None
    return count


def _seconds(name: str, value: Any) -> float:
    seconds = check_seconds(name, value, allow_none=False)
    assert seconds is not None
    return seconds

