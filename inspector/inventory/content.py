"""What the store keeps of an inspection, computed without any I/O.

* :func:`document_fingerprint`: what a ``GetDocument`` reply is compared with to tell whether a
  document changed since it was stored: its ``updatedAt`` when the server sends one, else a
  hash of the whole reply (PROTOCOL.md, "Changes").
* :func:`version_content`: the rows of one stored version: the document's fields, its
  containers, widgets, data sources and the tables each reads and writes, the raw JSON as
  evidence and a hash of it (equal content, equal hash).

Secrets are removed here, before anything reaches the store: connection strings and links go
through :func:`inspector.redaction.redact`, and so does every other string the server sent,
SQL excepted (it is the evidence of what is read, and it holds no connection credentials);
a field whose name says it is a secret (``password``, ``token``, ...) has its value replaced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any, Dict, List, Optional, Tuple

import attrs

from inspector.models import Document, Inspection
from inspector.redaction import REDACTED, redact
from inspector.serialization import to_wire

__all__ = ["VersionContent", "document_fingerprint", "table_name_key", "version_content"]

_SECRET_FIELD = re.compile(r"(password|passwd|pwd|secret|token|api_?key)$", re.IGNORECASE)
# Wire fields kept as sent: SQL is what the review reads, and redaction would alter it.
_KEPT_FIELDS = frozenset({"sql"})


@attrs.frozen
class VersionContent:
    """The rows of one document version, secrets redacted.

    Attributes:
        document_id: The document's id.
        fingerprint: See :func:`document_fingerprint`.
        content_hash: SHA-256 of the redacted inspection's canonical JSON.
        updated_at: The server's ``updatedAt``, if it sent one.
        type, name, owner: The document's fields.
        raw_json: The redacted inspection, as JSON: the evidence.
        containers, widgets, data_sources, table_refs: Rows for those tables, without the
            version id (the store adds it).
    """

    document_id: str
    fingerprint: str
    content_hash: str
    updated_at: Optional[str]
    type: str
    name: Optional[str]
    owner: Optional[str]
    raw_json: str
    containers: Tuple[Dict[str, Any], ...]
    widgets: Tuple[Dict[str, Any], ...]
    data_sources: Tuple[Dict[str, Any], ...]
    table_refs: Tuple[Dict[str, Any], ...]


def document_fingerprint(document: Document) -> str:
    """``updatedAt:<value>`` when the reply carries one, else ``sha256:<hash of the reply>``."""
    updated_at = document.extra.get("updatedAt")
    if isinstance(updated_at, str) and updated_at:
        return f"updatedAt:{updated_at}"
    return "sha256:" + _hash(_redacted(to_wire(document)))


def version_content(inspection: Inspection) -> VersionContent:
    """The rows that store ``inspection`` as a version, secrets redacted."""
    wire = _redacted(to_wire(inspection))
    document = inspection.document
    updated_at = document.extra.get("updatedAt")
    containers = tuple(
        {
            "ordinal": number,
            "container_id": container.id,
            "layout": container.layout,
            "page": container.position.page if container.position is not None else None,
        }
        for number, container in enumerate(inspection.containers)
    )
    widget_rows: List[Dict[str, Any]] = []
    source_rows: List[Dict[str, Any]] = []
    table_rows: List[Dict[str, Any]] = []
    for number, widget in enumerate(inspection.widgets):
        widget_rows.append({
            "ordinal": number,
            "widget_id": widget.id,
            "container_id": widget.container_id,
            "type": widget.type,
            "title": widget.title,
        })
        for data_source in widget.data_sources:
            ordinal = len(source_rows)
            connection = None if data_source.connection is None else redact(
                data_source.connection)
            reads: Tuple[str, ...] = ()
            writes: Tuple[str, ...] = ()
            sql_error = None
            if data_source.sql is not None:
                reads, writes, sql_error = analyze(data_source.sql, connection)
            source_rows.append({
                "ordinal": ordinal,
                "widget_id": widget.id,
                "kind": data_source.kind,
                "connection": connection,
                "url": None if data_source.url is None else redact(data_source.url),
                "range": data_source.range,
                "sql": data_source.sql,
                "sql_error": sql_error,
            })
            for access, tables in (("read", reads), ("write", writes)):
                table_rows.extend(
                    {"source_ordinal": ordinal, "access": access, "table_name": table,
                     "name_key": table_name_key(table)}
                    for table in tables
                )
    return VersionContent(
        document_id=document.id,
        fingerprint=document_fingerprint(document),
        content_hash=_hash(wire),
        updated_at=updated_at if isinstance(updated_at, str) else None,
        type=document.type,
        name=document.name,
        owner=document.owner,
        raw_json=json.dumps(wire, ensure_ascii=False, separators=(",", ":")),
        containers=containers,
        widgets=tuple(widget_rows),
        data_sources=tuple(source_rows),
        table_refs=tuple(table_rows),
    )


def table_name_key(table: str) -> str:
    """The last part of a table name, case-folded: ``Sales.Orders`` -> ``orders``."""
    return table.rsplit(".", 1)[-1].casefold()


# Generated catalogs repeat the same statements thousands of times, and parsing is the
# costliest step of storing a document.
@functools.lru_cache(maxsize=4096)
def analyze(sql: str, connection: Optional[str]) -> Tuple[Tuple[str, ...], Tuple[str, ...],
                                                           Optional[str]]:
    """The tables ``sql`` reads and writes, and why not if it cannot be parsed.

    Uses :func:`inspector.sources.analyze_sql` in the dialect the connection names.
    """
    from inspector.sources import analyze_sql, dialect_for

    statement = analyze_sql(sql, dialect_for(connection))
    return statement.tables, statement.writes, statement.error


def _redacted(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(item, key) for item in value]
    if isinstance(value, str) and key not in _KEPT_FIELDS:
        if _SECRET_FIELD.search(key) and value:
            return REDACTED
        return redact(value)
    return value


def _hash(wire: Any) -> str:
    canonical = json.dumps(wire, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
