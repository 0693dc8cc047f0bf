"""When a failed request, or a lost connection, is tried again: a policy as a value.

In the spirit of urllib3's ``Retry``: a :class:`Retry` is immutable, so one policy is shared by
every request of an inspector (and by ``list_documents()`` and the reopening of the
connection); each attempt that fails makes a new value with one more attempt counted. It holds
no thread, socket or clock: the caller asks it for a decision and acts on it.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator, Optional

import attrs

from inspector.exceptions import (
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    RequestTimeout,
    ServerError,
)

__all__ = ["Retry"]


@attrs.frozen
class Retry:
    """How often, and how soon, to try again.

    Every method of the documents API is read-only, so sending a request again is always
    safe; what limits it is kindness to the server and the caller's patience.

    Attributes:
        resends: Times one request is sent again after its connection was lost or it went
            unanswered for ``request_timeout``.
        busy: Times one request is sent again after a busy reply (429, 503).
        reconnects: Attempts to open the connection in one outage before giving up.
        backoff: The first delay in seconds; it doubles with each attempt, with jitter.
        backoff_max: The longest delay.
        resent: Resends used so far (after loss or silence).
        busy_resent: Resends used so far after busy replies.
    """

    resends: int = 5
    busy: int = 20
    reconnects: int = 5
    backoff: float = 0.05
    backoff_max: float = 2.0
    resent: int = 0
    busy_resent: int = 0

    def after(self, error: InspectorError) -> Optional[Retry]:
        """The policy for the next attempt after ``error``; None to give up with it.

        Never retried: an error reply other than 429/503, a protocol error, a refused
        handshake that is final, the client's own close.
        """
        if isinstance(error, ServerError):
            if not error.retryable or self.busy_resent >= self.busy:
                return None
            return attrs.evolve(self, busy_resent=self.busy_resent + 1)
        if isinstance(error, (ConnectionLost, RequestTimeout)) or (
            isinstance(error, ConnectionFailed) and not error.final
        ):
            if self.resent >= self.resends:
                return None
            return attrs.evolve(self, resent=self.resent + 1)
        return None

    def delay(
        self, error: InspectorError, *, paced: bool = False,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before the attempt that follows ``error``.

        Args:
            error: Why the last attempt failed.
            paced: The in-flight window, just narrowed, already spaces requests out: a 429
                ("too many in flight") then needs no timer of its own.
            rand: A number in [0, 1), for the jitter.
        """
        if isinstance(error, ServerError):
            if error.code == 429 and paced:
                return 0.0
            return self._backoff(self.busy_resent - 1, rand)
        # A lost connection is reopened with its own backoff, and silence has waited already.
        return 0.0

    def reconnect_delays(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """The wait before each attempt to open the connection in one outage: 0 first."""
        for attempt in range(self.reconnects):
            yield 0.0 if attempt == 0 else self._backoff(attempt - 1, rand)

    def _backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        # Exponential, with jitter over the upper half: clients that failed together spread
        # out, and none retries sooner than half the schedule.
        ceiling = min(self.backoff_max, self.backoff * 2.0 ** max(attempt, 0))
        return float(ceiling / 2 + rand() * ceiling / 2)

