"""Notification callbacks, run on a thread of their own so that one may block or call back.

The connection's I/O thread only queues a notification here; this thread runs the callbacks,
one notification at a time, in the order they came. Once :meth:`Notifier.stop` returns, no
callback starts any more (one already running on this thread finishes on its own).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["NotificationCallback", "Notifier"]

logger = logging.getLogger("inspector")

NotificationCallback = Callable[[str, Any], None]


class Notifier:
    """Subscribers, a queue of notifications, and the thread that delivers them.

    Args:
        name: The thread's name.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        # Guards the subscriber list's replacement, the thread's start and the stopped flag.
        self._lock = threading.Lock()
        self._subscribers: List[NotificationCallback] = []
        self._queue: queue.SimpleQueue[Optional[Tuple[str, Any]]] = queue.SimpleQueue()
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

    def put(self, method: str, params: Any) -> None:
        """Queue one notification for delivery (from the I/O thread)."""
        if not self._stopped:
            self._queue.put((method, params))

    def stop(self, timeout: Optional[float]) -> None:
        """Start no more callbacks; wait up to ``timeout`` for a running one to return."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        self._queue.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopped:
                return
            method, params = item
            for callback in self._subscribers:
                if self._stopped:
                    return  # closed while this notification was being delivered
                try:
                    callback(method, params)
                except BaseException:
                    # KeyboardInterrupt or SystemExit from a subscriber too: this thread must
                    # go on delivering to the others, or notifications would pile up unseen.
                    logger.exception("notification callback %r raised; ignored", callback)
