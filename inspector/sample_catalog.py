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
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from importlib import resources
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["MAX_GENERATED", "SampleCatalog", "load_catalog"]

JSONObject = Dict[str, Any]

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


def load_catalog() -> SampleCatalog:
    """Load the built-in catalog shipped with the package.

    Returns:
        A catalog of the built-in documents, which also answers for generated ids.
    """
    text = resources.files("inspector").joinpath("sample_catalog.json").read_text("utf-8")
    catalog: JSONObject = json.loads(text)
    return SampleCatalog(catalog)
