"""inspector.deferral: calls a thread puts off to the end of a block; and the reply queue's use."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest
from support import MS, wait_until

from inspector.deferral import after_batch, deferring

pytestmark = pytest.mark.timeout(30)


def test_outside_a_block_a_call_runs_at_once() -> None:
    """With no block open on this thread, after_batch() is a plain call."""
    calls: List[str] = []
    after_batch(lambda: calls.append("now"))
    assert calls == ["now"]


def test_calls_run_once_each_in_order_when_the_block_ends() -> None:
    """Within a block nothing runs; at its end each distinct call runs once, in the order
    first asked for (a bound method asked again is the same call)."""
    class Target:
        def __init__(self) -> None:
            self.runs = 0

        def kick(self) -> None:
            self.runs += 1
            order.append(self)

    order: List[Any] = []
    first, second = Target(), Target()
    with deferring():
        for target in (first, second, first, first, second):
            after_batch(target.kick)
        assert order == []
    assert order == [first, second] and first.runs == second.runs == 1


def test_the_calls_run_even_when_the_block_raises() -> None:
    """A block left by an error still runs what it put off (a read that failed midway must
    still hand over the replies it routed)."""
    calls: List[str] = []
    with pytest.raises(ValueError):
        with deferring():
            after_batch(lambda: calls.append("kick"))
            raise ValueError("the read failed")
    assert calls == ["kick"]


def test_an_inner_block_leaves_its_calls_to_the_outer() -> None:
    """Blocks do not nest: the calls wait for the outermost block's end."""
    calls: List[str] = []
    with deferring():
        with deferring():
            after_batch(lambda: calls.append("kick"))
        assert calls == []
    assert calls == ["kick"]


def test_a_block_defers_only_its_own_threads_calls() -> None:
    """Another thread's after_batch() runs at once while this thread's block is open."""
    calls: List[str] = []
    with deferring():
        other = threading.Thread(target=after_batch, args=(lambda: calls.append("other"),))
        other.start()
        other.join(10_000 * MS)
        assert calls == ["other"]


def test_replies_routed_in_one_read_are_handled_as_one_round() -> None:
    """The reply queue hands the dispatcher's thread everything queued within one block as one
    round, started once the block ends; outside a block the first reply starts a round."""
    from inspector.dispatcher import _ReplyQueue

    rounds: List[List[Any]] = []
    handled = threading.Event()

    def handle_round(answered: List[Any]) -> None:
        rounds.append(list(answered))
        handled.set()

    queue = _ReplyQueue(handle_round)
    try:
        with deferring():
            for reply in ("r1", "r2", "r3"):
                queue.put(reply)  # type: ignore[arg-type]
            assert not queue._draining, "a round started before the read was routed"
        assert handled.wait(10_000 * MS)
        wait_until(lambda: not queue._draining)
        assert rounds == [["r1", "r2", "r3"]]
        handled.clear()
        queue.put("r4")  # type: ignore[arg-type]
        assert handled.wait(10_000 * MS) and rounds[-1] == ["r4"]
    finally:
        queue.shutdown()
