"""BatchPlan: batches cut lazily, failed batches submitted again, then given up. No cluster."""

from __future__ import annotations

import itertools
from typing import Iterator

import pytest

from inspector import InvalidArgument
from inspector.contrib.dask import BatchFailed, BatchPlan


def test_ids_are_cut_into_batches_in_order() -> None:
    """Batches of batch_size, the last one shorter, then None."""
    plan = BatchPlan([f"d{n}" for n in range(7)], batch_size=3, batch_attempts=2)
    batches = [plan.next_batch() for _ in range(4)]
    assert [b.document_ids for b in batches[:3] if b] == [
        ("d0", "d1", "d2"), ("d3", "d4", "d5"), ("d6",)]
    assert batches[3] is None and plan.next_batch() is None


def test_ids_are_read_only_as_batches_are_needed() -> None:
    """A million ids (here: endless ones) are never read ahead of the batches asked for."""
    read = []

    def endless() -> Iterator[str]:
        for n in itertools.count():
            read.append(n)
            yield f"d{n}"

    plan = BatchPlan(endless(), batch_size=100, batch_attempts=1)
    for _ in range(3):
        plan.next_batch()
    assert len(read) == 300


def test_a_failed_batch_is_submitted_again_before_new_ones() -> None:
    """A batch whose worker died goes out again first, counted as another attempt."""
    plan = BatchPlan(["a", "b", "c", "d"], batch_size=2, batch_attempts=2)
    first = plan.next_batch()
    assert first is not None and first.attempts == 1
    assert plan.failed(first, RuntimeError("worker died")) == []
    again = plan.next_batch()
    assert again is first and again.attempts == 2
    second = plan.next_batch()
    assert second is not None and second.document_ids == ("c", "d")


def test_a_batch_that_keeps_failing_is_reported_per_document() -> None:
    """After batch_attempts, each document is reported failed with the cause; never again."""
    plan = BatchPlan(["a", "b"], batch_size=2, batch_attempts=2)
    batch = plan.next_batch()
    assert batch is not None
    plan.failed(batch, RuntimeError("worker died"))
    assert plan.next_batch() is batch
    outcomes = plan.failed(batch, KeyError("lost"))
    assert [document_id for document_id, _ in outcomes] == ["a", "b"]
    error = outcomes[0][1]
    assert isinstance(error, BatchFailed)
    assert "failed 2 times" in str(error) and "KeyError" in str(error)
    assert plan.next_batch() is None


@pytest.mark.parametrize("options, named", [
    ({"batch_size": 0, "batch_attempts": 1}, "batch_size"),
    ({"batch_size": True, "batch_attempts": 1}, "batch_size"),
    ({"batch_size": 1, "batch_attempts": 0}, "batch_attempts"),
])
def test_bad_numbers_are_refused_by_name(options: dict, named: str) -> None:
    """batch_size and batch_attempts are validated where they enter."""
    with pytest.raises(InvalidArgument, match=named):
        BatchPlan([], **options)


def test_a_batch_not_worth_retrying_is_given_up_at_once() -> None:
    """again=False (its workers kept dying) reports its documents on the first failure."""
    plan = BatchPlan(["a"], batch_size=1, batch_attempts=3)
    batch = plan.next_batch()
    assert batch is not None
    [(document_id, error)] = plan.failed(batch, RuntimeError("killed"), again=False)
    assert document_id == "a" and "failed 1 time," in str(error)
    assert plan.next_batch() is None
