"""inspector.pending: pending requests and their deadlines."""

from __future__ import annotations

from typing import Optional

from inspector.pending import PendingRequests


class Request:
    def __init__(self, deadline: Optional[float]) -> None:
        self.deadline = deadline


def test_requests_expire_in_deadline_order_even_when_added_out_of_order() -> None:
    """A shorter timeout added later still expires first."""
    table: PendingRequests[Request] = PendingRequests()
    for request_id, deadline in ((1, 10.0), (2, 20.0), (3, 5.0), (4, None)):
        table.add(request_id, Request(deadline))
        table.watch(request_id)
    assert table.next_deadline() == 5.0
    assert [r.deadline for r in table.pop_expired(now=10.0)] == [5.0, 10.0]
    assert len(table) == 2 and table.next_deadline() == 20.0


def test_an_answered_request_no_longer_expires() -> None:
    """Popping a reply removes it from the deadlines too."""
    table: PendingRequests[Request] = PendingRequests()
    table.add(1, Request(1.0))
    table.watch(1)
    assert table.pop(1) is not None and table.pop(1) is None
    assert table.next_deadline() is None and table.pop_expired(now=5.0) == []


def test_take_all_empties_the_table() -> None:
    """The failure swap takes every pending request at once."""
    table: PendingRequests[Request] = PendingRequests()
    table.add(1, Request(1.0))
    table.add(2, Request(None))
    assert len(table.take_all()) == 2 and len(table) == 0 and table.get(1) is None
