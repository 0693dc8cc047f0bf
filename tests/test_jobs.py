"""inspector.jobs: what a document's inspection and the listing ask for, reply by reply."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from inspector import Document, Inspection, ProtocolError
from inspector.jobs import (
    GET_CONTAINER,
    GET_DOCUMENT,
    GET_WIDGET,
    LIST_DOCUMENTS,
    InspectionJob,
    ListingJob,
)

DOCUMENT = {"id": "d", "type": "biDashboard", "name": "D", "widgetContainerIds": ["d/c1", "d/c2"]}
CONTAINERS: Dict[str, Dict[str, Any]] = {
    "d/c1": {"id": "d/c1", "widgetIds": ["d/w1", "d/shared"]},
    "d/c2": {"id": "d/c2", "widgetIds": ["d/shared", "d/w2"]},
}


def widget(widget_id: str) -> Dict[str, Any]:
    return {"id": widget_id, "type": "chart"}


def test_an_inspection_asks_for_the_document_then_containers_then_widgets() -> None:
    """Each reply yields exactly the follow-ups it names, each widget once."""
    job = InspectionJob("d")
    assert job.first_requests() == [(GET_DOCUMENT, {"id": "d"})]
    assert job.on_reply(GET_DOCUMENT, {"id": "d"}, DOCUMENT) == [
        (GET_CONTAINER, {"id": "d/c1"}), (GET_CONTAINER, {"id": "d/c2"})]
    assert job.on_reply(GET_CONTAINER, {"id": "d/c2"}, CONTAINERS["d/c2"]) == [
        (GET_WIDGET, {"id": "d/shared"}), (GET_WIDGET, {"id": "d/w2"})]
    assert job.on_reply(GET_CONTAINER, {"id": "d/c1"}, CONTAINERS["d/c1"]) == [
        (GET_WIDGET, {"id": "d/w1"})]
    assert not job.finished


def test_the_result_is_in_document_order_whatever_the_reply_order() -> None:
    """Widgets come in container order, a shared widget under the first container."""
    job = InspectionJob("d")
    job.first_requests()
    job.on_reply(GET_DOCUMENT, {"id": "d"}, DOCUMENT)
    job.on_reply(GET_CONTAINER, {"id": "d/c2"}, CONTAINERS["d/c2"])
    job.on_reply(GET_CONTAINER, {"id": "d/c1"}, CONTAINERS["d/c1"])
    for widget_id in ("d/w2", "d/shared", "d/w1"):
        assert not job.finished
        job.on_reply(GET_WIDGET, {"id": widget_id}, widget(widget_id))
    assert job.finished
    result = job.result()
    assert isinstance(result, Inspection)
    assert [(w.id, w.container_id) for w in result.widgets] == [
        ("d/w1", "d/c1"), ("d/shared", "d/c1"), ("d/w2", "d/c2")]
    assert [c.id for c in result.containers] == ["d/c1", "d/c2"]


def test_a_document_without_containers_finishes_on_its_first_reply() -> None:
    """A dataset has nothing to follow."""
    job = InspectionJob("ds")
    job.first_requests()
    assert job.on_reply(GET_DOCUMENT, {"id": "ds"}, {"id": "ds", "type": "dataset"}) == []
    assert job.finished and job.result().widgets == ()


def test_should_inspect_false_finishes_with_the_document_alone() -> None:
    """An unchanged document costs one request: the Document is the result."""
    seen: List[Document] = []
    job = InspectionJob("d", should_inspect=lambda d: seen.append(d) is not None)
    job.first_requests()
    assert job.on_reply(GET_DOCUMENT, {"id": "d"}, DOCUMENT) == []
    assert job.finished and job.result() == seen[0]


def test_a_reply_describing_another_object_is_a_protocol_error() -> None:
    """A reply for the wrong id is refused, naming both ids."""
    job = InspectionJob("d")
    job.first_requests()
    with pytest.raises(ProtocolError, match="'d'.*'other'"):
        job.on_reply(GET_DOCUMENT, {"id": "d"}, {**DOCUMENT, "id": "other"})


def test_the_listing_follows_cursors_to_the_end() -> None:
    """Pages are joined in order, each id once, until nextCursor is null."""
    job = ListingJob(page_size=2)
    assert job.first_requests() == [(LIST_DOCUMENTS, {"limit": 2})]
    follow = job.on_reply(LIST_DOCUMENTS, {}, {"documentIds": ["a", "b"], "nextCursor": "b"})
    assert follow == [(LIST_DOCUMENTS, {"cursor": "b", "limit": 2})]
    assert job.on_reply(LIST_DOCUMENTS, {}, {"documentIds": ["b", "c"], "nextCursor": None}) == []
    assert job.finished and job.result() == ["a", "b", "c"]


def test_a_listing_from_a_server_that_does_not_page_is_one_reply() -> None:
    """No nextCursor: everything came at once."""
    job = ListingJob(page_size=2)
    job.first_requests()
    assert job.on_reply(LIST_DOCUMENTS, {}, {"documentIds": ["a", "b", "c"]}) == []
    assert job.result() == ["a", "b", "c"]


@pytest.mark.parametrize("reply, message", [
    ({"documentIds": "a"}, "documentIds"),
    ({"documentIds": ["a"], "nextCursor": 7}, "nextCursor"),
    ([], "documentIds"),
])
def test_a_malformed_listing_is_a_protocol_error(reply: Any, message: str) -> None:
    """The field that is wrong is named."""
    job = ListingJob(page_size=2)
    job.first_requests()
    with pytest.raises(ProtocolError, match=message):
        job.on_reply(LIST_DOCUMENTS, {}, reply)


def test_a_repeated_cursor_ends_the_listing_with_an_error() -> None:
    """A server that hands out the same cursor again would page for ever."""
    job = ListingJob(page_size=1)
    job.first_requests()
    job.on_reply(LIST_DOCUMENTS, {}, {"documentIds": ["a"], "nextCursor": "x"})
    with pytest.raises(ProtocolError, match="repeated a cursor"):
        job.on_reply(LIST_DOCUMENTS, {}, {"documentIds": ["b"], "nextCursor": "x"})
