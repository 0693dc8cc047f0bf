"""A ``concurrent.futures.Future`` that is cheap to make by the ten thousand.

A large inspection makes a Future per request, tens of thousands a second, on the thread that
also handles the replies. The standard ``Future()`` builds a ``threading.Condition`` over an
``RLock``: the condition binds five of the lock's methods onto itself and looks each one up,
so making the Future measured a tenth of a large inspection's client time, and its seven
objects tracked by the cyclic garbage collector cost as much again in collections.

:class:`LightFuture` is a real ``Future`` (``isinstance``, ``result()``, callbacks,
``concurrent.futures.wait`` and ``as_completed`` all work) whose condition and lock are made on
first use, which for a request is when its reply settles it (in flight, it holds neither: what
lives through the cyclic collector's passes is what it promotes, and what the full collections
then walk), and whose condition makes its queue of waiters only when somebody waits.

Settling a Future nobody has looked at makes no condition at all: nobody can be waiting on it
or adding a callback to it, as both take the condition first (and so make it). Settling and
making a condition are ordered by the one lock that makes conditions, so a thread that makes
one just after sees the Future settled. Most requests are settled so, read through their
callback.

Reading a settled Future takes no lock either: ``done()``, and ``result()`` or ``exception()``
once it is finished, read the state, which only ever moves forward and is set last, after the
result or the exception; a read of one attribute is atomic. A Future's first done-callback can
be given at construction, before any other thread can see it, so it costs no lock.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING
from concurrent.futures._base import LOGGER as _LOGGER
from typing import Any, Callable, List, Optional

__all__ = ["LightFuture"]

_MAKING_CONDITIONS = threading.Lock()


def _new_lock_after_fork() -> None:
    # A fork while another thread held the lock would leave it held for ever in the child.
    global _MAKING_CONDITIONS
    _MAKING_CONDITIONS = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_new_lock_after_fork)

_NO_WAITERS = ()  # the empty tuple, which the garbage collector does not track
_ENDED = frozenset([CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED])


class _Condition(threading.Condition):
    """The ``threading.Condition`` a Future makes, without the objects it makes per instance.

    Over an ``RLock``, as a Future's own (``set_result()`` on a settled Future formats its
    ``repr()``, which takes the condition again), but delegating to the lock's methods rather
    than binding five of them onto each instance. The queue of waiters is made by the first
    ``wait()``, under the lock as ``wait()`` requires: nobody waits on most of these Futures,
    whose owners use callbacks, and a deque is half a kilobyte.
    """

    def __init__(self) -> None:  # no super().__init__(): that is what this saves
        self._lock: Any = threading.RLock()
        self._waiters: Any = _NO_WAITERS

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        self._lock.release()

    # What Condition.__init__ binds from an RLock, used by wait() and notify().
    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())

    def _release_save(self) -> Any:
        return self._lock._release_save()

    def _acquire_restore(self, state: Any) -> None:
        self._lock._acquire_restore(state)

    def wait(self, timeout: Optional[float] = None) -> bool:
        if self._waiters is _NO_WAITERS:
            self._waiters = deque()
        return super().wait(timeout)

    def notify(self, n: int = 1) -> None:
        if self._waiters:
            super().notify(n)

    def notify_all(self) -> None:
        if self._waiters:
            super().notify_all()


class LightFuture(Future[Any]):
    """A Future with a cheaper lock; see the module's docstring.

    Args:
        callback: A first done-callback, as ``add_done_callback()`` would attach it.
    """

    def __init__(self, callback: Optional[Callable[[Future[Any]], object]] = None) -> None:
        # Future.__init__'s fields, every one (a test compares them with a plain Future's),
        # the condition made on first use (see _condition).
        self._made_condition: Optional[_Condition] = None
        self._state = PENDING
        self._result: Any = None
        self._exception: Optional[BaseException] = None
        # The two lists are made on first use too (see _waiters and _done_callbacks): with
        # thousands of requests in flight, two lists each were two objects in four that the
        # cyclic collector promoted and walked. The first callback is held as it is.
        self._made_waiters: Optional[List[Any]] = None
        self._first_callback = callback
        self._more_callbacks: Optional[List[Any]] = None

    @property
    def _waiters(self) -> List[Any]:  # type: ignore[override]
        # Future reads and changes it only with the condition held, so a Future settled
        # unwatched never makes it.
        waiters = self._made_waiters
        if waiters is None:
            waiters = self._made_waiters = []
        return waiters

    @property
    def _done_callbacks(self) -> List[Any]:
        # Asked for by add_done_callback(), with the condition held and the Future not yet
        # settled: the first callback moves into the list, which from then on holds them all.
        callbacks = self._more_callbacks
        if callbacks is None:
            first, self._first_callback = self._first_callback, None
            callbacks = self._more_callbacks = [] if first is None else [first]
        return callbacks

    def _invoke_callbacks(self) -> None:
        # After the state is settled, when neither field changes any more. Each runs once, so
        # the Future lets go of them: a callback that keeps the Future (a request's call
        # holds its reply until the reply is handled) would otherwise make a reference cycle,
        # which only the cyclic collector frees.
        first = self._first_callback
        callbacks = (() if first is None else (first,)) + tuple(self._more_callbacks or ())
        self._first_callback = self._more_callbacks = None
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                _LOGGER.exception("exception calling callback for %r", self)

    @property
    def _condition(self) -> _Condition:  # type: ignore[override]
        # Made when first asked for, mostly as the reply settles the Future: a request in
        # flight then holds neither lock nor condition. Made under one lock for all, so that
        # two threads asking at once get the same one.
        condition = self._made_condition
        if condition is None:
            with _MAKING_CONDITIONS:
                condition = self._made_condition
                if condition is None:
                    condition = self._made_condition = _Condition()
        return condition

    def set_result(self, result: Any) -> None:
        if self._made_condition is None and self._settle_unwatched(result, None):
            return
        super().set_result(result)

    def set_exception(self, exception: Optional[BaseException]) -> None:
        if self._made_condition is None and self._settle_unwatched(None, exception):
            return
        super().set_exception(exception)

    def _settle_unwatched(self, result: Any, exception: Optional[BaseException]) -> bool:
        """Settle without a condition if none was made yet; return whether it did."""
        with _MAKING_CONDITIONS:
            if self._made_condition is not None or self._state != PENDING:
                return False  # watched, or settled already: the standard path decides
            self._result = result
            self._exception = exception
            self._state = FINISHED  # last: a reader without the lock trusts what precedes it
        self._invoke_callbacks()
        return True

    def done(self) -> bool:
        return self._state in _ENDED

    def result(self, timeout: Optional[float] = None) -> Any:
        try:
            if self._state == FINISHED:
                if self._exception is not None:
                    raise self._exception
                return self._result
            return super().result(timeout)
        finally:
            # The traceback of a raised error keeps this frame: without this, the frame
            # would keep the Future, and so the error, in a cycle (Future.result does the same).
            del self

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        if self._state == FINISHED:
            return self._exception
        return super().exception(timeout)
