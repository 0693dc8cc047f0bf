"""Tests of inspector.notifier: delivery on a thread of its own, through a bounded queue."""

from __future__ import annotations

import threading
from typing import List, Tuple

from support import MS, wait_until

from inspector.notifier import Notifier


def stuck_notifier(
    max_queued: int, max_queued_bytes: int
) -> Tuple[Notifier, threading.Event, List[str]]:
    """A notifier whose one subscriber waits for an event before recording each id."""
    notifier = Notifier("test-notify", max_queued=max_queued, max_queued_bytes=max_queued_bytes)
    release = threading.Event()
    received: List[str] = []

    def subscriber(method: str, params: str) -> None:
        release.wait(10_000 * MS)
        received.append(params)

    notifier.subscribe(subscriber)
    return notifier, release, received


def test_the_oldest_are_dropped_beyond_max_queued() -> None:
    """Past max_queued waiting, each new notification drops the oldest, and says so."""
    notifier, release, received = stuck_notifier(max_queued=3, max_queued_bytes=10**6)
    notifier.put("M", "n0")
    wait_until(lambda: notifier.queued == 0)  # n0 is being delivered, the subscriber stuck
    dropped = [notifier.put("M", f"n{i}") for i in range(1, 8)]
    assert dropped == [0, 0, 0, 1, 1, 1, 1] and notifier.dropped == 4
    assert notifier.queued == 3
    release.set()
    wait_until(lambda: len(received) == 4)
    notifier.stop(10_000 * MS)
    assert received == ["n0", "n5", "n6", "n7"]


def test_the_oldest_are_dropped_beyond_max_queued_bytes() -> None:
    """Sizes count too: 30-byte notifications under a 100-byte bound leave three waiting."""
    notifier, release, received = stuck_notifier(max_queued=1000, max_queued_bytes=100)
    notifier.put("M", "n0", 30)
    wait_until(lambda: notifier.queued == 0)
    for i in range(1, 11):
        notifier.put("M", f"n{i}", 30)
    assert notifier.queued == 3 and notifier.dropped == 7
    notifier.put("M", "huge", 500)  # alone over the bound: the newest is kept all the same
    assert notifier.queued == 1
    release.set()
    wait_until(lambda: len(received) == 2)
    notifier.stop(10_000 * MS)
    assert received == ["n0", "huge"]


def test_stop_lets_the_waiting_go() -> None:
    """After stop() nothing waits and nothing more is queued."""
    notifier, release, received = stuck_notifier(max_queued=10, max_queued_bytes=10**6)
    notifier.put("M", "n0")
    wait_until(lambda: notifier.queued == 0)
    for i in range(5):
        notifier.put("M", f"n{i}")
    release.set()
    notifier.stop(10_000 * MS)
    assert notifier.queued == 0 and notifier.put("M", "late") == 0
    assert "late" not in received
