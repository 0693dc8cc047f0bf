"""inspector.retry: the retry policy as an immutable value."""

from __future__ import annotations

import pytest

from inspector import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    ProtocolError,
    RequestTimeout,
    ServerError,
)
from inspector.retry import Retry


def test_each_attempt_makes_a_new_value_and_the_first_is_unchanged() -> None:
    """A shared policy is never changed by one request's retries."""
    policy = Retry(resends=2)
    once = policy.after(ConnectionLost("x"))
    assert once is not None and once.resent == 1 and policy.resent == 0
    twice = once.after(RequestTimeout("y"))
    assert twice is not None and twice.resent == 2
    assert twice.after(ConnectionLost("z")) is None


def test_busy_replies_have_their_own_budget() -> None:
    """429 and 503 count against busy, not against resends."""
    policy = Retry(resends=0, busy=1)
    busy = policy.after(ServerError(503, "busy"))
    assert busy is not None and busy.busy_resent == 1 and busy.resent == 0
    assert busy.after(ServerError(429, "busy")) is None


@pytest.mark.parametrize("error", [
    ServerError(404, "no such document"), ServerError(500, "fault"), ProtocolError("bad"),
    ClientClosed("closed"), ConnectionFailed("refused", 401),
    ConnectionFailed("not a WebSocket server", final=True),
])
def test_what_cannot_succeed_again_is_not_retried(error: Exception) -> None:
    """Errors that the same request would get again end at once."""
    assert Retry().after(error) is None  # type: ignore[arg-type]


def test_a_429_paced_by_the_window_waits_for_no_timer() -> None:
    """The halved window spaces the retry out; otherwise backoff applies."""
    policy = Retry(backoff=0.4, backoff_max=10).after(ServerError(429, "busy"))
    assert policy is not None
    assert policy.delay(ServerError(429, "busy"), paced=True) == 0.0
    assert 0.2 <= policy.delay(ServerError(429, "busy"), rand=lambda: 0.999) <= 0.4
    assert policy.delay(ConnectionLost("x")) == 0.0


def test_backoff_doubles_with_jitter_up_to_its_maximum() -> None:
    """Each reconnect waits twice as long as the one before, at most backoff_max."""
    delays = list(Retry(reconnects=6, backoff=1.0, backoff_max=5.0).reconnect_delays(
        rand=lambda: 1.0))
    assert delays == [0.0, 1.0, 2.0, 4.0, 5.0, 5.0]
    low = list(Retry(reconnects=3, backoff=1.0).reconnect_delays(rand=lambda: 0.0))
    assert low == [0.0, 0.5, 1.0]
