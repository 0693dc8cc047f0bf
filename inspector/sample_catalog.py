"""The documents the sample server knows: a built-in catalog plus generated documents.

Two sources answer every lookup, and neither does any I/O after import:

* The *catalog*, ``sample_catalog.json`` shipped as package data: a small company's worth of
  BI dashboards, slide decks, datasets and folders, with the awkward cases a client must handle
  (a widget listed by two containers, older containers that send a single ``widgetId``, documents
  without widgets, wire fields the protocol does not name). The file holds the wire objects
  exactly as they are sent, in three lists: ``documents``, ``containers`` and ``widgets``.
* *Generated* documents, computed from the id alone so that a document with 20,000 widgets costs
  no memory until it is asked for::

      gen-<C>x<W>[-legacy][-<tag>]      e.g. gen-100x50, gen-20x1-legacy, gen-5x2-n17

  ``C`` containers (``gen-100x50/c1`` ... ``/c100``) of ``W`` widgets each (``gen-100x50/c7/w1``
  ... ``/w50``). ``-legacy`` makes every container send a single ``widgetId`` (so ``W`` must be
  1). ``-<tag>`` (letters and digits) only makes the id distinct, for many documents of one
  shape. Numbers are written without leading zeros and run from 1 to :data:`MAX_GENERATED`;
  anything else is not a document. Every property is a pure function of the id, so repeated
  requests, from any number of servers, return equal objects.

Returned objects are shared and must not be mutated.

What one server lists, and how its documents change, is kept apart from the shared catalog:

* :class:`DocumentListing` names the documents ``ListDocuments`` returns, in a stable order
  (the catalog's, then ``generated`` documents ``gen-2x2-n0000001`` ... by number, then added
  ones), in pages whose cursor (the last id given) stays valid while documents come and go.
* :class:`LiveCatalog` answers lookups with one server's changes applied, and makes them:
  :meth:`LiveCatalog.mutate` changes a widget's SQL, adds or removes a widget, adds or removes a
  document, and bumps the document's ``updatedAt``. It is given the time and has a seeded random
  generator, so tests repeat it exactly.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import random
import re
import time
import zlib
from importlib import resources
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import attrs

from inspector.exceptions import InvalidArgument

__all__ = [
    "MAX_GENERATED",
    "MAX_LISTED_GENERATED",
    "MUTATION_KINDS",
    "DocumentListing",
    "LiveCatalog",
    "Mutation",
    "SampleCatalog",
    "listed_generated_id",
    "load_catalog",
]

JSONObject = Dict[str, Any]

#: The most generated documents a :class:`LiveCatalog` lists (``generated=``).
MAX_LISTED_GENERATED = 1_000_000

#: The kinds of change :meth:`LiveCatalog.mutate` makes.
MUTATION_KINDS: Tuple[str, ...] = (
    "sql",
    "add_widget",
    "remove_widget",
    "add_document",
    "remove_document",
)

#: The largest container count, and the largest widget count per container, of a generated
#: document: big enough for any benchmark, small enough that no reply exceeds a few MiB.
MAX_GENERATED = 100_000

_NUMBER = r"[1-9][0-9]{0,5}"
_GENERATED_DOCUMENT = re.compile(rf"gen-({_NUMBER})x({_NUMBER})(-legacy)?(?:-([A-Za-z0-9]+))?")
_GENERATED_CONTAINER = re.compile(rf"(.+)/c({_NUMBER})")
_GENERATED_WIDGET = re.compile(rf"(.+)/c({_NUMBER})/w({_NUMBER})")

_WIDGET_TYPES = ("chart", "table", "label")
_PALETTES = (
    ["#1f77b4", "#ff7f0e", "#2ca02c"],
    ["#0b3d91", "#f2a900"],
    ["#222222", "#666666", "#aaaaaa"],
    ["#d62728"],
    ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f"],
)
_CONNECTIONS = (
    "postgresql://warehouse.internal:5432/sales",
    "mysql://crm-replica.internal:3306/crm",
    "snowflake://acme-analytics.eu-west-1/LOADTEST_DB/PUBLIC?warehouse=BENCH_WH",
)
_TABLES = ("sales.orders", "crm.accounts", "LOADTEST_DB.PUBLIC.EVENTS", "billing.invoices")
# 2024-01-01T00:00:00Z: generated documents were last updated some time in 2024.
_GENERATED_EPOCH = 1_704_067_200


class SampleCatalog:
    """Looks up documents, widget containers and widgets by id.

    Args:
        catalog: The parsed catalog file: ``{"documents": [...], "containers": [...],
            "widgets": [...]}``, each a list of wire objects with an ``id``.
    """

    def __init__(self, catalog: JSONObject) -> None:
        self._documents: Dict[str, JSONObject] = {d["id"]: d for d in catalog["documents"]}
        self._containers: Dict[str, JSONObject] = {c["id"]: c for c in catalog["containers"]}
        self._widgets: Dict[str, JSONObject] = {w["id"]: w for w in catalog["widgets"]}
        self._document_ids: List[str] = list(self._documents)

    def document_ids(self) -> List[str]:
        """Return the ids of the catalog documents, in catalog order (generated ones excluded)."""
        return list(self._document_ids)

    def document(self, document_id: str) -> Optional[JSONObject]:
        """Return the document with this id, or ``None`` if there is none."""
        found = self._documents.get(document_id)
        if found is not None or not document_id.startswith("gen-"):
            return found
        shape = _parse_document(document_id)
        if shape is None:
            return None
        containers, widgets_each, legacy = shape
        return {
            "id": document_id,
            "type": "slide" if zlib.crc32(document_id.encode()) % 4 == 0 else "biDashboard",
            "name": f"Generated {containers}x{widgets_each}{' (legacy)' if legacy else ''}",
            "owner": "load-test",
            "widgetContainerIds": [f"{document_id}/c{n}" for n in range(1, containers + 1)],
            "updatedAt": _generated_updated_at(document_id),
            "generated": True,
        }

    def container(self, container_id: str) -> Optional[JSONObject]:
        """Return the widget container with this id, or ``None`` if there is none."""
        found = self._containers.get(container_id)
        if found is not None or not container_id.startswith("gen-"):
            return found
        match = _GENERATED_CONTAINER.fullmatch(container_id)
        if match is None:
            return None
        document_id, number = match.group(1), int(match.group(2))
        shape = _parse_document(document_id)
        if shape is None or number > shape[0]:
            return None
        widgets_each, legacy = shape[1], shape[2]
        container: JSONObject = {
            "id": container_id,
            "layout": "grid",
            # Two containers side by side per row, ten rows per page.
            "position": {
                "page": (number - 1) // 20 + 1,
                "x": 0 if number % 2 else 6,
                "y": ((number - 1) // 2 % 10) * 4,
                "width": 6,
                "height": 4,
            },
        }
        if legacy:
            container["widgetId"] = f"{container_id}/w1"
        else:
            container["widgetIds"] = [f"{container_id}/w{n}" for n in range(1, widgets_each + 1)]
        return container

    def widget(self, widget_id: str) -> Optional[JSONObject]:
        """Return the widget with this id, or ``None`` if there is none."""
        found = self._widgets.get(widget_id)
        if found is not None or not widget_id.startswith("gen-"):
            return found
        match = _GENERATED_WIDGET.fullmatch(widget_id)
        if match is None:
            return None
        shape = _parse_document(match.group(1))
        container_number, widget_number = int(match.group(2)), int(match.group(3))
        if shape is None or container_number > shape[0] or widget_number > shape[1]:
            return None
        return _generated_widget(widget_id, container_number, widget_number)


# Cached: a benchmark asks about the same few generated documents thousands of times.
@functools.lru_cache(maxsize=1024)
def _parse_document(document_id: str) -> Optional[Tuple[int, int, bool]]:
    """Return (containers, widgets per container, legacy) for a valid generated id, else None."""
    match = _GENERATED_DOCUMENT.fullmatch(document_id)
    if match is None:
        return None
    containers, widgets_each = int(match.group(1)), int(match.group(2))
    legacy = match.group(3) is not None
    if containers > MAX_GENERATED or widgets_each > MAX_GENERATED or (legacy and widgets_each != 1):
        return None
    return containers, widgets_each, legacy


def _generated_widget(widget_id: str, container_number: int, widget_number: int) -> JSONObject:
    # crc32, not hash(): hash() of a str changes between processes, and a benchmark's server and
    # client run in different processes but must agree on every property.
    seed = zlib.crc32(widget_id.encode())
    widget_type = _WIDGET_TYPES[seed % len(_WIDGET_TYPES)]
    widget: JSONObject = {
        "id": widget_id,
        "type": widget_type,
        "title": f"Metric {container_number}.{widget_number}",
        "palette": _PALETTES[seed % len(_PALETTES)],
        "fontSize": 9 + seed % 8,
    }
    if widget_type == "label":
        return widget
    table = _TABLES[seed % len(_TABLES)]
    sources: List[JSONObject] = [
        {
            "kind": "database",
            "connection": _CONNECTIONS[seed % len(_CONNECTIONS)],
            "sql": f"SELECT category, SUM(value) AS total FROM {table} "
            f"WHERE metric_id = {container_number * 1000 + widget_number} GROUP BY category",
        }
    ]
    if widget_type == "chart" and seed % 3 == 0:
        sources.append(
            {
                "kind": "spreadsheet",
                "url": f"https://sheets.example.com/d/gen{seed % 997:03d}",
                "range": f"A1:D{10 + seed % 90}",
            }
        )
    widget["dataSources"] = sources
    return widget


def _generated_updated_at(document_id: str) -> str:
    # A fixed moment in 2024 chosen by the id, so that every server agrees on it.
    seconds = _GENERATED_EPOCH + zlib.crc32(document_id.encode()) % (365 * 86_400)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def load_catalog() -> SampleCatalog:
    """Load the built-in catalog shipped with the package.

    Returns:
        A catalog of the built-in documents, which also answers for generated ids.
    """
    text = resources.files("inspector").joinpath("sample_catalog.json").read_text("utf-8")
    catalog: JSONObject = json.loads(text)
    return SampleCatalog(catalog)


# Listing and changing: one server's view of the documents.

# The listed generated documents: small dashboards of 2 containers x 2 widgets, numbered with
# seven digits so that their ids sort as they are listed.
_LISTED_SHAPE = "gen-2x2-n"
_LISTED_GENERATED = re.compile(r"gen-2x2-n([0-9]{7})")
# Relative odds of each kind of change when mutate() chooses one.
_KIND_WEIGHTS = {
    "sql": 4,
    "add_widget": 2,
    "remove_widget": 2,
    "add_document": 1,
    "remove_document": 1,
}
# mutate() looks at no more containers, and widgets, of one document than this: a generated
# document may have millions of widgets.
_MAX_EXAMINED = 1_000
# mutate() tries this many random documents for a kind before it goes through them all.
_RANDOM_TRIES = 64
# The SQL a changed widget gets; {revision} makes every statement new.
_CHANGED_QUERIES = (
    "SELECT region, SUM(amount) AS total FROM sales.orders WHERE revision = {revision} "
    "GROUP BY region",
    "SELECT department, COUNT(*) AS headcount FROM hr.employees WHERE revision = {revision} "
    "GROUP BY department",
    "SELECT segment, COUNT(*) AS accounts FROM crm.accounts WHERE revision = {revision} "
    "GROUP BY segment",
    "SELECT status, SUM(total) AS due FROM billing.invoices WHERE revision = {revision} "
    "GROUP BY status",
    "SELECT e.email, c.plan FROM crm.contacts AS e JOIN billing.subscriptions AS c "
    "ON c.contact_id = e.id WHERE c.revision = {revision}",
)
_OWNERS = ("finance", "marketing", "operations", "customer-success", "people")


def listed_generated_id(number: int) -> str:
    """Return the id of the ``number``-th generated document a listing names (from 1).

    For example ``gen-2x2-n0000017``: two containers of two widgets, like every listed
    generated document; ids sort in listing order.
    """
    return f"{_LISTED_SHAPE}{number:07d}"


@attrs.frozen
class Mutation:
    """One change :meth:`LiveCatalog.mutate` made.

    Attributes:
        kind: One of :data:`MUTATION_KINDS`.
        document_id: The document changed, added or removed.
        updated_at: Its new ``updatedAt``; None when it was removed.
        object_id: The widget whose SQL changed, or that was added or removed; None for
            ``add_document`` and ``remove_document``.
    """

    kind: str
    document_id: str
    updated_at: Optional[str]
    object_id: Optional[str] = None

    def notification(self) -> JSONObject:
        """Return the notification telling clients: ``DocumentChanged`` or ``DocumentRemoved``."""
        if self.updated_at is None:
            return {"method": "DocumentRemoved", "params": {"id": self.document_id}}
        return {
            "method": "DocumentChanged",
            "params": {"id": self.document_id, "updatedAt": self.updated_at},
        }


class DocumentListing:
    """The documents ``ListDocuments`` names, in a stable order, in pages.

    The order: the catalog's documents in catalog order, then ``generated`` generated documents
    by number, then added documents in the order they were added. Every id ever listed keeps its
    place (its *key*), removed ones too, and an added document goes after all of them. So a
    cursor, the last id a page gave, stays valid while documents come and go, and the pages
    after it name every document present throughout exactly once.

    Args:
        catalog_ids: The catalog's document ids, in order.
        generated: How many generated documents follow them.
    """

    def __init__(self, catalog_ids: Sequence[str], generated: int) -> None:
        self._catalog_ids = list(catalog_ids)
        self._catalog_keys = {d: key for key, d in enumerate(self._catalog_ids, 1)}
        self._generated = generated
        self._added_ids: List[str] = []
        self._added_keys: Dict[str, int] = {}
        self._removed: Set[str] = set()
        #: Goes up by one with every document added or removed.
        self.version = 0

    def __len__(self) -> int:
        return self._key_count() - len(self._removed)

    def __contains__(self, document_id: object) -> bool:
        return (
            isinstance(document_id, str)
            and self.key_of(document_id) is not None
            and document_id not in self._removed
        )

    def key_of(self, document_id: str) -> Optional[int]:
        """Return the place of an id this listing ever named, or None."""
        key = self._catalog_keys.get(document_id)
        if key is not None:
            return key
        match = _LISTED_GENERATED.fullmatch(document_id)
        if match is not None:
            number = int(match.group(1))
            return len(self._catalog_ids) + number if 1 <= number <= self._generated else None
        return self._added_keys.get(document_id)

    def add(self, document_id: str) -> None:
        """List a new document after every other."""
        if self.key_of(document_id) is not None:
            raise InvalidArgument(f"document_id {document_id!r} was listed before")
        self._added_ids.append(document_id)
        self._added_keys[document_id] = self._key_count()
        self.version += 1

    def remove(self, document_id: str) -> None:
        """Stop listing a document; its place stays taken, so cursors past it stay valid."""
        if document_id in self:
            self._removed.add(document_id)
            self.version += 1

    def ids(self) -> List[str]:
        """Return every listed id, in order."""
        return self.page(None, None)[0]

    def page(self, cursor: Optional[str], limit: Optional[int]) -> Tuple[List[str], Optional[str]]:
        """Return up to ``limit`` ids after ``cursor``, and the cursor of the next page.

        Args:
            cursor: The last id of the page before; None for the first page.
            limit: The most ids to return; None for all that follow.

        Returns:
            The ids, and the cursor for the next page: None when no id follows them.

        Raises:
            InvalidArgument: The cursor is not an id this listing ever named.
        """
        start = 1
        if cursor is not None:
            after = self.key_of(cursor)
            if after is None:
                raise InvalidArgument(f"cursor {cursor!r} is not an id this listing named")
            start = after + 1
        removed = self._removed
        present = (d for d in self._ids_from(start) if d not in removed)
        if limit is None:
            return list(present), None
        ids = list(itertools.islice(present, limit))
        # One more, so that a last page that is exactly full says it is the last.
        return ids, (ids[-1] if ids and next(present, None) is not None else None)

    def random_id(self, rng: random.Random) -> Optional[str]:
        """Return a listed id chosen at random, or None if none is listed."""
        if not len(self):
            return None
        last = self._key_count()
        for _ in range(_RANDOM_TRIES):
            document_id = self._id_at(rng.randint(1, last))
            if document_id not in self._removed:
                return document_id
        return rng.choice(self.ids())

    def _key_count(self) -> int:
        return len(self._catalog_ids) + self._generated + len(self._added_ids)

    def _ids_from(self, key: int) -> Iterator[str]:
        """Yield the ids at ``key`` and after, removed ones included."""
        catalog_count = len(self._catalog_ids)
        if key <= catalog_count:
            yield from self._catalog_ids[key - 1 :]
            key = catalog_count + 1
        number = key - catalog_count
        if number <= self._generated:
            yield from map(listed_generated_id, range(number, self._generated + 1))
            number = self._generated + 1
        yield from self._added_ids[number - self._generated - 1 :]

    def _id_at(self, key: int) -> str:
        catalog_count = len(self._catalog_ids)
        if key <= catalog_count:
            return self._catalog_ids[key - 1]
        key -= catalog_count
        if key <= self._generated:
            return listed_generated_id(key)
        return self._added_ids[key - self._generated - 1]


class LiveCatalog:
    """One server's documents: the shared catalog, changed by :meth:`mutate` as it goes.

    It answers lookups as :class:`SampleCatalog` does, with the changes applied, and lists
    documents through :attr:`listing`. It has no clock or thread of its own: :meth:`mutate` is
    given the time, and its random choices come from a generator seeded once.

    Args:
        catalog: The shared catalog; never changed (changed objects are copies kept here).
        generated: How many generated documents (:func:`listed_generated_id`) to list after the
            catalog's, 0 to :data:`MAX_LISTED_GENERATED`. They cost no memory until changed.
        seed: Seeds the random choices of :meth:`mutate`; None for a random seed.

    Attributes:
        listing: The :class:`DocumentListing` of the documents present.

    Raises:
        InvalidArgument: ``generated`` is out of range.
    """

    def __init__(
        self, catalog: SampleCatalog, *, generated: int = 0, seed: Optional[int] = None
    ) -> None:
        if type(generated) is not int or not 0 <= generated <= MAX_LISTED_GENERATED:
            raise InvalidArgument(
                f"generated must be an integer from 0 to {MAX_LISTED_GENERATED}, got {generated!r}"
            )
        self.listing = DocumentListing(catalog.document_ids(), generated)
        self._catalog = catalog
        self._random = random.Random(seed)
        # Changed and added objects, as sent; they take precedence over the catalog's.
        self._documents: Dict[str, JSONObject] = {}
        self._containers: Dict[str, JSONObject] = {}
        self._widgets: Dict[str, JSONObject] = {}
        self._removed_documents: Set[str] = set()
        self._removed_widgets: Set[str] = set()
        self._revision = 0  # numbers new SQL statements and added documents

    def document(self, document_id: str) -> Optional[JSONObject]:
        """Return the document with this id, or ``None`` if there is none (or no longer)."""
        if document_id in self._removed_documents:
            return None
        found = self._documents.get(document_id)
        return found if found is not None else self._catalog.document(document_id)

    def container(self, container_id: str) -> Optional[JSONObject]:
        """Return the widget container with this id, or ``None`` if there is none."""
        if self._removed_documents and _document_of(container_id) in self._removed_documents:
            return None
        found = self._containers.get(container_id)
        return found if found is not None else self._catalog.container(container_id)

    def widget(self, widget_id: str) -> Optional[JSONObject]:
        """Return the widget with this id, or ``None`` if there is none."""
        if widget_id in self._removed_widgets or (
            self._removed_documents and _document_of(widget_id) in self._removed_documents
        ):
            return None
        found = self._widgets.get(widget_id)
        return found if found is not None else self._catalog.widget(widget_id)

    def mutate(
        self, now: float, document_id: Optional[str] = None, kind: Optional[str] = None
    ) -> Mutation:
        """Change one document, bump its ``updatedAt``, and say what changed.

        Args:
            now: The time of the change, in seconds since the epoch. The new ``updatedAt`` is
                this time, or a millisecond after the document's previous one if that is later,
                so that every change gives a new value.
            document_id: The document to change; None for one chosen at random among the
                listed ones. Must be None for ``add_document``.
            kind: One of :data:`MUTATION_KINDS`; None for one chosen at random among those that
                fit the document (a dataset has no widget to change, for one).

        Returns:
            What changed.

        Raises:
            InvalidArgument: ``kind`` is unknown or does not fit the document, the document does
                not exist, or no document fits ``kind``.
        """
        if kind is not None and kind not in MUTATION_KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(MUTATION_KINDS)}, got {kind!r}")
        if kind == "add_document":
            if document_id is not None:
                raise InvalidArgument("document_id must be None for add_document")
            return self._add_document(now)
        if document_id is not None:
            document = self.document(document_id)
            if document is None:
                raise InvalidArgument(f"document_id {document_id!r} names no document")
            kinds = self._kinds_for(document)
            if kind is not None and kind not in kinds:
                raise InvalidArgument(f"kind {kind!r} does not fit document {document_id!r}")
            return self._apply(kind or self._choose(kinds), document, now)
        for candidate in self._random_documents():
            document = self.document(candidate)
            if document is None:
                continue
            kinds = self._kinds_for(document)
            if kind is None:
                chosen = self._choose(kinds + ["add_document"])
                if chosen == "add_document":
                    return self._add_document(now)
                return self._apply(chosen, document, now)
            if kind in kinds:
                return self._apply(kind, document, now)
        if kind is None:
            return self._add_document(now)
        raise InvalidArgument(f"kind {kind!r}: no listed document can take this change")

    # Choosing.

    def _choose(self, kinds: List[str]) -> str:
        return self._random.choices(kinds, [_KIND_WEIGHTS[k] for k in kinds])[0]

    def _random_documents(self) -> Iterator[str]:
        for _ in range(_RANDOM_TRIES):
            document_id = self.listing.random_id(self._random)
            if document_id is None:
                return
            yield document_id
        yield from self.listing.ids()

    def _containers_of(self, document: JSONObject) -> List[JSONObject]:
        container_ids = document.get("widgetContainerIds") or []
        found = (self.container(c) for c in container_ids[:_MAX_EXAMINED])
        return [c for c in found if c is not None]

    def _widgets_of(self, containers: List[JSONObject]) -> List[JSONObject]:
        widget_ids: Dict[str, None] = {}
        for container in containers:
            for widget_id in _widget_ids(container):
                widget_ids[widget_id] = None
        found = (self.widget(w) for w in list(widget_ids)[:_MAX_EXAMINED])
        return [w for w in found if w is not None]

    def _kinds_for(self, document: JSONObject) -> List[str]:
        kinds = ["remove_document"]
        containers = self._containers_of(document)
        if any(isinstance(c.get("widgetIds"), list) for c in containers):
            kinds.append("add_widget")
        if any(c.get("widgetIds") for c in containers):
            kinds.append("remove_widget")
        if any(_sql_indexes(w) for w in self._widgets_of(containers)):
            kinds.append("sql")
        return kinds

    # Changing.

    def _apply(self, kind: str, document: JSONObject, now: float) -> Mutation:
        document_id: str = document["id"]
        if kind == "remove_document":
            self._removed_documents.add(document_id)
            self.listing.remove(document_id)
            self._documents.pop(document_id, None)
            return Mutation(kind, document_id, None)
        containers = self._containers_of(document)
        if kind == "sql":
            object_id = self._change_sql(self._widgets_of(containers))
        elif kind == "add_widget":
            object_id = self._add_widget([c for c in containers if "widgetIds" in c])
        else:
            object_id = self._remove_widget(containers)
        updated_at = _next_updated_at(document.get("updatedAt"), now)
        self._documents[document_id] = {**document, "updatedAt": updated_at}
        return Mutation(kind, document_id, updated_at, object_id)

    def _change_sql(self, widgets: List[JSONObject]) -> str:
        widget = self._random.choice([w for w in widgets if _sql_indexes(w)])
        sources = [dict(source) for source in widget["dataSources"]]
        sources[self._random.choice(_sql_indexes(widget))]["sql"] = self._new_sql()
        self._widgets[widget["id"]] = {**widget, "dataSources": sources}
        return str(widget["id"])

    def _add_widget(self, containers: List[JSONObject]) -> str:
        container = self._random.choice(containers)
        container_id: str = container["id"]
        widget_ids: List[str] = list(container["widgetIds"])
        number = len(widget_ids) + 1
        while self._widget_id_taken(f"{container_id}/w{number}"):
            number += 1
        widget_id = f"{container_id}/w{number}"
        self._widgets[widget_id] = self._new_widget(widget_id)
        self._containers[container_id] = {**container, "widgetIds": [*widget_ids, widget_id]}
        return widget_id

    def _remove_widget(self, containers: List[JSONObject]) -> str:
        container = self._random.choice([c for c in containers if c.get("widgetIds")])
        widget_id: str = self._random.choice(container["widgetIds"])
        remaining = [w for w in container["widgetIds"] if w != widget_id]
        self._containers[container["id"]] = {**container, "widgetIds": remaining}
        # A widget another container still lists stays; otherwise it is gone.
        if not any(widget_id in _widget_ids(c) for c in containers if c is not container):
            self._removed_widgets.add(widget_id)
            self._widgets.pop(widget_id, None)
        return widget_id

    def _add_document(self, now: float) -> Mutation:
        self._revision += 1
        document_id = f"added-{self._revision}"
        container_ids = [f"{document_id}/c1", f"{document_id}/c2"]
        for number, container_id in enumerate(container_ids, 1):
            widget_ids = [f"{container_id}/w1", f"{container_id}/w2"]
            self._containers[container_id] = {
                "id": container_id,
                "layout": "grid",
                "position": {"page": 1, "x": 6 * (number - 1), "y": 0, "width": 6, "height": 4},
                "widgetIds": widget_ids,
            }
            for widget_id in widget_ids:
                self._widgets[widget_id] = self._new_widget(widget_id)
        updated_at = _next_updated_at(None, now)
        self._documents[document_id] = {
            "id": document_id,
            "type": self._random.choice(("biDashboard", "slide")),
            "name": f"Added dashboard {self._revision}",
            "owner": self._random.choice(_OWNERS),
            "widgetContainerIds": container_ids,
            "updatedAt": updated_at,
        }
        self.listing.add(document_id)
        return Mutation("add_document", document_id, updated_at)

    def _new_widget(self, widget_id: str) -> JSONObject:
        return {
            "id": widget_id,
            "type": self._random.choice(("chart", "table")),
            "title": f"Added metric {self._revision}",
            "palette": list(self._random.choice(_PALETTES)),
            "fontSize": 12,
            "dataSources": [
                {
                    "kind": "database",
                    "connection": self._random.choice(_CONNECTIONS),
                    "sql": self._new_sql(),
                }
            ],
        }

    def _new_sql(self) -> str:
        self._revision += 1
        return self._random.choice(_CHANGED_QUERIES).format(revision=self._revision)

    def _widget_id_taken(self, widget_id: str) -> bool:
        return (
            widget_id in self._removed_widgets
            or widget_id in self._widgets
            or self._catalog.widget(widget_id) is not None
        )


def _document_of(object_id: str) -> str:
    # Container and widget ids start with their document's id: "<doc>/c1", "<doc>/c1/w2".
    return object_id.split("/", 1)[0]


def _widget_ids(container: JSONObject) -> List[str]:
    widget_ids = container.get("widgetIds")
    if isinstance(widget_ids, list):
        return widget_ids
    single = container.get("widgetId")
    return [single] if isinstance(single, str) else []


def _sql_indexes(widget: JSONObject) -> List[int]:
    """Return the indexes of the widget's data sources that are SQL on a database."""
    sources = widget.get("dataSources") or []
    return [
        n
        for n, source in enumerate(sources)
        if source.get("kind") == "database" and isinstance(source.get("sql"), str)
    ]


def _next_updated_at(previous: Any, now: float) -> str:
    """Return ``now`` as ISO 8601 UTC with milliseconds, later than ``previous`` in any case."""
    milliseconds = int(now * 1000)
    if isinstance(previous, str):
        try:
            parsed = datetime.datetime.fromisoformat(previous.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            milliseconds = max(milliseconds, int(parsed.timestamp() * 1000) + 1)
    seconds, millis = divmod(milliseconds, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
