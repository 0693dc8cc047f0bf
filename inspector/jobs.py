"""What one piece of work asks of the server, reply by reply: pure, no thread or socket.

A job turns each reply into the requests that follow from it, and knows when it is finished and
what its result is. The dispatcher (:mod:`inspector.dispatcher`) sends the requests, routes the
replies back and handles retries; a job only decides, so it is tested with plain values. A job
is touched by one thread at a time (the dispatcher's), so it holds no lock.

* :class:`InspectionJob`: one document (``docs/protocol.md``, "Inspecting a document"):
  ``GetDocument``, then every container, then every widget, each follow-up as soon as the reply
  that names it arrives. The result is assembled in document order whatever order the replies
  came in: containers in the document's order, widgets in each container's order, each widget
  once, attributed to the first container (in document order) that lists it.
* :class:`ListingJob`: every document id, following ``ListDocuments``' ``nextCursor``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple, Union

import attrs

from inspector.display import printable
from inspector.exceptions import ProtocolError
from inspector.models import Document, Inspection, Widget, WidgetContainer
from inspector.serialization import from_wire

__all__ = [
    "GET_CONTAINER",
    "GET_DOCUMENT",
    "GET_WIDGET",
    "LIST_DOCUMENTS",
    "InspectionJob",
    "Job",
    "ListingJob",
    "Request",
]

GET_DOCUMENT = "GetDocument"
GET_CONTAINER = "GetWidgetContainer"
GET_WIDGET = "GetWidgetProperties"
LIST_DOCUMENTS = "ListDocuments"

Request = Tuple[str, Mapping[str, Any]]
"""A request a job needs: (method, params)."""


class Job:
    """The interface of a job, for the dispatcher."""

    name: str  # what the job is about, for messages (a document id)
    finished: bool  # the result is ready

    def first_requests(self) -> List[Request]:
        """The requests that start the job."""
        raise NotImplementedError

    def on_reply(self, method: str, params: Mapping[str, Any], result: Any) -> List[Request]:
        """Take the result of one of the job's requests; return the requests that follow.

        Raises:
            ProtocolError: the result has the wrong shape.
        """
        raise NotImplementedError

    def result(self) -> Any:
        """The job's result, once ``finished``."""
        raise NotImplementedError


class InspectionJob(Job):
    """One document's inspection.

    Args:
        document_id: The document.
        should_inspect: Called with the document once its ``GetDocument`` reply is in; when it
            returns False, the job finishes there and its result is that :class:`Document`.
    """

    def __init__(
        self, document_id: str,
        should_inspect: Optional[Callable[[Document], bool]] = None,
    ) -> None:
        self.name = document_id
        self.finished = False
        self._should_inspect = should_inspect
        self._document: Optional[Document] = None
        self._containers: Dict[str, WidgetContainer] = {}
        self._widgets: Dict[str, Widget] = {}
        self._asked_by: Dict[str, str] = {}  # widget id -> the container that listed it first
        self._outstanding = 0  # requests asked for whose replies are not in yet
        self._skipped = False  # should_inspect said no: the result is the document alone

    def first_requests(self) -> List[Request]:
        self._outstanding = 1
        return [(GET_DOCUMENT, {"id": self.name})]

    def on_reply(self, method: str, params: Mapping[str, Any], result: Any) -> List[Request]:
        object_id = params["id"]
        follow_ups: List[Request] = []
        if method == GET_WIDGET:
            container_id = self._asked_by.get(object_id)
            if type(result) is dict:
                # The reply's object was decoded for this reply alone, so the container goes
                # into it as is: from_wire's ``fields`` would copy it, widget after widget.
                result["containerId"] = container_id
                widget = from_wire(result, Widget, method=method)
            else:  # not an object: from_wire says so
                widget = from_wire(result, Widget, method=method, container_id=container_id)
            self._check_id(method, object_id, widget.id)
            self._widgets[object_id] = widget
        elif method == GET_CONTAINER:
            container = from_wire(result, WidgetContainer, method=method)
            self._check_id(method, object_id, container.id)
            self._containers[object_id] = container
            for widget_id in container.widget_ids:
                if widget_id not in self._asked_by:
                    self._asked_by[widget_id] = object_id
                    follow_ups.append((GET_WIDGET, {"id": widget_id}))
        else:
            document = from_wire(result, Document, method=method)
            self._check_id(method, object_id, document.id)
            self._document = document
            if self._should_inspect is None or self._should_inspect(document):
                for container_id in dict.fromkeys(document.widget_container_ids):
                    follow_ups.append((GET_CONTAINER, {"id": container_id}))
            else:
                self._outstanding = 0
                self.finished = True
                self._skipped = True
                return []
        self._outstanding += len(follow_ups) - 1
        self.finished = self._outstanding == 0
        return follow_ups

    @staticmethod
    def _check_id(method: str, asked: str, described: str) -> None:
        if described != asked:
            raise ProtocolError(
                f"{method} {printable(asked, quote=True)}: the reply describes "
                f"{printable(described, quote=True)}"
            )

    def result(self) -> Union[Inspection, Document]:
        document = self._document
        assert document is not None and self.finished  # the last reply is never the first
        if self._skipped:
            return document
        containers = [self._containers[c] for c in dict.fromkeys(document.widget_container_ids)]
        widgets: List[Widget] = []
        placed: Set[str] = set()
        for container in containers:
            for widget_id in container.widget_ids:
                if widget_id in placed:
                    continue
                placed.add(widget_id)
                widget = self._widgets[widget_id]
                if widget.container_id != container.id:
                    # Replies came out of order: a later container asked for it first.
                    widget = attrs.evolve(widget, container_id=container.id)
                widgets.append(widget)
        return Inspection(document, tuple(containers), tuple(widgets))


class ListingJob(Job):
    """Every document id the caller may read, page by page.

    Asks for ``page_size`` ids at a time and follows ``nextCursor`` until it is absent or
    null; a server that does not page answers everything at once, with no cursor.

    Args:
        page_size: The ``limit`` sent with each page.
    """

    def __init__(self, page_size: int) -> None:
        self.name = "the document listing"
        self.finished = False
        self._page_size = page_size
        self._ids: Dict[str, None] = {}  # in order, each once
        self._cursors_seen: Set[str] = set()

    def first_requests(self) -> List[Request]:
        return [(LIST_DOCUMENTS, {"limit": self._page_size})]

    def on_reply(self, method: str, params: Mapping[str, Any], result: Any) -> List[Request]:
        ids = result.get("documentIds") if isinstance(result, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProtocolError(f"{LIST_DOCUMENTS}: field 'documentIds': expected a list of "
                                "strings")
        self._ids.update(dict.fromkeys(ids))
        cursor = result.get("nextCursor")
        if cursor is None:
            self.finished = True
            return []
        if not isinstance(cursor, str):
            raise ProtocolError(f"{LIST_DOCUMENTS}: field 'nextCursor': expected a string or "
                                "null")
        if cursor in self._cursors_seen:
            # A server that hands out the same cursor again would page for ever.
            raise ProtocolError(f"{LIST_DOCUMENTS}: the server repeated a cursor")
        self._cursors_seen.add(cursor)
        return [(LIST_DOCUMENTS, {"cursor": cursor, "limit": self._page_size})]

    def result(self) -> List[str]:
        return list(self._ids)
