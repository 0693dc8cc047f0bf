"""The inspector's connection, and the one loop that reopens it after an outage.

One outage is handled once: however many documents wait, a lost connection starts a single
reopening thread that follows one backoff schedule (from the shared :class:`~inspector.retry.
Retry` policy). Nobody else sleeps or connects: the dispatcher's backlog simply waits. When a
connection is back the reopener pumps the backlog; when the schedule runs out (or a failure is
final, such as a refused token) it hands the last :class:`ConnectionFailed` to ``on_give_up``,
which fails every waiting task at once.

Subscribers to notifications are kept here, so that they survive reconnections: each new
connection gets them, and ``on_reconnect`` callbacks hear of every reopening (notifications
sent while the connection was down are lost, so a client that keeps a copy lists everything
again).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, List, Optional

from inspector.connection import Connection
from inspector.deadline import Deadline
from inspector.exceptions import ClientClosed, ConnectionFailed, RequestTimeout, copy_error
from inspector.notifier import NotificationCallback
from inspector.retry import Retry

__all__ = ["Reopener"]

logger = logging.getLogger("inspector")

OpenConnection = Callable[..., Connection]
"""Opens one connection; takes the keyword connect_timeout (seconds, None: no limit)."""


class Reopener:
    """Owns the current connection; reopens it, once per outage, in a thread of its own.

    Args:
        open_connection: Opens one connection (one attempt).
        retry: Gives the schedule of attempts in one outage.
        connect_timeout: Seconds per attempt; None: no limit.
        describe: The endpoint, redacted, for log lines and messages.
        on_open: Called (on the reopening thread) when a connection is back.
        on_give_up: Called with the last failure when an outage ends without a connection.
        on_opened: Called with each connection opened, the first included (for counting).
    """

    def __init__(
        self,
        open_connection: OpenConnection,
        *,
        retry: Retry,
        connect_timeout: Optional[float],
        describe: str,
        on_open: Callable[[], None],
        on_give_up: Callable[[ConnectionFailed], None],
        on_opened: Callable[[], None],
    ) -> None:
        self._open_connection = open_connection
        self._retry = retry
        self._connect_timeout = connect_timeout
        self._describe = describe
        self._on_open = on_open
        self._on_give_up = on_give_up
        self._on_opened = on_opened
        # Guards the current connection, the outage thread and the closed flag; waiters for
        # the end of an outage wait on it. Never held while connecting or calling back.
        self._condition = threading.Condition(threading.Lock())
        self._connection: Optional[Connection] = None
        self._outage: Optional[threading.Thread] = None
        self._last_failure: Optional[ConnectionFailed] = None
        self._closed = False
        self._stop = threading.Event()  # cuts an outage's backoff short on close()
        self._subscribers: List[NotificationCallback] = []
        self._reconnect_callbacks: List[Callable[[], None]] = []
        self._relayed: Optional[Connection] = None  # the connection the relay listens to

    def open_first(self, deadline: Deadline) -> None:
        """Open the first connection in the caller's thread, on the same schedule.

        Raises:
            ConnectionFailed: every attempt failed, a failure was final, or the deadline
                passed.
        """
        connection = self._attempts(deadline)
        if connection is None:
            assert self._last_failure is not None
            raise self._last_failure
        self._install(connection)

    # -- the connection, for the dispatcher and for low-level calls --

    def current_or_reopen(self) -> Optional[Connection]:
        """The open connection; or None, with an outage thread started if none is running."""
        connection = self._connection
        if connection is not None and connection.is_open:
            return connection
        with self._condition:
            connection = self._connection
            if connection is not None and connection.is_open:
                return connection  # reopened meanwhile
            if self._outage is None and not self._closed:
                self._outage = threading.Thread(target=self._run_outage, args=(connection,),
                                                name="inspector-reopen", daemon=True)
                self._outage.start()
            return None

    def wait_open(self, deadline: Deadline) -> Connection:
        """The open connection, waiting for an outage to end if there is one.

        Raises:
            ConnectionFailed: the outage ended without a connection.
            ClientClosed: closed meanwhile.
            RequestTimeout: the deadline passed first.
        """
        connection = self.current_or_reopen()
        if connection is not None:
            return connection
        with self._condition:
            while self._outage is not None and not self._closed:
                if not self._condition.wait(deadline.timeout()):
                    raise RequestTimeout(f"could not reopen {self._describe} in time")
            if self._closed:
                raise ClientClosed("Cannot use a closed DocumentInspector")
            connection = self._connection
            if connection is not None and connection.is_open:
                return connection
            failure = self._last_failure
        assert failure is not None  # an outage that ends without a connection records why
        raise copy_error(failure)

    # -- notifications --

    def subscribe(
        self, callback: NotificationCallback, on_reconnect: Optional[Callable[[], None]]
    ) -> Callable[[], None]:
        """Deliver every notification to ``callback``, across reconnections."""
        with self._condition:
            self._subscribers = [*self._subscribers, callback]
            if on_reconnect is not None:
                self._reconnect_callbacks = [*self._reconnect_callbacks, on_reconnect]
            connection = self._connection
        if connection is not None:
            self._relay_from(connection)

        def unsubscribe() -> None:
            with self._condition:
                self._subscribers = [s for s in self._subscribers if s is not callback]
                self._reconnect_callbacks = [
                    r for r in self._reconnect_callbacks if r is not on_reconnect
                ]

        return unsubscribe

    def _relay(self, method: str, params: Any) -> None:
        # On the connection's notifier thread: each subscriber in turn. The notifier logs a
        # subscriber that raises and goes on with the next notification.
        for callback in self._subscribers:
            callback(method, params)

    # -- closing --

    def close(self) -> None:
        """Close the connection and end any outage; idempotent and bounded."""
        with self._condition:
            if self._closed:
                return
            self._closed = True
            connection, self._connection = self._connection, None
            outage = self._outage
            self._condition.notify_all()
        self._stop.set()
        if connection is not None:
            connection.close()
        if outage is not None and outage is not threading.current_thread():
            # An attempt under way ends within connect_timeout and then closes what it
            # opened; close() does not wait for all of it.
            outage.join(_OUTAGE_JOIN)

    # -- the outage thread --

    def _run_outage(self, lost: Optional[Connection]) -> None:
        if lost is not None:
            lost.close()  # lost already: this only joins its I/O thread
        logger.info("connection to %s lost; reopening", self._describe)
        connection = self._attempts(Deadline(None))
        with self._condition:
            self._outage = None
            closed = self._closed
            if connection is not None and not closed:
                self._connection = connection
                self._last_failure = None
            self._condition.notify_all()
        if closed:
            if connection is not None:
                connection.close()
            return
        if connection is None:
            failure = self._last_failure
            assert failure is not None
            logger.warning("could not reopen %s: %s", self._describe, failure)
            self._on_give_up(failure)
            return
        self._relay_from(connection)
        logger.info("reopened the connection to %s", self._describe)
        for callback in self._reconnect_callbacks:
            try:
                callback()
            except Exception:
                logger.exception("on_reconnect callback %r raised; ignored", callback)
        self._on_open()

    def _attempts(self, deadline: Deadline) -> Optional[Connection]:
        """Try to open a connection on the retry schedule; None when all failed."""
        for attempt, delay in enumerate(self._retry.reconnect_delays(), start=1):
            if delay:
                if not deadline.allows(delay):
                    break
                logger.info("reopening %s in %.2fs (attempt %d): %s", self._describe, delay,
                            attempt, self._last_failure)
                if self._stop.wait(delay):
                    return None  # closed
            if deadline.expired:
                break
            try:
                connection = self._open_connection(
                    connect_timeout=deadline.timeout(self._connect_timeout)
                )
            except ConnectionFailed as error:
                self._last_failure = error
                if error.final:
                    break  # the same attempt would fail the same way
                continue
            self._on_opened()
            return connection
        if self._last_failure is None or deadline.expired:
            self._last_failure = ConnectionFailed(
                f"could not connect to {self._describe} in time"
            )
        return None

    def _install(self, connection: Connection) -> None:
        with self._condition:
            self._connection = connection
            self._last_failure = None
        self._relay_from(connection)

    def _relay_from(self, connection: Connection) -> None:
        """Subscribe the relay to ``connection`` once, if anyone listens."""
        with self._condition:
            if not self._subscribers or self._relayed is connection:
                return
            self._relayed = connection
        connection.subscribe(self._relay)


_OUTAGE_JOIN = 2.0  # seconds close() waits for an outage thread that is mid-attempt

