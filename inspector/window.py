"""How many requests to keep in flight: an adaptive window, with no thread or clock.

The window follows TCP's congestion control. It starts modest and, while replies succeed,
grows by one per reply, which doubles it every round trip (slow start), up to the ceiling
``max_in_flight``. A sign that the server is overloaded (a 429 or 503 reply, a connection lost
with requests in flight) halves it; from then on it grows by one per window of replies that
succeed (additive increase), back to just below where the server pushed back. The step onto
that level waits ``PROBE_EVERY`` windows of successes; once it succeeds, growth is additive
again. A server with a fixed limit would otherwise be pushed over it every few dozen round
trips, each time costing a 429 and a halving (measured: a sawtooth between half the limit and
the limit, at three quarters of its throughput). A server that never pushes back therefore
sees the window reach its ceiling within a few round trips, and a busy one gets fewer requests
at once instead of the same burst again.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["FlowWindow", "INITIAL_WINDOW"]

INITIAL_WINDOW = 64  # requests in flight before any reply has been seen
PROBE_EVERY = 256  # windows of successes before stepping onto where the server pushed back


class FlowWindow:
    """The number of requests allowed in flight, and how it moves.

    Args:
        ceiling: The most it may grow to (``max_in_flight``); None: no ceiling.
        initial: Where it starts.
    """

    def __init__(self, ceiling: Optional[int], initial: int = INITIAL_WINDOW) -> None:
        self.ceiling = ceiling
        self.size = initial if ceiling is None else min(initial, ceiling)
        self.slow_start = True  # until the first sign of overload
        self._credit = 0  # successes since the last growth step (additive increase)
        self._since_cut = 1  # successes since the last cut: one cut per round of signals
        self._pushed_back_at: Optional[int] = None  # the size at the last sign of overload

    def __repr__(self) -> str:
        phase = "slow start" if self.slow_start else "additive increase"
        return f"<FlowWindow {self.size} of {self.ceiling}, {phase}>"

    def room(self, in_flight: int) -> int:
        """How many more requests may go out now."""
        return max(self.size - in_flight, 0)

    def on_success(self, count: int = 1) -> None:
        """``count`` replies came back well."""
        self._since_cut += count
        if self.ceiling is not None and self.size >= self.ceiling:
            return
        if self.slow_start:
            self.size += count
        else:
            self._credit += count
            while self._credit >= self._step_cost():
                self._credit -= self._step_cost()
                self.size += 1
                if self._pushed_back_at is not None and self.size > self._pushed_back_at:
                    self._pushed_back_at = None  # past it with no overload: the limit moved
        if self.ceiling is not None and self.size > self.ceiling:
            self.size = self.ceiling

    def _step_cost(self) -> int:
        """Successes the next step of additive increase takes."""
        if self._pushed_back_at is not None and self.size + 1 == self._pushed_back_at:
            return self.size * PROBE_EVERY  # onto the level that was too much: slowly
        return self.size

    def on_overload(self, in_flight: int) -> bool:
        """The server pushed back with ``in_flight`` requests out; return whether it halved.

        The many 429s of one burst, or the many requests one lost connection takes with it,
        are one signal: the window is cut again only after a reply succeeded since the last
        cut.
        """
        if not self._since_cut:
            return False
        self._pushed_back_at = min(self.size, max(in_flight, 1))
        self.size = max(1, self._pushed_back_at // 2)
        self.slow_start = False
        self._credit = 0
        self._since_cut = 0
        return True

    @property
    def at_floor(self) -> bool:
        """Whether it is down to one request at a time."""
        return self.size <= 1
