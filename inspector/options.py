"""Public arguments checked where they enter, and the one marker for "use the default".

Every public number is validated here, so that a bad value fails at once with an
:class:`~inspector.exceptions.InvalidArgument` naming it, rather than deep in a thread where it
would take other callers down with it (a ``timeout=1e300`` once overflowed inside the I/O
thread's ``select``).
"""

from __future__ import annotations

import enum
import math
import threading
from typing import Any, Optional, TypeVar, Union

from inspector.exceptions import InvalidArgument

__all__ = ["USE_DEFAULT", "Default", "check_count", "check_seconds", "or_default"]


class Default(enum.Enum):
    """The type of :data:`USE_DEFAULT`."""

    USE_DEFAULT = "USE_DEFAULT"

    def __repr__(self) -> str:
        return "USE_DEFAULT"


# "Not given: use the configured value", as opposed to None, which means "no limit".
USE_DEFAULT = Default.USE_DEFAULT

T = TypeVar("T")

# Longer than this is no limit in practice (over 30 years), and waiting primitives refuse
# values past threading.TIMEOUT_MAX, so such a value is taken as None rather than refused.
_NO_LIMIT_BEYOND = min(1e9, threading.TIMEOUT_MAX)


def or_default(value: Union[T, Default], default: T) -> T:
    """``value``, or ``default`` where the caller passed :data:`USE_DEFAULT`."""
    return default if isinstance(value, Default) else value


def check_seconds(name: str, value: Any, *, allow_none: bool = True) -> Optional[float]:
    """Return a duration in seconds, or None for no limit.

    Accepts an int or float greater than zero; ``inf`` (and anything over 30 years) means no
    limit, returned as None.

    Raises:
        InvalidArgument: not a number, NaN, zero or negative, or None where a limit is needed.
    """
    if value is None:
        if allow_none:
            return None
        raise InvalidArgument(f"{name} must be a number of seconds, not None")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(
            f"{name} must be a number of seconds or None, not {type(value).__name__}"
        )
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0:
        raise InvalidArgument(f"{name} must be greater than zero, not {value!r}")
    if seconds > _NO_LIMIT_BEYOND:
        if not allow_none:
            raise InvalidArgument(f"{name} must be finite, not {value!r}")
        return None
    return seconds


def check_count(
    name: str, value: Any, *, minimum: int = 0, allow_none: bool = False
) -> Optional[int]:
    """Return a whole number at least ``minimum`` (or None where that means no limit).

    Raises:
        InvalidArgument: not an int, or below ``minimum``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        none = " or None" if allow_none else ""
        raise InvalidArgument(f"{name} must be a whole number{none}, not {value!r}")
    if value < minimum:
        raise InvalidArgument(f"{name} must be at least {minimum}, not {value}")
    return value
