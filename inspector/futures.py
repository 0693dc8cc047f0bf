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
from typing import Any, Callable, Optional

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
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = [] if callback is None else [callback]

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
