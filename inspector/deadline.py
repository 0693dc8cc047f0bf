"""One deadline carried through several steps, instead of "time left" sums in each.

As websockets' ``Deadline``: made once from a timeout, asked at each step how long is left.
"""

from __future__ import annotations

import time
from typing import Optional

__all__ = ["Deadline"]


class Deadline:
    """The moment a timeout runs out, on the monotonic clock; None: never.

    Args:
        timeout: Seconds from now; None for no limit.
    """

    __slots__ = ("at",)

    def __init__(self, timeout: Optional[float]) -> None:
        self.at = None if timeout is None else time.monotonic() + timeout

    def __repr__(self) -> str:
        left = self.timeout()
        return "<Deadline never>" if left is None else f"<Deadline in {left:.3f}s>"

    def timeout(self, cap: Optional[float] = None) -> Optional[float]:
        """Seconds left (never negative), at most ``cap``; None when neither limits."""
        if self.at is None:
            return cap
        left = max(self.at - time.monotonic(), 0.0)
        return left if cap is None else min(left, cap)

    @property
    def expired(self) -> bool:
        """Whether the moment has passed."""
        return self.at is not None and time.monotonic() >= self.at

    def allows(self, delay: float) -> bool:
        """Whether something that starts ``delay`` seconds from now starts in time."""
        return self.at is None or time.monotonic() + delay < self.at
