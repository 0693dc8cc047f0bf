"""The scan's decisions, as plain functions of plain values: no database, socket or clock.

* Which documents a run targets (:func:`targets`) and which runs are "the same selection"
  (:func:`selection_key`), so that the next scan of it resumes a stopped one.
* Whether a document must be inspected or is unchanged since it was stored
  (:func:`needs_inspection`).
* Whether the documents missing from a listing may be marked deleted (:func:`plan_deletions`):
  an empty or truncated listing from a broken server must not erase the inventory.

The shell that obtains inspections (:mod:`inspector.inventory.scan`, or a Dask client) and the
store call these; they are tested with plain values.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

import attrs

from inspector.exceptions import InspectorError, InvalidArgument

__all__ = [
    "DEFAULT_STALE_THRESHOLD",
    "DeletionPlan",
    "StaleListing",
    "check_threshold",
    "needs_inspection",
    "plan_deletions",
    "selection_key",
    "targets",
]

#: The largest fraction of the documents listed before that one run may mark deleted.
DEFAULT_STALE_THRESHOLD = 0.2


class StaleListing(InspectorError):
    """A listing would mark more documents deleted than the threshold allows; the run refused.

    Attributes:
        plan: The counts that were refused.
        run_id: The refused run, as stored (set by the store).
    """

    def __init__(self, plan: DeletionPlan, threshold: float) -> None:
        super().__init__(
            f"refused: {plan.missing} of the {plan.listed_before} documents listed before are "
            f"missing from this listing ({plan.fraction:.0%}, more than the stale threshold "
            f"{threshold:.0%}); if they really are gone, scan again with a higher "
            f"--stale-threshold"
        )
        self.plan = plan
        self.threshold = threshold
        self.run_id: Optional[int] = None

    def __reduce__(self) -> Tuple[Any, ...]:
        # Rebuilt from its parts, not from the message that ``args`` holds; run_id with them.
        return (type(self), (self.plan, self.threshold), self.__dict__)


@attrs.frozen
class DeletionPlan:
    """How many documents listed before are missing now.

    Attributes:
        listed_before: Stored, not deleted, documents that an earlier listing named.
        missing: Those of them this listing does not name: to be marked deleted.
    """

    listed_before: int
    missing: int

    @property
    def fraction(self) -> float:
        """The share of the documents listed before that are missing (0 when none were)."""
        return self.missing / self.listed_before if self.listed_before else 0.0


def check_threshold(threshold: float) -> float:
    """Validate a stale threshold: a fraction from 0 to 1.

    Raises:
        InvalidArgument: Not a number in [0, 1].
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            0.0 <= threshold <= 1.0):
        raise InvalidArgument(f"stale_threshold: expected a fraction from 0 to 1, got "
                              f"{threshold!r}")
    return float(threshold)


def plan_deletions(*, listed_before: int, missing: int, threshold: float) -> DeletionPlan:
    """Allow marking ``missing`` documents deleted, or refuse.

    Args:
        listed_before: Documents an earlier listing named that are stored and not deleted.
        missing: How many of them this listing lacks.
        threshold: The largest fraction allowed (see :func:`check_threshold`).

    Raises:
        StaleListing: ``missing / listed_before`` is above ``threshold``.
    """
    plan = DeletionPlan(listed_before=listed_before, missing=missing)
    if plan.fraction > threshold:
        raise StaleListing(plan, threshold)
    return plan


def targets(named: Sequence[str], listed: Optional[Iterable[str]]) -> Iterator[Tuple[str, bool]]:
    """The documents a run scans, in order, each once: the named ones, then the listed ones.

    Yields:
        (document id, whether the listing named it).
    """
    listed_ids = dict.fromkeys(listed) if listed is not None else {}
    named_ids = dict.fromkeys(named)
    for document_id in named_ids:
        yield document_id, document_id in listed_ids
    for document_id in listed_ids:
        if document_id not in named_ids:
            yield document_id, True


def selection_key(server: Optional[str], named: Sequence[str], list_all: bool) -> str:
    """Equal for scans of the same documents from the same server, whatever the order."""
    canonical = json.dumps({"server": server, "named": sorted(set(named)), "all": list_all},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def needs_inspection(stored_fingerprint: Optional[str], fingerprint: str, *, full: bool) -> bool:
    """Whether a document must be inspected whole, given its ``GetDocument`` reply.

    Args:
        stored_fingerprint: That of its current stored version; None when there is none.
        fingerprint: That of the reply just received.
        full: Inspect everything (``--full``).
    """
    return full or stored_fingerprint is None or stored_fingerprint != fingerprint


def named_ids(document_ids: Iterable[str]) -> List[str]:
    """The ids given, each once, in order; each must be a non-empty string.

    Raises:
        InvalidArgument: An id is not a non-empty string.
    """
    ids = list(dict.fromkeys(document_ids))
    for document_id in ids:
        if not isinstance(document_id, str) or not document_id:
            raise InvalidArgument(f"document_ids: expected non-empty strings, got "
                                  f"{document_id!r}")
    return ids
