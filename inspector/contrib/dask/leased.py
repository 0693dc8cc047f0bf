"""One worker's inspector, opened under a lease of the cluster-wide connection cap.

The lease is taken before the inspector connects and given back only after it has closed, so
the count of connections open to the endpoint never passes the cap. Both are kept while
batches keep coming; after ``idle_release`` seconds without a batch the inspector is closed and
the lease returned, so that a worker beyond the cap, waiting for one, gets its turn. Without a
lease (no cap) the inspector stays open until :meth:`LeasedInspector.close`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from inspector.client import DocumentInspector
from inspector.exceptions import ClientClosed

__all__ = ["LeasedInspector"]


class LeasedInspector:
    """The inspector a worker's batches share, and the lease it is held under.

    Args:
        open_inspector: Opens the inspector (reading nothing secret from here).
        lease: A ``distributed.Semaphore`` of the cap's leases, or None for no cap.
        idle_release: Seconds without a batch before the inspector is closed and the lease
            given back (with a lease only).
    """

    def __init__(self, open_inspector: Callable[[], DocumentInspector], lease: Any,
                 idle_release: float) -> None:
        self._open_inspector = open_inspector
        self._lease = lease
        self._idle_release = idle_release
        # Guards everything below; shared by the worker's task threads and the idle timer.
        # Held while the inspector is opened: the worker's other batches would wait for it
        # anyway.
        self._lock = threading.Lock()
        self._inspector: Optional[DocumentInspector] = None
        self._holding_lease = False
        self._running_batches = 0
        self._idle_timer: Optional[threading.Timer] = None
        self._closed = False

    def start_batch(self) -> DocumentInspector:
        """The inspector for a batch, opened (under a lease) if it is not; pair with
        :meth:`end_batch`.

        Raises:
            ClientClosed: :meth:`close` was called.
            InspectorError: the inspector could not be opened.
        """
        with self._lock:
            if self._closed:
                raise ClientClosed("the worker's inspector plugin was torn down")
            self._cancel_idle_timer()
            if self._inspector is None:
                self._open()
            self._running_batches += 1
            assert self._inspector is not None
            return self._inspector

    def end_batch(self) -> None:
        """A batch is done; with none left running, start counting the idle time."""
        with self._lock:
            self._running_batches -= 1
            if self._running_batches or self._lease is None or self._closed:
                return
            timer = threading.Timer(self._idle_release, self._release_if_idle)
            timer.name = "inspector-idle-release"
            timer.daemon = True
            self._idle_timer = timer
            timer.start()

    def close(self) -> None:
        """Close the inspector and give back the lease, for good; safe to call twice."""
        with self._lock:
            self._closed = True
            self._close_inspector()
        if self._lease is not None:
            # Stop refreshing leases; not Semaphore.close(), which would close it for everyone.
            refresh = getattr(self._lease, "refresh_callback", None)
            if refresh is not None:  # None when lease timeouts are off ("inf")
                refresh.stop()

    def _open(self) -> None:
        assert self._lock.locked()
        if self._lease is not None and not self._holding_lease:
            # Waits as long as it takes: a lease comes back when a worker goes idle or leaves.
            self._lease.acquire()
            self._holding_lease = True
        try:
            self._inspector = self._open_inspector()
        except BaseException:
            self._give_back_lease()
            raise

    def _release_if_idle(self) -> None:
        with self._lock:
            if self._idle_timer is not threading.current_thread():
                return  # cancelled, or replaced by a newer timer, after it fired
            self._idle_timer = None
            if not self._running_batches:
                self._close_inspector()

    def _cancel_idle_timer(self) -> None:
        assert self._lock.locked()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _close_inspector(self) -> None:
        assert self._lock.locked()
        self._cancel_idle_timer()
        inspector, self._inspector = self._inspector, None
        if inspector is not None:
            inspector.close()  # returns once the socket is closed: then the lease may go
        self._give_back_lease()

    def _give_back_lease(self) -> None:
        if self._lease is not None and self._holding_lease:
            self._holding_lease = False
            self._lease.release()
