"""Notification callbacks, run on a thread of their own so that one may block or call back.

The connection's I/O thread only queues a notification here; this thread runs the callbacks,
one notification at a time, in the order they came. Once :meth:`Notifier.stop` returns, no
callback starts any more (one already running on this thread finishes on its own).

The queue is bounded, by count and by the notifications' size as sent: a server that sends
notifications faster than the subscribers take them must not make the client hold them all.
When a new one would pass either bound, the oldest waiting ones are dropped and counted
(notifications are hints, docs/protocol.md says, and the newest say the most); a warning is logged
at the first drop and at every 10,000th.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple

__all__ = ["NotificationCallback", "Notifier"]

logger = logging.getLogger("inspector")

NotificationCallback = Callable[[str, Any], None]


class Notifier:
    """Subscribers, a queue of notifications, and the thread that delivers them.

    Args:
        name: The thread's name.
        max_queued: The most notifications that wait for delivery.
        max_queued_bytes: The most bytes (their size as sent) of the notifications that wait;
            the newest is kept even when it alone is larger.
    """

    def __init__(
        self, name: str, max_queued: int = 10_000, max_queued_bytes: int = 16 * 2**20
    ) -> None:
        self._name = name
        self._max_queued = max_queued
        self._max_queued_bytes = max_queued_bytes
        # Guards the subscriber list's replacement, the thread's start and the stopped flag.
        self._lock = threading.Lock()
        self._subscribers: List[NotificationCallback] = []
        # Guards the queue and its byte count; the delivery thread waits on it.
        self._ready = threading.Condition(threading.Lock())
        self._queue: Deque[Tuple[str, Any, int]] = deque()
        self._queued_bytes = 0
        self.dropped = 0  # notifications dropped since the start, oldest first
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    @property
    def listening(self) -> bool:
        """Whether anyone subscribed (the I/O thread queues nothing otherwise)."""
        return bool(self._subscribers)

    def subscribe(self, callback: NotificationCallback) -> Callable[[], None]:
        """Add ``callback``; return the function that removes it."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def put(self, method: str, params: Any, size: int = 0) -> int:
        """Queue one notification for delivery (from the I/O thread).

        Args:
            method: The notification's method.
            params: Its params.
            size: Its size as sent, in bytes, counted against ``max_queued_bytes``.

        Returns:
            How many older notifications were dropped to make room for it.
        """
        if self._stopped:
            return 0
        dropped = 0
        with self._ready:
            self._queue.append((method, params, size))
            self._queued_bytes += size
            while len(self._queue) > 1 and (
                len(self._queue) > self._max_queued
                or self._queued_bytes > self._max_queued_bytes
            ):
                self._queued_bytes -= self._queue.popleft()[2]
                dropped += 1
            self._ready.notify()
        if dropped:
            before, self.dropped = self.dropped, self.dropped + dropped
            if before == 0 or before // 10_000 != self.dropped // 10_000:
                logger.warning(
                    "subscribers cannot keep up: %d notifications dropped so far, oldest first",
                    self.dropped,
                )
        return dropped

    @property
    def queued(self) -> int:
        """The number of notifications waiting for delivery."""
        return len(self._queue)

    def stop(self, timeout: Optional[float]) -> None:
        """Start no more callbacks; wait up to ``timeout`` for a running one to return."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        with self._ready:
            self._queue.clear()  # nobody will take them now: let them go
            self._queued_bytes = 0
            self._ready.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopped:
                    self._ready.wait()
                if self._stopped:
                    return
                method, params, size = self._queue.popleft()
                self._queued_bytes -= size
            for callback in self._subscribers:
                if self._stopped:
                    return  # closed while this notification was being delivered
                try:
                    callback(method, params)
                except BaseException:
                    # KeyboardInterrupt or SystemExit from a subscriber too: this thread must
                    # go on delivering to the others, or notifications would pile up unseen.
                    logger.exception("notification callback %r raised; ignored", callback)
