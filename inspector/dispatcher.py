"""The dispatcher: jobs' requests out through the in-flight window, their replies back in.

A thin threaded shell around the pure pieces: :mod:`inspector.jobs` decides what each reply
asks for next, :mod:`inspector.window` how many requests may be in flight, :mod:`inspector.retry`
whether and when a failed request goes again. The dispatcher owns the backlog of requests that
wait for room in the window, and three kinds of thread touch it:

* The connection's I/O thread delivers each reply to a done-callback that appends it to a
  queue and, if no drain is running, submits one to the executor (one thread): the I/O thread
  must not wait on a job's work. One decision is made there once the server has pushed back:
  a reply that succeeded frees its room in the window at once, and a request waiting for room
  goes out then, from that thread, since it needs nothing from the reply (see
  :meth:`Dispatcher.arrive`).
* The drain, on the executor's thread, handles every reply queued, round after round, and sends
  each round's follow-ups in one write. Replies that arrive together are handled together; one
  drain runs at a time, since under the GIL a second would only trade the interpreter back and
  forth with the first (measured: a thread hop per reply cost 1.4x the three round trips).
* The retry timer sends delayed retries (after a 503, say) when they fall due; nothing polls.

Decisions are made under one lock (what goes out, the window, the set of live tasks, whether the
dispatcher is closed) and the I/O (handing frames to the connection) happens outside it, as
httpcore's connection pool does. Whoever registers a task does so under that lock, after
checking that the dispatcher is open, so ``close()`` fails every task that was registered and
no task is ever stranded.

The connection comes from a :class:`~inspector.reopening.Reopener`: when there is none the
backlog simply waits, and the reopener pumps it once a connection is back, or fails every
waiting task at once when it gives up.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Callable, Deque, List, Mapping, Optional, Set, Tuple

import attrs

from inspector.deadline import Deadline
from inspector.deferral import after_batch
from inspector.display import printable
from inspector.exceptions import (
    ClientClosed,
    ConnectionLost,
    InspectorError,
    RequestTimeout,
    ServerError,
    copy_error,
)
from inspector.futures import LightFuture
from inspector.jobs import Job
from inspector.retry import Retry
from inspector.window import FlowWindow

if TYPE_CHECKING:
    from inspector.reopening import Reopener

__all__ = ["Dispatcher", "InspectorStats", "Task"]

logger = logging.getLogger("inspector")


@attrs.define
class InspectorStats:
    """What a DocumentInspector had to do to stay up (read without locking).

    Attributes:
        connections_opened: Connections opened, the first included.
        resent_after_loss: Requests sent again because their connection was lost.
        resent_after_silence: Requests sent again after ``request_timeout`` without a reply.
        resent_after_busy: Requests sent again after a busy reply (429, 503).
        requests: Requests handed to the connection, resends included.
    """

    connections_opened: int = 0
    resent_after_loss: int = 0
    resent_after_silence: int = 0
    resent_after_busy: int = 0
    requests: int = 0


class Task:
    """A job under way: the job, the Future of its result, its deadline."""

    __slots__ = ("job", "future", "deadline", "dispatcher")

    def __init__(self, job: Job, deadline: Deadline, dispatcher: Dispatcher) -> None:
        self.job = job
        # Light: its done() is asked twice per request, and needs no lock there.
        self.future: Future[Any] = LightFuture()
        self.deadline = deadline
        self.dispatcher = dispatcher

    def wait(self) -> Any:
        """The job's result, waited for until its deadline.

        Raises:
            InspectorError: the job failed, or did not finish in time (RequestTimeout).
        """
        try:
            return self.future.result(self.deadline.timeout())
        except FutureTimeout:
            name = printable(self.job.name, quote=True)
            error = RequestTimeout(f"{name} did not complete in time")
            if self.dispatcher.fail(self, error):
                raise error from None
            return self.future.result()  # it finished just as the time ran out


class _Call:
    """One request a task needs; also the done-callback of its Future on the connection."""

    __slots__ = ("task", "method", "params", "retry", "room_freed", "reply")

    def __init__(self, task: Task, method: str, params: Mapping[str, Any], retry: Retry) -> None:
        self.task = task
        self.method = method
        self.params = params
        self.retry = retry
        self.room_freed = False  # its reply freed its room in the window on arrival
        # The settled reply, from its arrival until the drain handles it: the queue of
        # replies then holds the call alone, not a pair per reply (thousands of pairs were
        # as many objects for the cyclic garbage collector).
        self.reply: Optional[Future[Any]] = None

    def __call__(self, reply: Future[Any]) -> None:
        # On the I/O thread, as the request's done-callback. One object per request serves as
        # both the request's record and its callback: a partial per request would be one more
        # object for the cyclic garbage collector, which is a measurable cost at 10^4 requests.
        self.task.dispatcher.arrive(self, reply)


class Dispatcher:
    """Send jobs' requests within the window; handle replies, retries and the end of jobs.

    Args:
        reopener: Where the connection comes from.
        retry: The retry policy every request starts with.
        window: The in-flight window (the only flow control: the connection has none).
        request_timeout: Seconds for each request's reply; None: no limit.
        stats: Counters to update.
    """

    def __init__(
        self,
        reopener: Reopener,
        *,
        retry: Retry,
        window: FlowWindow,
        request_timeout: Optional[float],
        stats: InspectorStats,
    ) -> None:
        self._reopener = reopener
        self._retry = retry
        self._request_timeout = request_timeout
        self.stats = stats
        # Guards every decision about what goes out: the backlog, the window, the count in
        # flight, the live tasks and the closed flag. Never held while calling the connection.
        self._lock = threading.Lock()
        self._window = window
        self._backlog: Deque[_Call] = deque()  # waiting for room in the window, oldest first
        self._in_flight = 0  # handed to the connection, outcome not yet handled
        self._tasks: Set[Task] = set()
        self._closed = False
        self._replies = _ReplyQueue(self._handle_round)
        self._timer = _RetryTimer(self._send_again)

    @property
    def window(self) -> int:
        """The number of requests the window lets into flight now."""
        return self._window.size

    # -- tasks --

    def submit(self, job: Job, timeout: Optional[float]) -> Task:
        """Start ``job``; return its task (``task.wait()`` for the result).

        Raises:
            ClientClosed: the dispatcher is closed.
        """
        task = Task(job, Deadline(timeout), self)
        calls = [_Call(task, method, params, self._retry)
                 for method, params in job.first_requests()]
        with self._lock:
            if self._closed:
                raise ClientClosed("Cannot use a closed DocumentInspector")
            self._tasks.add(task)
            self._backlog.extend(calls)
        self.pump()
        return task

    def fail(self, task: Task, error: BaseException) -> bool:
        """End ``task`` with ``error``; return False if it had ended already."""
        with self._lock:
            self._tasks.discard(task)
        try:
            task.future.set_exception(error)
        except Exception:  # InvalidStateError: it ended first (result, close, timeout)
            return False
        return True

    def _finish(self, task: Task) -> None:
        with self._lock:
            self._tasks.discard(task)
        try:
            task.future.set_result(task.job.result())
        except Exception:  # InvalidStateError: it had failed (timed out, closed) meanwhile
            pass

    def fail_waiting(self, error: InspectorError) -> None:
        """Fail every live task with ``error`` (a copy each): the connection is gone for good."""
        with self._lock:
            tasks = list(self._tasks)
            self._backlog.clear()
        for task in tasks:
            self.fail(task, copy_error(error))

    def close(self) -> None:
        """Fail every live task with ClientClosed and stop the threads; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            tasks = list(self._tasks)
            self._backlog.clear()
        for task in tasks:
            self.fail(task, ClientClosed("the inspector was closed before this completed"))
        self._timer.stop()
        self._replies.shutdown()

    # -- out --

    def pump(self) -> None:
        """Send waiting requests while the window has room, one write per batch.

        A request reaches the connection only when it can go out at once, so no thread ever
        waits for a slot, and a connection that dies takes with it only requests that were
        sent.
        """
        backlog = self._backlog
        while True:
            with self._lock:
                if self._closed or not backlog:
                    return
                connection = self._reopener.current_or_reopen()
                if connection is None:
                    return  # the reopener pumps again once a connection is back
                room = self._window.room(self._in_flight)
                batch: List[_Call] = []
                while backlog and len(batch) < room:
                    call = backlog.popleft()
                    if not call.task.future.done():
                        batch.append(call)
                if not batch:
                    if room:
                        continue  # only ended tasks' requests: look again
                    return  # replies will make room, and the drain that takes them pumps
                self._in_flight += len(batch)
                self.stats.requests += len(batch)
            try:
                connection.request_many(
                    [(call.method, call.params) for call in batch],
                    timeout=self._request_timeout,
                    callbacks=batch,
                )
            except InspectorError as error:  # none of the batch went out
                failed: Future[Any] = Future()
                failed.set_exception(error)
                for call in batch:
                    self.arrive(call, failed)

    def _send_again(self, calls: List[_Call]) -> None:
        """Delayed retries that fell due: ahead of everything waiting, as they are older."""
        with self._lock:
            self._backlog.extendleft(reversed(calls))
        self.pump()

    # -- in --

    def arrive(self, call: _Call, reply: Future[Any]) -> None:
        """Take a settled reply, on the I/O thread: queue it for the drain, and when it
        succeeded while requests wait for room, send the next of them at once.

        Only once the server has pushed back (the window left slow start): the window is then
        the server's own limit, and a slot left empty for the drain's thread hop and handover
        of the interpreter is rate lost (against a server that holds each reply 5 ms and allows
        64 in flight, a tenth of it). Until then the drain refills in batches, which costs
        less per request than one send per reply. A reply that failed keeps its room until
        the drain handles it, since it may halve the window first.
        """
        if self._backlog and not self._window.slow_start and reply.exception() is None:
            call.room_freed = True
            with self._lock:
                self._in_flight -= 1
            self.pump()
        call.reply = reply
        self._replies.put(call)

    def _handle_round(self, answered: List[_Call]) -> None:
        """Handle one round of replies; send their follow-ups in one write."""
        round_ = _Round()
        still_counted = 0  # replies whose room the I/O thread did not free on arrival
        for call in answered:
            if call.room_freed:
                call.room_freed = False  # a call sent again is counted again
            else:
                still_counted += 1
            reply, call.reply = call.reply, None  # a call sent again gets a new one
            assert reply is not None, "queued without its reply"
            self._handle(call, reply, round_)
        with self._lock:
            self._in_flight -= still_counted
            if round_.successes:
                self._window.on_success(round_.successes)
            if round_.retry_now:
                self._backlog.extendleft(reversed(round_.retry_now))  # older than the rest
            self._backlog.extend(round_.follow_ups)
        for delay, calls in round_.retry_later:
            self._timer.schedule(delay, calls)
        self.pump()  # this round's replies made room

    def _handle(self, call: _Call, reply: Future[Any], round_: _Round) -> None:
        task = call.task
        if task.future.done():
            return  # ended already (failed, timed out, closed): later replies change nothing
        try:
            result = reply.result()  # settled: raises the request's error, if any
            round_.successes += 1
            job = task.job
            for method, params in job.on_reply(call.method, call.params, result):
                round_.follow_ups.append(_Call(task, method, params, self._retry))
            if job.finished:
                self._finish(task)
        except InspectorError as error:
            self._retry_or_fail(call, error, round_)
        except Exception:  # a bug must fail the task, not vanish in a worker thread
            logger.exception("handling a reply for %r failed", task.job.name)
            self.fail(task, InspectorError(
                f"internal error handling {call.method} for {printable(task.job.name, quote=True)}"
            ))

    def _retry_or_fail(self, call: _Call, error: InspectorError, round_: _Round) -> None:
        task = call.task
        if isinstance(error, ClientClosed) and not self._closed:
            # The connection was closed under the request (replaced after a loss): the
            # request itself is as good as lost.
            error = ConnectionLost(str(error))
        retry = None if self._closed else call.retry.after(error)
        if retry is None:
            self.fail(task, error)
            return
        if isinstance(error, ServerError):
            self.stats.resent_after_busy += 1
            self._overloaded(round_, f"server busy ({error.code})")
        elif isinstance(error, RequestTimeout):
            self.stats.resent_after_silence += 1
        else:
            self.stats.resent_after_loss += 1
            # A connection that dropped with requests in flight may drop again under the same
            # load (a proxy's request limit, say): send fewer at a time.
            self._overloaded(round_, "connection lost with requests in flight")
        # A 429 goes again at once only in the round whose signal halved the window: the
        # narrower window then spaces it out. A 429 that bounces after that, before any reply
        # succeeded, would bounce at loopback speed through its whole busy budget while the
        # server's slow replies are still pending, so it waits out a backoff instead.
        delay = retry.delay(error, paced=round_.window_cut)
        if not task.deadline.allows(delay):
            self.fail(task, error)
            return
        logger.info("sending %s for %r again (attempt %d): %s", call.method, task.job.name,
                    retry.resent + retry.busy_resent + 1, error)
        call.retry = retry
        if delay:
            round_.retry_later.append((delay, [call]))
        else:
            round_.retry_now.append(call)


    def _overloaded(self, round_: _Round, reason: str) -> None:
        """The server pushed back: halve the window, once per round of signals."""
        if round_.overload_seen:
            return
        round_.overload_seen = True
        with self._lock:
            round_.window_cut = self._window.on_overload(self._in_flight)
            size = self._window.size
        if round_.window_cut:
            logger.info("%s: keeping at most %d requests in flight", reason, size)


class _Round:
    """What one round of the drain found: follow-ups, retries, signals for the window."""

    __slots__ = ("follow_ups", "retry_now", "retry_later", "successes", "overload_seen",
                 "window_cut")

    def __init__(self) -> None:
        self.follow_ups: List[_Call] = []
        self.retry_now: List[_Call] = []
        self.retry_later: List[Tuple[float, List[_Call]]] = []
        self.successes = 0
        self.overload_seen = False  # a reply of this round said the server is overloaded
        self.window_cut = False  # and that halved the window


class _ReplyQueue:
    """Replies queued by the I/O thread, handled in rounds on one executor thread.

    ``put()`` only appends and, if no drain is running, submits one; a drain takes everything
    queued as one round, round after round until the queue is empty, so replies that arrive
    while it works are handled together in the next round.
    """

    def __init__(self, handle_round: Callable[[List[_Call]], None]) -> None:
        self._handle_round = handle_round
        self._arrived: Deque[_Call] = deque()  # each with its reply (_Call.reply)
        # Guards whether a drain is submitted or running; the queue itself needs no lock
        # (deque appends and pops are atomic).
        self._lock = threading.Lock()
        self._draining = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inspector-dispatch")

    def put(self, call: _Call) -> None:
        self._arrived.append(call)
        if self._draining:
            return  # the drain re-checks the queue under the lock before it stops
        # On the I/O thread, once the whole read is routed: its replies make one round.
        after_batch(self._start_drain)

    def _start_drain(self) -> None:
        with self._lock:
            if self._draining or not self._arrived:
                return  # a drain is running, or one started since took them all
            self._draining = True
        try:
            self._executor.submit(self._drain)
        except RuntimeError:
            # Shut down: close() failed every task already, so the reply has no one to go to.
            with self._lock:
                self._draining = False

    def _drain(self) -> None:
        arrived = self._arrived
        while True:
            self._handle_round([arrived.popleft() for _ in range(len(arrived))])
            with self._lock:
                if arrived:
                    continue
                self._draining = False
            # A reply queued between the check and the flag going down saw the flag still up
            # and left it to this drain: take it back rather than strand it.
            if not arrived:
                return
            with self._lock:
                if self._draining:
                    return  # a new drain was submitted for it
                self._draining = True

    def shutdown(self) -> None:
        on_own_thread = threading.current_thread().name.startswith("inspector-dispatch")
        self._executor.shutdown(wait=not on_own_thread)


class _RetryTimer:
    """One thread that hands delayed retries back when they fall due; nothing polls.

    Its thread starts on the first delayed retry and ends with ``stop()``.
    """

    def __init__(self, send: Callable[[List[_Call]], None]) -> None:
        self._send = send
        self._due: List[Tuple[float, int, List[_Call]]] = []
        self._order = 0  # breaks ties in the heap: lists of calls do not compare
        # Guards the heap and the stopped flag; the thread waits on it for the next due time.
        self._condition = threading.Condition(threading.Lock())
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def schedule(self, delay: float, calls: List[_Call]) -> None:
        with self._condition:
            if self._stopped:
                return  # closed: the dispatcher has failed every task already
            self._order += 1
            heapq.heappush(self._due, (time.monotonic() + delay, self._order, calls))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inspector-retry",
                                                daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped:
                    now = time.monotonic()
                    if self._due and self._due[0][0] <= now:
                        break
                    self._condition.wait(self._due[0][0] - now if self._due else None)
                if self._stopped:
                    return
                _, _, calls = heapq.heappop(self._due)
            self._send(calls)

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._due.clear()
            thread = self._thread
            self._condition.notify()
        if thread is not None and threading.current_thread() is not thread:
            thread.join()
