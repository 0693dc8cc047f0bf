"""LightFuture: a real concurrent.futures.Future, cheaper to make and to read once settled."""

from __future__ import annotations

import functools
import gc
import os
import signal
import sys
import threading
import time
import weakref
from concurrent.futures import (
    FIRST_COMPLETED,
    CancelledError,
    Future,
    InvalidStateError,
    as_completed,
    wait,
)
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, List

import pytest

from inspector.futures import LightFuture
from tests.support import MS

pytestmark = pytest.mark.timeout(30)


def test_it_has_every_field_a_plain_future_has():
    # LightFuture sets Future's fields itself (the condition on first use); a Python that
    # adds one must fail here, not in a Future method that reads it.
    future = LightFuture()
    assert [name for name in vars(Future()) if not hasattr(future, name)] == []


def test_threads_that_first_touch_a_future_at_once_share_one_condition():
    # The condition is made on first use; two threads must never each make their own. A
    # tiny switch interval makes the interpreter trade threads between the check and the
    # making, where a race would be lost.
    def touch(future: LightFuture, start: threading.Barrier, seen: List[Any]) -> None:
        start.wait()
        seen.append(future._condition)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(1000):
            future, start, seen = LightFuture(), threading.Barrier(4), []
            threads = [threading.Thread(target=touch, args=(future, start, seen))
                       for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len({id(condition) for condition in seen}) == 1
    finally:
        sys.setswitchinterval(interval)


def test_a_result_reaches_a_thread_that_waits_for_it():
    future = LightFuture()
    got: List[Any] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        got.append(future.result(10_000 * MS))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    future.set_result("done")
    thread.join()
    assert got == ["done"] and future.done() and future.result() == "done"


def test_an_error_is_raised_to_each_reader_and_returned_by_exception():
    future = LightFuture()
    error = ValueError("bad")
    future.set_exception(error)
    for _ in range(2):
        with pytest.raises(ValueError) as caught:
            future.result()
        assert caught.value is error
    assert future.exception() is error and future.done()


def test_waiting_times_out_then_still_sees_the_result():
    future = LightFuture()
    with pytest.raises(FutureTimeout):
        future.result(20 * MS)
    with pytest.raises(FutureTimeout):
        future.exception(20 * MS)
    future.set_result(1)
    assert future.result(0) == 1 and future.exception(0) is None


def test_the_first_callback_given_at_construction_runs_once_with_later_ones():
    calls: List[str] = []
    future = LightFuture(lambda f: calls.append(f"first {f.result()}"))
    future.add_done_callback(lambda f: calls.append(f"second {f.result()}"))
    future.set_result(7)
    future.add_done_callback(lambda f: calls.append(f"late {f.result()}"))  # runs at once
    assert calls == ["first 7", "second 7", "late 7"]


def test_cancel_wakes_a_waiter_with_cancelled_error():
    future = LightFuture()
    raised: List[BaseException] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        try:
            future.result(10_000 * MS)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            raised.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    # The waiter may not wait yet when cancel() runs; either way it must see the cancel.
    assert future.cancel()
    thread.join()
    assert len(raised) == 1 and isinstance(raised[0], CancelledError)
    assert future.cancelled() and future.done()


def test_wait_and_as_completed_work_across_threads():
    futures = [LightFuture() for _ in range(20)]
    setter = threading.Thread(target=lambda: [f.set_result(i) for i, f in enumerate(futures)])
    setter.start()
    assert sorted(f.result() for f in as_completed(futures, timeout=10_000 * MS)) == list(
        range(20)
    )
    setter.join()
    pending = [LightFuture(), LightFuture()]
    threading.Timer(20 * MS, pending[1].set_result, ["second"]).start()
    done, not_done = wait(pending, timeout=10_000 * MS, return_when=FIRST_COMPLETED)
    assert done == {pending[1]} and not_done == {pending[0]}


def test_many_waiters_all_wake():
    future = LightFuture()
    results: List[Any] = []
    ready = threading.Barrier(9)

    def waiter() -> None:
        ready.wait()
        results.append(future.result(10_000 * MS))

    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for thread in threads:
        thread.start()
    ready.wait()
    future.set_result("x")
    for thread in threads:
        thread.join()
    assert results == ["x"] * 8


def test_a_raised_error_leaves_no_cycle_holding_the_future():
    # Future.result() breaks the cycle error -> traceback -> frame -> future -> error; so
    # must the fast path, or every failed request would wait for the garbage collector.
    class Payload:
        pass

    future = LightFuture()
    future.set_exception(RuntimeError("x"))
    payload = Payload()
    future.payload = payload  # type: ignore[attr-defined]
    alive = weakref.ref(payload)
    del payload
    with pytest.raises(RuntimeError):
        future.result()
    gc.disable()
    try:
        del future
        assert alive() is None, "the future outlived its last reference"
    finally:
        gc.enable()



def test_settling_a_settled_future_raises_rather_than_deadlocks():
    # Future.set_result() formats the future's repr while holding its condition, and the repr
    # takes the condition again: the lock must be reentrant.
    future = LightFuture()
    future.set_result(1)
    outcome: List[BaseException] = []

    def settle_again() -> None:
        try:
            future.set_exception(ValueError("late"))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=settle_again, daemon=True)
    thread.start()
    thread.join(10_000 * MS)
    assert not thread.is_alive(), "set_exception() on a settled future deadlocked"
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidStateError)
    assert "LightFuture" in repr(future) and future.result() == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_a_condition_is_being_made_leaves_the_child_usable():
    # As if another thread were making a condition at the moment of the fork: the child's
    # copy of that lock would stay held for ever, and its first Future would hang.
    from inspector import futures

    with futures._MAKING_CONDITIONS:
        pid = os.fork()
        if pid == 0:  # the child: settle and read a new Future, then leave at once
            code = 1
            try:
                future = LightFuture()
                future.set_result("child")
                code = 0 if future.result(1) == "child" else 1
            finally:
                os._exit(code)
    deadline = time.monotonic() + 10_000 * MS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the child hung on its first Future")


def test_a_future_settled_before_anyone_looked_makes_no_condition():
    """Settled with nobody waiting, a Future makes neither condition nor lists, and still
    runs its callback and reads back."""
    seen: List[Any] = []
    future = LightFuture(seen.append)
    future.set_result("x")
    assert future._made_condition is None and future._made_waiters is None
    assert seen == [future] and future.done() and future.result() == "x"
    failed = LightFuture()
    failed.set_exception(ValueError("y"))
    assert failed._made_condition is None and isinstance(failed.exception(), ValueError)
    with pytest.raises(InvalidStateError):
        failed.set_result("late")


def test_futures_in_flight_add_one_object_each_for_the_collector():
    """A Future with its first callback, not yet settled, is one object the cyclic garbage
    collector tracks: not the two lists a plain Future makes besides."""
    def callback(future: Future) -> None:
        pass

    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        futures = [LightFuture(callback) for _ in range(1000)]
        added = len(gc.get_objects()) - before
    finally:
        gc.enable()
    # One each, where two lists more would make it three; other threads of the test process
    # (a Dask cluster's, say) may make or free a few objects meanwhile, hence the margin.
    assert added < 1.5 * len(futures)


def _wait_for(future: LightFuture, start: threading.Barrier, results: List[Any]) -> None:
    start.wait()
    results.append(future.result(timeout=10_000 * MS))


def test_a_waiter_that_races_the_settling_always_wakes():
    """A thread that starts waiting just as another settles the Future unwatched either sees
    it settled or is woken: never left waiting (a tiny switch interval trades the threads
    between every check and the settling)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            future = LightFuture()
            start = threading.Barrier(2)
            results: List[Any] = []
            waiter = threading.Thread(target=_wait_for, args=(future, start, results))
            waiter.start()
            start.wait()
            future.set_result("done")
            waiter.join(10_000 * MS)
            assert not waiter.is_alive() and results == ["done"]
    finally:
        sys.setswitchinterval(interval)


def _add_callback(future: LightFuture, start: threading.Barrier, calls: List[int],
                  n: int) -> None:
    start.wait()
    future.add_done_callback(lambda f: calls.append(n))


def test_callbacks_added_while_it_settles_each_run_once():
    """Callbacks added from other threads while the Future settles all run, each once."""
    for _ in range(100):
        calls: List[int] = []
        future = LightFuture(functools.partial(_add_zero, calls))
        start = threading.Barrier(4)
        adders = [threading.Thread(target=_add_callback, args=(future, start, calls, n))
                  for n in (1, 2, 3)]
        for thread in adders:
            thread.start()
        start.wait()
        future.set_result(None)
        for thread in adders:
            thread.join(10_000 * MS)
        assert sorted(calls) == [0, 1, 2, 3]


def _add_zero(calls: List[int], future: Future) -> None:
    calls.append(0)


def test_a_settled_future_lets_go_of_its_callbacks():
    """Once run, callbacks are dropped, so one that refers back to its Future (a request's
    call holds its reply until handled) forms no cycle for the garbage collector."""
    class Call:
        def __init__(self) -> None:
            self.reply: Any = None

        def __call__(self, future: Future) -> None:
            self.reply = future

    call = Call()
    alive = weakref.ref(call)
    future = LightFuture(call)
    future.add_done_callback(lambda f: None)
    future.set_result(1)
    gc.disable()
    try:
        del call, future
        assert alive() is None, "the callback and its Future kept each other alive"
    finally:
        gc.enable()
