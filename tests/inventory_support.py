"""Helpers the inventory's test modules share: sample inspections, and changing them."""

from __future__ import annotations

from typing import Dict, List

import attrs

from inspector import DocumentInspector, Inspection
from inspector.models import DataSource


def catalog_inspections(url: str) -> Dict[str, Inspection]:
    """Every document of the sample catalog, inspected, by id."""
    with DocumentInspector(url) as inspector:
        ids = inspector.list_documents()
        return {i.document.id: i for i in inspector.inspect_many(ids)}


def with_sql(inspection: Inspection, sql: str, *, updated_at: str = "2026-11-01T00:00:00Z",
             connection: str = "postgresql://warehouse.internal:5432/hr") -> Inspection:
    """The inspection with its first widget's data sources replaced by one running ``sql``,
    and a new ``updatedAt``, as a server would send after the document changed."""
    first, *rest = inspection.widgets
    changed = attrs.evolve(first, data_sources=(
        DataSource(kind="database", connection=connection, sql=sql),))
    document = attrs.evolve(inspection.document,
                            extra={**inspection.document.extra, "updatedAt": updated_at})
    return attrs.evolve(inspection, document=document, widgets=(changed, *rest))


def outcomes(rows: List[tuple]) -> Dict[str, str]:
    """{document id: outcome} from (document id, outcome) rows."""
    return dict(rows)
