"""LeasedInspector: one inspector under a lease of the cap, given back when idle."""

from __future__ import annotations

import threading
from typing import List

import pytest
from support import MS, wait_until

from inspector import ClientClosed, DocumentInspector, Inspection
from inspector.contrib.dask.leased import LeasedInspector
from inspector.server import SampleServer


class Lease:
    """A real semaphore of leases with distributed.Semaphore's two calls, counting them."""

    def __init__(self, leases: int) -> None:
        self._semaphore = threading.BoundedSemaphore(leases)
        self.acquired = 0

    def acquire(self) -> bool:
        self._semaphore.acquire()
        self.acquired += 1
        return True

    def release(self) -> bool:
        self._semaphore.release()
        return True


def _leased(server: SampleServer, lease: object, idle: float) -> LeasedInspector:
    return LeasedInspector(lambda: DocumentInspector(server.url), lease, idle)


def test_batches_share_one_inspector_and_one_lease(sample_server: SampleServer) -> None:
    """Batch after batch use the same inspector: one connection, one lease taken."""
    lease = Lease(1)
    leased = _leased(sample_server, lease, idle=60.0)
    try:
        first = leased.start_batch()
        assert isinstance(first.inspect("doc-1"), Inspection)
        leased.end_batch()
        second = leased.start_batch()
        assert second is first
        leased.end_batch()
    finally:
        leased.close()
    assert lease.acquired == 1 and sample_server.stats.connections_opened == 1


def test_an_idle_worker_gives_its_lease_to_a_waiting_one(sample_server: SampleServer) -> None:
    """A second worker waits for the only lease until the first has been idle; never two
    connections open at once."""
    lease = Lease(1)
    one, two = _leased(sample_server, lease, 200 * MS), _leased(sample_server, lease, 60.0)
    got: List[Inspection] = []

    def second_worker() -> None:
        inspector = two.start_batch()
        got.append(inspector.inspect("doc-2"))
        two.end_batch()

    try:
        one.start_batch().inspect("doc-1")
        waiting = threading.Thread(target=second_worker)
        waiting.start()
        wait_until(lambda: waiting.is_alive() and lease.acquired == 1)
        assert not got  # still waiting: the first holds the lease
        one.end_batch()  # idle from now: released after 200 ms
        waiting.join(10_000 * MS)
        assert [i.document.id for i in got] == ["doc-2"]
    finally:
        one.close()
        two.close()
    assert sample_server.stats.max_open_connections == 1
    assert sample_server.stats.connections_opened == 2


def test_no_lease_keeps_the_inspector_open(sample_server: SampleServer) -> None:
    """Without a cap the inspector stays open between batches, however long."""
    leased = _leased(sample_server, None, 1 * MS)
    try:
        leased.start_batch()
        leased.end_batch()
        # No idle timer was started (end_batch would have started it), the connection stays.
        assert "inspector-idle-release" not in [t.name for t in threading.enumerate()]
        assert sample_server.stats.open_connections == 1
    finally:
        leased.close()
    wait_until(lambda: sample_server.stats.open_connections == 0)


def test_after_close_a_batch_is_refused(sample_server: SampleServer) -> None:
    """A batch that starts after close() fails with ClientClosed (its batch runs elsewhere)."""
    lease = Lease(1)
    leased = _leased(sample_server, lease, 60.0)
    leased.start_batch()
    leased.end_batch()
    leased.close()
    leased.close()  # twice is fine
    with pytest.raises(ClientClosed):
        leased.start_batch()
    assert lease.acquire() and lease.acquired == 2  # the lease was given back
