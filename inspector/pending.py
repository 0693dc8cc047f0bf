"""The requests awaiting a reply on one connection, by id, and when each times out.

Pure: no thread, socket or clock of its own (the time is an argument). The connection guards
:meth:`PendingRequests.add` and :meth:`PendingRequests.take_all` with its lock; a reply's
:meth:`PendingRequests.pop` needs none (``dict.pop`` is atomic, and whichever of reply,
timeout, loss or abandonment pops an entry first is the one that settles it); the deadline
methods are for the I/O thread alone.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any, Deque, Dict, Generic, List, Optional, Protocol, Tuple, TypeVar

__all__ = ["PendingRequests"]


class _HasDeadline(Protocol):
    deadline: Optional[float]


R = TypeVar("R", bound=_HasDeadline)


class PendingRequests(Generic[R]):
    """Requests by id, each with an optional monotonic ``deadline`` attribute."""

    def __init__(self) -> None:
        self._by_id: Dict[int, R] = {}
        self._deadlines = _Deadlines()

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, request_id: int, request: R) -> None:
        """Register a request before it is sent (its reply may come at once)."""
        self._by_id[request_id] = request

    def get(self, request_id: int) -> Optional[R]:
        """The request under ``request_id``, if it is still pending."""
        return self._by_id.get(request_id)

    def pop(self, request_id: int) -> Optional[R]:
        """Remove and return the request under ``request_id``; None if it is not pending."""
        return self._by_id.pop(request_id, None)

    def take_all(self) -> List[R]:
        """Remove and return every pending request (the connection ended)."""
        taken, self._by_id = self._by_id, {}
        return list(taken.values())

    def watch(self, request_id: int) -> None:
        """Start watching the deadline of a request that was just sent."""
        request = self._by_id.get(request_id)
        if request is not None and request.deadline is not None:
            self._deadlines.add(request_id, request.deadline)

    def next_deadline(self) -> Optional[float]:
        """The earliest deadline of a watched request still pending."""
        return self._deadlines.next(self._by_id)

    def pop_expired(self, now: float) -> List[R]:
        """Remove and return every watched request whose deadline is ``now`` or earlier."""
        return self._deadlines.pop_expired(self._by_id, now)


class _Deadlines:
    """When requests time out, for the I/O thread alone.

    Requests mostly share one timeout and are queued in the order they were made, so their
    deadlines mostly arrive in order: those go into a queue of bare ids (ints cost the garbage
    collector nothing, and an answered id is simply skipped when it reaches the front). The few
    that arrive out of order, a shorter timeout or a request that waited for a slot, go into a
    heap.
    """

    def __init__(self) -> None:
        self._in_order: Deque[int] = deque()
        self._last_in_order = float("-inf")
        self._out_of_order: List[Tuple[float, int]] = []

    def add(self, request_id: int, deadline: float) -> None:
        if deadline >= self._last_in_order:
            self._in_order.append(request_id)
            self._last_in_order = deadline
        else:
            heapq.heappush(self._out_of_order, (deadline, request_id))

    def next(self, pending: Dict[int, Any]) -> Optional[float]:
        """The earliest deadline of a request still pending, dropping answered ones."""
        in_order = self._in_order
        while in_order:
            request = pending.get(in_order[0])
            if request is not None and request.deadline is not None:
                earliest: Optional[float] = request.deadline
                break
            in_order.popleft()
        else:
            earliest = None
        heap = self._out_of_order
        while heap and heap[0][1] not in pending:
            heapq.heappop(heap)
        if heap and (earliest is None or heap[0][0] < earliest):
            earliest = heap[0][0]
        return earliest

    def pop_expired(self, pending: Dict[int, Any], now: float) -> List[Any]:
        """Remove from ``pending`` and return every request whose deadline has passed."""
        expired = []
        while self.next(pending) is not None:
            in_order, heap = self._in_order, self._out_of_order
            if heap and heap[0][0] <= now:
                request_id = heapq.heappop(heap)[1]
            elif in_order and pending[in_order[0]].deadline <= now:
                request_id = in_order.popleft()
            else:
                break
            request = pending.pop(request_id, None)
            if request is not None:
                expired.append(request)
        return expired
