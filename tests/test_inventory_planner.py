"""The scan's decisions, with plain values."""

from __future__ import annotations

import pytest

from inspector import InspectorError, InvalidArgument
from inspector.inventory.planner import (
    DeletionPlan,
    StaleListing,
    check_threshold,
    named_ids,
    needs_inspection,
    plan_deletions,
    selection_key,
    targets,
)


def test_deletions_within_the_threshold_are_allowed():
    """Up to the threshold's share of the listed documents may go missing at once."""
    assert plan_deletions(listed_before=10, missing=2, threshold=0.2) == DeletionPlan(10, 2)
    assert plan_deletions(listed_before=0, missing=0, threshold=0.0).fraction == 0.0


def test_too_many_missing_is_refused_with_the_counts():
    """Beyond the threshold the plan raises StaleListing, an InspectorError saying why."""
    with pytest.raises(StaleListing, match=r"3 of the 10 .*30%.*--stale-threshold") as refused:
        plan_deletions(listed_before=10, missing=3, threshold=0.2)
    assert isinstance(refused.value, InspectorError)
    assert refused.value.plan == DeletionPlan(10, 3)


def test_an_empty_listing_is_refused():
    """A listing that lacks every document is the broken-server case the fail-safe exists for."""
    with pytest.raises(StaleListing):
        plan_deletions(listed_before=40_000, missing=40_000, threshold=0.2)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.2", True, None])
def test_threshold_must_be_a_fraction(bad):
    """A stale threshold outside [0, 1], or not a number, is an InvalidArgument naming it."""
    with pytest.raises(InvalidArgument, match="stale_threshold"):
        check_threshold(bad)


def test_targets_named_first_then_listed_each_once():
    """Named ids come first (marked listed if the listing has them), then the rest listed."""
    assert list(targets(["b", "a", "b"], ["a", "c", "c", "d"])) == [
        ("b", False), ("a", True), ("c", True), ("d", True)]
    assert list(targets(["x"], None)) == [("x", False)]


def test_selection_key_ignores_order_and_repeats():
    """The same documents from the same server are the same selection, in any order."""
    assert selection_key("ws://s", ["a", "b"], False) == selection_key("ws://s", ["b", "a", "a"],
                                                                       False)
    assert selection_key("ws://s", ["a"], False) != selection_key("ws://s", ["a"], True)
    assert selection_key("ws://s", ["a"], False) != selection_key("ws://t", ["a"], False)


def test_needs_inspection():
    """Inspect what is new, changed, or everything with full; skip what matches."""
    assert needs_inspection(None, "updatedAt:1", full=False)
    assert needs_inspection("updatedAt:1", "updatedAt:2", full=False)
    assert not needs_inspection("updatedAt:1", "updatedAt:1", full=False)
    assert needs_inspection("updatedAt:1", "updatedAt:1", full=True)


def test_named_ids_are_validated():
    """Ids are kept in order, once each; an empty or non-string id is refused."""
    assert named_ids(["a", "b", "a"]) == ["a", "b"]
    with pytest.raises(InvalidArgument, match="document_ids"):
        named_ids(["a", ""])
