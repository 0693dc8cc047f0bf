"""One WebSocket connection, one I/O thread, replies routed by id into Futures.

:class:`Connection` speaks the envelope of the documents API (see :mod:`inspector.protocol`) to
any server that uses it, and knows nothing of documents.

Design, and why:

* :mod:`inspector.handshake` opens the connection (TCP, TLS and the HTTP upgrade, within one
  deadline). After the handshake a single daemon thread, the *I/O thread*
  (:mod:`inspector.io_loop`), owns the socket: it alone reads and writes it. With ``wss://``,
  websocket-client would let a caller thread write while the reader reads the same SSL object,
  which OpenSSL does not support; one owner makes that impossible rather than unlikely.
* Callers never touch the socket. ``request()`` encodes the frame in the caller's thread,
  registers a Future under the request id, appends the frame to a queue and wakes the I/O thread
  through a socketpair. The I/O thread writes whatever is queued in one ``send``, so requests
  that go out together share a write. The socket has TCP_NODELAY: writes are batched already,
  and Nagle's algorithm would hold each later batch until the previous one is acknowledged
  (measured: 30% slower inspections of small documents at 2 ms latency).
* The I/O thread waits in ``select`` on the socket and the wake-up pair, so nothing ever blocks
  in ``recv()``: ``close()`` needs no ``shutdown()`` to wake it (websocket-client's own close
  from another thread hangs while its reader sits in ``recv()``; shutting the socket down is
  what wakes that on Linux, and is what ``close()`` still does if the thread does not finish in
  time).
* The I/O thread routes and does nothing else: parse, look the id up, resolve the Future. Work
  that follows a reply belongs to whoever waits on the Future.
* Each request carries a deadline, watched by the I/O thread (:mod:`inspector.pending`), so a
  request nobody waits on still fails on time and its entry is removed.
* When the connection ends for any reason, every waiting request fails at once with the same
  kind of error, chained from the cause, and every later request fails at once.

This module is the callers' side: ``_Session`` registers requests in the pending table
(:mod:`inspector.pending`), holds the slot limit, routes each text message the I/O thread hands
it to its Future, and fans a failure out to every waiter. The public :class:`Connection` is a
thin handle over ``_Session``; the I/O thread refers only to the session, so a Connection that is
dropped without ``close()`` is garbage collected and its finalizer closes the session (and
``atexit`` does the same for one still alive at exit).
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import socket
import ssl
import threading
import time
import weakref
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import (
    Any,
    Callable,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import attrs

from inspector import protocol
from inspector.display import printable
from inspector.exceptions import (
    ClientClosed,
    ConnectionLost,
    InspectorError,
    InvalidArgument,
    ProtocolError,
    RequestTimeout,
    ServerError,
    copy_error,
)
from inspector.futures import LightFuture
from inspector.handshake import handshake_headers, open_socket
from inspector.io_loop import IOLoop
from inspector.notifier import NotificationCallback, Notifier
from inspector.options import check_count, check_seconds
from inspector.pending import PendingRequests
from inspector.redaction import redact_url

__all__ = ["Connection", "ConnectionStats"]

logger = logging.getLogger("inspector")

Params = Optional[Mapping[str, Any]]

_DEFAULT = object()  # "use the connection's request_timeout", as opposed to None (no limit)
_FLUSH_EVERY = 64  # frames a large batch hands to the I/O thread at a time
# How long close() and the finalizer wait for the server's answer to the close frame while the
# interpreter is exiting, whatever close_timeout says: a silent server must not hold the exit.
EXIT_GRACE = 0.5
# Notifications that may wait for slow subscribers; beyond, the oldest are dropped.
MAX_QUEUED_NOTIFICATIONS = 10_000


@attrs.define
class ConnectionStats:
    """Counters a Connection keeps, for tests and monitoring (read without locking).

    Attributes:
        requests: Requests sent.
        replies: Replies (results and errors) matched to a waiting request.
        notifications: Notifications received.
        junk: Messages ignored because they were not valid envelope JSON, or binary.
        unmatched: Replies to ids nobody waits for: unknown, duplicate, or after a timeout.
        timeouts: Requests that failed with RequestTimeout.
        bad_replies: Replies to a waiting request that were junk (no result nor error, an
            error without an integer code, a number beyond a float, ...): each failed its
            request at once with ProtocolError.
        notifications_dropped: Notifications dropped, oldest first, because subscribers
            could not keep up (see ``Connection.subscribe``).
    """

    requests: int = 0
    replies: int = 0
    notifications: int = 0
    junk: int = 0
    unmatched: int = 0
    timeouts: int = 0
    bad_replies: int = 0
    notifications_dropped: int = 0


class _State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class _Request(LightFuture):
    """The Future of one request, carrying what the connection needs to know about it.

    Kept on the Future rather than in an object beside it, and the Future a light one: with
    tens of thousands of requests in flight, every object per request is more work for the
    cyclic garbage collector, which measured a quarter of a large inspection's time.
    """

    def __init__(
        self,
        request_id: int,
        method: str,
        params: Params,
        sent_at: float,
        timeout: Optional[float],
        callback: Optional[Callable[[Future[Any]], object]],
    ) -> None:
        super().__init__(callback)
        self.request_id = request_id
        self.method = method
        self.params = params
        self.sent_at = sent_at
        self.timeout = timeout
        self.deadline = None if timeout is None else sent_at + timeout


def _describe_target(method: str, params: Params) -> str:
    target = params.get("id") if isinstance(params, Mapping) else None
    shown = printable(method)
    return f"{shown} {printable(target, quote=True)}" if isinstance(target, str) else shown


def _interpreter_exiting() -> bool:
    # Once the interpreter starts to exit (atexit handlers, weakref finalizers at exit), the
    # threading module marks the main thread stopped: a public, ordering-free signal.
    return not threading.main_thread().is_alive()


# --- the session: socket, I/O thread, pending requests -------------------------------------


class _Session:
    """The machinery behind a Connection; the I/O thread holds this, never the Connection."""

    def __init__(
        self,
        url: str,
        sock: Union[socket.socket, ssl.SSLSocket],
        *,
        request_timeout: Optional[float],
        close_timeout: Optional[float],
        max_in_flight: Optional[int],
        max_message_size: Optional[int],
        ping_interval: Optional[float],
        ping_timeout: Optional[float],
    ) -> None:
        self.url = url
        self.request_timeout = request_timeout
        self.close_timeout = close_timeout
        self.max_in_flight = max_in_flight
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.stats = ConnectionStats()
        self.pid = os.getpid()

        self._ids = itertools.count(1)
        # The lock guards the pending map's membership against the failure swap, the state,
        # and the wait for a free slot; replies pop entries without it (dict.pop is atomic).
        self._lock = threading.Condition(threading.Lock())
        self._pending: PendingRequests[_Request] = PendingRequests()
        self._slot_waiters = 0
        self._state = _State.OPEN
        self._failure: Optional[InspectorError] = None
        self._notifier = Notifier(
            f"inspector-notify {redact_url(url)}",
            max_queued=MAX_QUEUED_NOTIFICATIONS,
            max_queued_bytes=max_message_size or 16 * 2**20,
        )
        self._io = IOLoop(  # last: it starts the thread, which routes to this session
            url, sock, self, max_message_size=max_message_size,
            ping_interval=ping_interval, ping_timeout=ping_timeout,
            close_timeout=close_timeout, stats=self.stats,
        )

    # -- called from any thread --

    @property
    def in_io_thread(self) -> bool:
        return self._io.in_thread

    def check_usable(self) -> None:
        if os.getpid() != self.pid:
            # The I/O thread did not survive the fork; the socket is the parent's to use.
            raise ConnectionLost("this connection belongs to the parent process (os.fork)")
        failure = self._failure
        if failure is not None:
            raise copy_error(failure)

    def request_many(
        self,
        calls: Iterable[Tuple[str, Params]],
        timeout: Optional[float],
        callbacks: Optional[Sequence[Callable[[Future[Any]], object]]] = None,
    ) -> List[Future[Any]]:
        now = time.monotonic()
        futures: List[Future[Any]] = []
        frames: List[bytes] = []
        request_ids: List[Optional[int]] = []

        def flush() -> None:
            # Frames already registered must go out before this thread waits for a slot:
            # their replies are what free one.
            nonlocal frames, request_ids
            if frames:
                self._io.send(frames, request_ids)  # the lists are the I/O thread's now
                frames, request_ids = [], []

        calls = list(calls)
        keys = protocol.mask_keys(len(calls))
        try:
            for index, (method, params) in enumerate(calls):
                request_id = next(self._ids)
                # The callback is attached before the request can be answered, so it never
                # runs in this thread nor contends with the I/O thread for the future's lock.
                future = _Request(request_id, method, params, now, timeout,
                                  None if callbacks is None else callbacks[index])
                refused_by_connection = False
                try:
                    try:
                        text = protocol.encode_request(request_id, method, params)
                    except (TypeError, ValueError) as exc:
                        raise InvalidArgument(
                            f"{_describe_target(method, params)}: params are not JSON: {exc}"
                        ) from exc
                    refused_by_connection = True
                    self._add_pending(request_id, future, flush)
                except InspectorError as error:
                    if index == 0:
                        raise  # nothing was sent: the caller learns it at once
                    # Some are on their way already, so report through the Futures: this
                    # one, and, if the connection itself refused, every one after it.
                    _settle(future, error=error)
                    futures.append(future)
                    if refused_by_connection:
                        for rest in range(index + 1, len(calls)):
                            failed: Future[Any] = Future()
                            if callbacks is not None:
                                failed.add_done_callback(callbacks[rest])
                            _settle(failed, error=copy_error(error))
                            futures.append(failed)
                        break
                    continue
                futures.append(future)
                frames.append(protocol.encode_frame(text, key=keys[index]))
                request_ids.append(request_id)
                if len(frames) == _FLUSH_EVERY:
                    flush()  # let the server start on these while the rest are encoded
        finally:
            # Whatever was registered is sent, even if a later call in the batch failed, so
            # no entry is left to time out for nothing.
            flush()
        return futures

    def _add_pending(
        self, request_id: int, entry: _Request, before_waiting: Callable[[], None]
    ) -> None:
        limit = self.max_in_flight
        with self._lock:
            while limit is not None and len(self._pending) >= limit and self._failure is None:
                if self.in_io_thread:
                    # Waiting here would stop the very thread whose replies free a slot.
                    raise InspectorError(
                        f"{limit} requests already in flight; a request from the I/O thread "
                        "(a Future callback) cannot wait for a free slot"
                    )
                left = None if entry.deadline is None else entry.deadline - time.monotonic()
                if left is not None and left <= 0:
                    self.stats.timeouts += 1
                    raise RequestTimeout(
                        f"{_describe_target(entry.method, entry.params)}: no free slot among "
                        f"max_in_flight={limit} within {entry.timeout}s"
                    )
                before_waiting()
                self._slot_waiters += 1
                try:
                    self._lock.wait(left)
                finally:
                    self._slot_waiters -= 1
            if self._failure is not None:
                raise copy_error(self._failure)
            self._pending.add(request_id, entry)

    def forget(self, future: Future[Any], error: InspectorError) -> None:
        """Remove the entry of ``future`` (timed out or abandoned) and fail it with ``error``."""
        request_id = getattr(future, "request_id", None)
        if request_id is not None and self._pending.pop(request_id) is not None:
            self._free_slot()
            _settle(future, error=error)

    def subscribe(self, callback: NotificationCallback) -> Callable[[], None]:
        return self._notifier.subscribe(callback)

    def close(self, wait: bool = True) -> None:
        """Close; with ``wait``, for up to ``close_timeout`` while the server answers.

        Without ``wait`` (a Connection dropped without close()) the close frame is queued and
        the I/O thread finishes the closing handshake on its own. While the interpreter exits,
        either waits :data:`EXIT_GRACE` at most.
        """
        if os.getpid() != self.pid:
            return  # the parent's socket: sending a close frame from here would break it
        with self._lock:
            if self._state is not _State.OPEN:
                closing_thread_running = self._io.alive
            else:
                closing_thread_running = True
                self._state = _State.CLOSING
                self._set_failure(ClientClosed("the connection was closed by the client"))
        if closing_thread_running:
            self._io.send_close()
        # The I/O thread stops waiting for the answer at close_timeout; the join allows it a
        # moment more to finish, except at exit, where the grace is all there is.
        limit, slack = self.close_timeout, 0.5
        if _interpreter_exiting():
            limit, slack = EXIT_GRACE, 0.0
        elif not wait:
            self._notifier.stop(0)
            return
        self._io.join(None if limit is None else limit + slack)
        self._notifier.stop(limit)

    # -- failure: every waiting request fails at once --

    def _set_failure(self, failure: InspectorError) -> None:
        """Record why the connection ended and fail everything waiting. Holds the lock."""
        if self._failure is not None:
            return
        self._failure = failure
        pending = self._pending.take_all()
        self._lock.notify_all()
        for entry in pending:
            _settle(entry, error=copy_error(failure))

    def _fail(self, failure: InspectorError) -> None:
        with self._lock:
            self._set_failure(failure)
            self._state = _State.CLOSED

    def _free_slot(self) -> None:
        """Wake the requests waiting for a slot, after entries left the pending map."""
        if self.max_in_flight is None:
            return  # nobody ever waits
        # Read the waiter count under the lock: a waiter counts itself and starts waiting
        # atomically, so a slot freed in between cannot go unnoticed. All of them wake, as a
        # batch of replies may have freed several slots.
        with self._lock:
            if self._slot_waiters:
                self._lock.notify_all()

    # -- the router: what the I/O thread calls --

    def watch(self, request_id: int) -> None:
        self._pending.watch(request_id)

    def next_deadline(self) -> Optional[float]:
        return self._pending.next_deadline()

    def expire(self, now: float) -> None:
        self._expire(self._pending.pop_expired(now))

    def routed(self) -> None:
        self._free_slot()

    def closing(self) -> bool:
        return self._state is not _State.OPEN

    def ended(self, failure: InspectorError) -> None:
        self._fail(failure)

    def route(self, text: str) -> int:
        """Route one text message; return 1 if it settled a pending request, else 0."""
        try:
            message = protocol.parse_message(text)
        except protocol.BadReply as bad:
            return self._fail_request(bad)
        except ProtocolError as exc:
            self.stats.junk += 1
            logger.warning("ignored a message of %d characters: %s", len(text), exc)
            return 0
        if isinstance(message, protocol.Notification):
            self.stats.notifications += 1
            if self._notifier.listening:
                self.stats.notifications_dropped += self._notifier.put(
                    message.method, message.params, len(text)
                )
            return 0
        entry = self._pending.pop(message.id)
        if entry is None:
            self.stats.unmatched += 1
            logger.info("ignored a reply to id %d: unknown, repeated, or after its timeout",
                        message.id)
            return 0
        self.stats.replies += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "reply %d %s in %.1f ms", message.id, entry.method,
                (time.monotonic() - entry.sent_at) * 1000,
            )
        if isinstance(message, protocol.Reply):
            _settle(entry, result=message.result)
        else:
            _settle(entry, error=ServerError(
                message.code, message.message, message.data, entry.method, entry.params
            ))
        return 1

    def _fail_request(self, bad: protocol.BadReply) -> int:
        """Fail at once the request a junk reply answers; return 1 if one was waiting."""
        entry = self._pending.pop(bad.request_id)
        if entry is None:
            self.stats.unmatched += 1
            logger.info("ignored a malformed reply to id %d, which nobody waits for",
                        bad.request_id)
            return 0
        self.stats.bad_replies += 1
        error = ProtocolError(
            f"{_describe_target(entry.method, entry.params)}: the server's reply is malformed: "
            f"{bad.reason}"
        )
        error.__cause__ = bad
        _settle(entry, error=error)
        return 1

    def _expire(self, expired: List[_Request]) -> None:
        if not expired:
            return
        self.stats.timeouts += len(expired)
        self._free_slot()
        for request in expired:
            _settle(request, error=RequestTimeout(
                f"{_describe_target(request.method, request.params)}: no reply within "
                f"{request.timeout}s"
            ))


def _settle(future: Future[Any], result: Any = None, error: Optional[BaseException] = None) -> None:
    # A future is settled by exactly one of reply, timeout, loss or forget (the pop from the
    # pending map decides which), unless its owner cancelled it: then there is nothing to do.
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


# --- the public handle --------------------------------------------------------------------


class Connection:
    """A connection to a documents server: requests out, replies routed back by id.

    Knows the envelope of the documents API and nothing of documents. Thread-safe: any number
    of threads may call ``request()`` and ``call()`` at once.

    Args:
        url: ``ws://`` or ``wss://`` endpoint.
        token: Sent as ``Authorization: Bearer <token>``; never logged, never in a repr.
        headers: Extra handshake headers.
        request_timeout: Default seconds for one request's reply; None: no limit.
        connect_timeout: Seconds for TCP, TLS and the handshake together; None: no limit.
        close_timeout: Seconds ``close()`` waits for the server to answer its close frame;
            None: no limit. While the interpreter exits, :data:`EXIT_GRACE` (half a second)
            at most, whatever this says.
        max_in_flight: Requests awaiting a reply at once; more wait for a slot. None: no limit.
        ssl_context: For ``wss://``; the default verifies certificates.
        max_message_size: A larger incoming message closes the connection (code 1009) and
            fails waiting requests with ProtocolError; a fragmented message counts 16 bytes
            per fragment besides its payload. None: no limit. It also bounds the
            notifications waiting for subscribers (see :meth:`subscribe`).
        ping_interval: Seconds between keepalive pings; None: no pings.
        ping_timeout: Seconds to wait for the pong before the connection counts as lost; also
            how long the server may read nothing of what is waiting to be sent. None: no
            limit.

    Every number is checked here: a duration must be a positive int or float (``inf``, or
    anything over 30 years, means no limit, as None does), a count a whole number of at least
    one; anything else raises InvalidArgument naming it.

    Raises:
        ConnectionFailed: the connection could not be opened.
        InvalidArgument: an argument cannot be used; nothing was opened.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        request_timeout: Optional[float] = 10.0,
        connect_timeout: Optional[float] = 10.0,
        *,
        close_timeout: Optional[float] = 5.0,
        max_in_flight: Optional[int] = 256,
        ssl_context: Optional[ssl.SSLContext] = None,
        max_message_size: Optional[int] = 16 * 2**20,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
    ) -> None:
        request_timeout = check_seconds("request_timeout", request_timeout)
        connect_timeout = check_seconds("connect_timeout", connect_timeout)
        close_timeout = check_seconds("close_timeout", close_timeout)
        max_in_flight = check_count("max_in_flight", max_in_flight, minimum=1, allow_none=True)
        max_message_size = check_count(
            "max_message_size", max_message_size, minimum=1, allow_none=True
        )
        ping_interval = check_seconds("ping_interval", ping_interval)
        ping_timeout = check_seconds("ping_timeout", ping_timeout)
        header_lines = handshake_headers(token, headers)
        deadline = None if connect_timeout is None else time.monotonic() + connect_timeout
        sock = open_socket(url, header_lines, ssl_context, deadline)
        self._session = _Session(
            url,
            sock,
            request_timeout=request_timeout,
            close_timeout=close_timeout,
            max_in_flight=max_in_flight,
            max_message_size=max_message_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        # A Connection dropped without close() starts closing without waiting for the server;
        # one still alive at exit is closed by this too, within EXIT_GRACE.
        self._finalizer = weakref.finalize(self, self._session.close, wait=False)
        logger.debug("connected to %s", redact_url(url))

    def __repr__(self) -> str:
        session = self._session
        state = "closed" if session._failure is not None else "open"
        return f"<Connection {redact_url(session.url)} {state}, {len(session._pending)} pending>"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The URL this connection was opened with (it may hold a query: do not log it)."""
        return self._session.url

    @property
    def stats(self) -> ConnectionStats:
        """Counters: requests, replies, notifications, junk, unmatched replies, timeouts."""
        return self._session.stats

    @property
    def pending(self) -> int:
        """The number of requests awaiting a reply."""
        return len(self._session._pending)

    @property
    def max_in_flight(self) -> Optional[int]:
        """Requests that may await a reply at once; more wait for a slot. None: no limit."""
        return self._session.max_in_flight

    @property
    def is_open(self) -> bool:
        """Whether requests can still be sent (not closed, not lost)."""
        return self._session._failure is None and os.getpid() == self._session.pid

    def request(
        self, method: str, params: Params = None, *, timeout: Any = _DEFAULT
    ) -> Future[Any]:
        """Send one request; return a Future of its result.

        The Future fails with ServerError (an error reply), RequestTimeout (no reply within
        ``timeout``), ConnectionLost, ProtocolError or ClientClosed. Cancelling it only stops
        the waiting: the request stays in flight, holding its slot, until its reply or timeout.

        Args:
            method: The method name.
            params: The params object; omitted params are sent as ``{}``.
            timeout: Seconds for the reply, counted from now and including any wait for a
                free slot; default the connection's ``request_timeout``; None: no limit.

        Raises:
            ConnectionLost, ClientClosed, ProtocolError: the connection is not usable.
            RequestTimeout: no slot among ``max_in_flight`` came free within ``timeout``.
        """
        return self.request_many([(method, params)], timeout=timeout)[0]

    def request_many(
        self,
        calls: Sequence[Tuple[str, Params]],
        *,
        timeout: Any = _DEFAULT,
        callbacks: Optional[Sequence[Callable[[Future[Any]], object]]] = None,
    ) -> List[Future[Any]]:
        """Send several requests in one write; return their Futures in the same order.

        Args:
            calls: ``(method, params)`` pairs.
            timeout: As for ``request()``, for each of them.
            callbacks: One done-callback per call, attached to its Future before the request
                goes out. It runs on the I/O thread, so it must be quick and must not wait.

        Raises:
            As ``request()``, when the first call cannot be sent; then none was. A later call
            that cannot be sent (params that are not JSON, the connection lost meanwhile, no
            free slot in time) has its Future failed with the reason instead, so that every
            call has exactly one outcome.
        """
        session = self._session
        session.check_usable()
        timeout = (
            session.request_timeout if timeout is _DEFAULT else check_seconds("timeout", timeout)
        )
        if callbacks is not None and len(callbacks) != len(calls):
            raise InvalidArgument("request_many() needs one callback per call")
        return session.request_many(calls, timeout, callbacks)

    def call(self, method: str, params: Params = None, *, timeout: Any = _DEFAULT) -> Any:
        """Send one request and wait for its result: ``request()`` plus waiting.

        Args:
            method: The method name.
            params: The params object; may be omitted.
            timeout: Seconds for the reply; default ``request_timeout``; None: no limit.

        Returns:
            The reply's ``result``.

        Raises:
            ServerError: the server answered with an error.
            RequestTimeout: no reply in time (also a builtin TimeoutError).
            ConnectionLost, ProtocolError, ClientClosed: the connection ended.
            InspectorError: called from a Future callback on the I/O thread, where waiting
                would block the thread that delivers the reply.
        """
        session = self._session
        if session.in_io_thread:
            raise InspectorError(
                "call() from a Future callback would block the I/O thread that delivers its "
                "reply; use request() and add a callback instead"
            )
        timeout = (
            session.request_timeout if timeout is _DEFAULT else check_seconds("timeout", timeout)
        )
        future = self.request(method, params, timeout=timeout)
        # The I/O thread fails the future at its deadline; the extra margin only guards
        # against that thread being unable to run at all.
        guard = None if timeout is None else timeout + (session.close_timeout or 5.0)
        try:
            return future.result(guard)
        except FutureTimeout:
            error = RequestTimeout(f"{_describe_target(method, params)}: no reply within "
                                   f"{timeout}s")
            session.forget(future, error)
            raise error from None
        except KeyboardInterrupt:
            # Ctrl-C: the request is abandoned, its slot freed, a late reply ignored.
            session.forget(future, ClientClosed("the waiting call was interrupted"))
            raise

    def subscribe(self, callback: NotificationCallback) -> Callable[[], None]:
        """Call ``callback(method, params)`` for every notification; return an unsubscribe.

        Callbacks run one at a time on a thread of their own, so one may block or make calls
        on this connection. One that raises is logged and the others still run.

        Subscribers that cannot keep up lose the oldest notifications: at most
        :data:`MAX_QUEUED_NOTIFICATIONS` (10,000), and at most ``max_message_size`` bytes of
        them as sent, wait for delivery; beyond that the oldest waiting are dropped, counted
        in ``stats.notifications_dropped`` and logged (notifications are hints; a client that
        keeps a copy lists everything again, as after a reconnection).
        """
        return self._session.subscribe(callback)

    def close(self) -> None:
        """Close the connection; idempotent. Waiting requests fail with ClientClosed.

        Returns within ``close_timeout`` (plus a moment) even when the server is silent, and
        within :data:`EXIT_GRACE` while the interpreter exits; the I/O thread is joined.
        """
        self._finalizer.detach()  # closed here, and waiting, as the finalizer would not
        self._session.close()
