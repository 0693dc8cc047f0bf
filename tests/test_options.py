"""inspector.options and inspector.deadline: arguments checked where they enter."""

from __future__ import annotations

import math
from typing import Any

import pytest

from inspector import InvalidArgument
from inspector.deadline import Deadline
from inspector.options import USE_DEFAULT, check_count, check_seconds, or_default


@pytest.mark.parametrize("value", [0, -1, math.nan, "5", True, [1]])
def test_a_bad_duration_is_refused_by_name(value: Any) -> None:
    """Zero, negative, NaN and non-numbers name the argument."""
    with pytest.raises(InvalidArgument, match="timeout"):
        check_seconds("timeout", value)


@pytest.mark.parametrize("value", [math.inf, 1e300])
def test_an_endless_duration_means_no_limit(value: float) -> None:
    """inf and anything over 30 years are None, not an overflow later."""
    assert check_seconds("timeout", value) is None
    with pytest.raises(InvalidArgument, match="finite"):
        check_seconds("backoff", value, allow_none=False)


def test_counts_are_whole_numbers_at_least_their_minimum() -> None:
    """-1 retries, 0 in flight and 2.5 are refused."""
    assert check_count("retries", 0) == 0
    assert check_count("max_in_flight", None, allow_none=True) is None
    for name, value, minimum in (("retries", -1, 0), ("max_in_flight", 0, 1), ("x", 2.5, 0)):
        with pytest.raises(InvalidArgument, match=name):
            check_count(name, value, minimum=minimum)


def test_the_default_marker_is_not_none() -> None:
    """USE_DEFAULT takes the configured value; None stays None."""
    assert or_default(USE_DEFAULT, 3.0) == 3.0
    assert or_default(None, 3.0) is None
    assert repr(USE_DEFAULT) == "USE_DEFAULT"


def test_a_deadline_counts_down_and_caps() -> None:
    """timeout() is what is left, at most the cap; None never expires."""
    assert Deadline(None).timeout() is None and Deadline(None).timeout(2.0) == 2.0
    deadline = Deadline(100.0)
    left = deadline.timeout()
    assert left is not None and 99.0 < left <= 100.0
    assert deadline.timeout(1.0) == 1.0 and deadline.allows(50.0) and not deadline.allows(200.0)
    assert not deadline.expired and Deadline(1e-9).timeout() is not None
