"""Keeping the inventory current: re-inspect what the server says changed, relist on a timer.

:class:`WatchPlan` is the policy, with no thread or clock of its own: it is told of
notifications, reconnections and the time, and says what to do next. A relist (an incremental
scan of every document, which also catches deletions) is due at the start, every ``relist``
seconds, and at once after a reconnection, since notifications sent while the connection was
down are lost (PROTOCOL.md, "Changes"). Documents named by ``DocumentChanged`` are re-inspected
in small batches; those named by ``DocumentRemoved`` are checked, and marked deleted if the
server no longer has them.

:class:`Watcher` is the shell: it subscribes to the inspector's notifications, and runs the
plan's actions as scans (trigger ``watch``) until told to stop. Its relists are requests, so a
lost connection is reopened by them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

import attrs

from inspector.client import DocumentInspector
from inspector.exceptions import InspectorError, InvalidArgument
from inspector.inventory.planner import DEFAULT_STALE_THRESHOLD, StaleListing
from inspector.inventory.scan import scan
from inspector.inventory.store import Store

__all__ = ["Action", "WatchPlan", "Watcher"]

logger = logging.getLogger("inspector.inventory.watch")

CHANGED = "DocumentChanged"
REMOVED = "DocumentRemoved"


@attrs.frozen
class Action:
    """What to do now: ``relist`` everything, or ``inspect`` / ``check_removed`` some ids."""

    kind: str
    document_ids: Tuple[str, ...] = ()


class WatchPlan:
    """When to relist and what to re-inspect; fed events and the time, returns actions.

    Args:
        relist: Seconds between relists.
        now: The current time (any monotonic clock).
    """

    def __init__(self, relist: float, now: float) -> None:
        if isinstance(relist, bool) or not isinstance(relist, (int, float)) or not relist > 0:
            raise InvalidArgument(f"relist: expected a positive number of seconds, got "
                                  f"{relist!r}")
        self.relist = float(relist)
        self.next_relist = now  # the first relist is at once
        self.changed: Dict[str, None] = {}
        self.removed: Dict[str, None] = {}

    def notified(self, method: str, params: Any) -> bool:
        """Take a notification; return whether it asks for work."""
        document_id = params.get("id") if isinstance(params, dict) else None
        if not isinstance(document_id, str) or not document_id:
            return False
        if method == CHANGED:
            self.removed.pop(document_id, None)
            self.changed[document_id] = None
            return True
        if method == REMOVED:
            self.changed.pop(document_id, None)
            self.removed[document_id] = None
            return True
        return False

    def reconnected(self, now: float) -> None:
        """The connection was reopened: what was notified meanwhile is lost, so relist now."""
        self.next_relist = now

    def next_action(self, now: float) -> Optional[Action]:
        """The next thing to do, or None until :meth:`wait_time` has passed."""
        if now >= self.next_relist:
            self.next_relist = now + self.relist
            # The relist inspects every changed document anyway.
            self.changed.clear()
            self.removed.clear()
            return Action("relist")
        if self.changed:
            ids, self.changed = tuple(self.changed), {}
            return Action("inspect", ids)
        if self.removed:
            ids, self.removed = tuple(self.removed), {}
            return Action("check_removed", ids)
        return None

    def wait_time(self, now: float) -> float:
        """Seconds until the next relist is due."""
        return max(self.next_relist - now, 0.0)


class Watcher:
    """Keeps a store current from one inspector until :meth:`stop`.

    Args:
        store: The inventory's store.
        inspector: An open inspector (with ``subscribe``).
        relist: Seconds between relists.
        stale_threshold: For the relists' deletion check.
        on_run: Called with each run's id after it ends.
        probe: Seconds between checks that the connection is open: a lost one is reopened
            only by a request, and reopening is what triggers the relist that closes the gap.
        clock: The monotonic clock (tests may pass their own).
    """

    def __init__(self, store: Store, inspector: DocumentInspector, *, relist: float = 300.0,
                 stale_threshold: float = DEFAULT_STALE_THRESHOLD,
                 on_run: Optional[Callable[[int], None]] = None, probe: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(probe, bool) or not isinstance(probe, (int, float)) or not probe > 0:
            raise InvalidArgument(f"probe: expected a positive number of seconds, got "
                                  f"{probe!r}")
        self.probe = float(probe)
        self.store = store
        self.inspector = inspector
        self.stale_threshold = stale_threshold
        self.on_run = on_run
        self.clock = clock
        self.plan = WatchPlan(relist, clock())
        self._lock = threading.Lock()  # guards self.plan: notifications arrive on other threads
        self._wake = threading.Event()  # set by a notification, a reconnection or stop()
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the action in progress. Safe from any thread."""
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        """Watch until :meth:`stop`: relist, re-inspect, and wait for the next thing to do."""
        unsubscribe = self.inspector.subscribe(
            self._notified, on_reconnect=self._reconnected)
        try:
            while not self._stopping.is_set():
                with self._lock:
                    action = self.plan.next_action(self.clock())
                    wait = self.plan.wait_time(self.clock())
                if action is None:
                    if not self._wake.wait(min(wait, self.probe)):
                        self._check_connection()
                    self._wake.clear()
                    continue
                self._do(action)
        finally:
            unsubscribe()

    def _check_connection(self) -> None:
        try:
            _ = self.inspector.connection  # reopens a lost connection; on_reconnect follows
        except InspectorError as error:
            logger.warning("the connection is down: %s: %s", type(error).__name__, error)

    def _notified(self, method: str, params: Any) -> None:
        with self._lock:
            wanted = self.plan.notified(method, params)
        if wanted:
            self._wake.set()

    def _reconnected(self) -> None:
        with self._lock:
            self.plan.reconnected(self.clock())
        self._wake.set()

    def _do(self, action: Action) -> None:
        run_id: Optional[int]
        try:
            if action.kind == "relist":
                run_id = scan(self.store, self.inspector, list_all=True, trigger="watch",
                              stale_threshold=self.stale_threshold)
            else:
                run_id = scan(self.store, self.inspector, list(action.document_ids),
                              full=action.kind == "inspect", trigger="watch",
                              missing_means_deleted=action.kind == "check_removed")
        except StaleListing as refusal:
            logger.warning("relist refused: %s", refusal)
            run_id = refusal.run_id
        except InspectorError as error:
            # The connection is down: the run is stored as interrupted; the next relist (its
            # requests reopen the connection) continues it.
            logger.warning("%s failed: %s: %s", action.kind, type(error).__name__, error)
            with self._lock:
                self.plan.reconnected(self.clock() + min(self.plan.relist, 5.0))
            return
        if run_id is not None and self.on_run is not None:
            self.on_run(run_id)

