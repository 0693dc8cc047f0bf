"""The inventory's answers as text: a table for people, JSON or CSV for machines.

Pure functions from the query results (:mod:`inspector.inventory.queries`) to rows, and one
writer for the three formats, so every command prints alike.
"""

from __future__ import annotations

import csv
import datetime
import json
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple

from inspector.inventory.queries import DiffEntry, DocumentSources, RunRecord, TableUse

__all__ = [
    "FORMATS",
    "diff_rows",
    "run_report",
    "run_row",
    "source_rows",
    "table_use_rows",
    "write_rows",
]

FORMATS = ("table", "json", "csv")

Row = Dict[str, Any]


def run_row(run: RunRecord) -> Row:
    """One run as a row: what it was, how it ended, its counts, time and rate."""
    return {
        "run": run.id,
        "trigger": run.trigger,
        "status": run.status,
        "started": _moment(run.started_at),
        "finished": _moment(run.finished_at),
        "server": run.server,
        "all": bool(run.selection.get("all")),
        "resumed": run.resumed,
        "targets": run.targets,
        "scanned": run.scanned,
        "new": run.new,
        "changed": run.changed,
        "unchanged": run.unchanged,
        "deleted": run.deleted,
        "failed": run.failed,
        "seconds": None if run.seconds is None else round(run.seconds, 3),
        "docs_per_second": None if run.rate is None else round(run.rate, 1),
        "message": run.message,
    }


def run_report(run: RunRecord, failures: Sequence[Tuple[str, str]], fmt: str,
               out: IO[str]) -> None:
    """The report at the end of a scan: counts, time and rate, then the failures."""
    row = run_row(run)
    if fmt == "json":
        row["failures"] = [{"document": d, "reason": r} for d, r in failures]
        out.write(json.dumps(row, indent=2) + "\n")
        return
    resumed = f", resumed {run.resumed} time(s)" if run.resumed else ""
    lines = [
        f"run {run.id}: {run.status}{resumed}",
        f"  scanned {run.scanned} of {run.targets}: {run.new} new, {run.changed} changed, "
        f"{run.unchanged} unchanged, {run.failed} failed; {run.deleted} deleted",
        f"  {row['seconds'] or 0:.1f} s, {row['docs_per_second'] or 0:.1f} documents/s",
    ]
    if run.message:
        lines.append(f"  {run.message}")
    lines += [f"  failed: {document}: {reason}" for document, reason in failures]
    out.write("\n".join(lines) + "\n")


def table_use_rows(uses: Sequence[TableUse]) -> List[Row]:
    """``query --reads``: one row per data source that reads the table."""
    return [{"document": u.document_id, "version": u.version, "table": u.table,
             "widget": u.widget_id, "connection": u.connection, "sql": u.sql} for u in uses]


def source_rows(sources: DocumentSources) -> List[Row]:
    """``query --sources-of``: one row per data source of the version."""
    return [{"document": sources.document_id, "version": sources.version,
             "widget": s.widget_id, "kind": s.kind, "location": s.location,
             "reads": " ".join(s.reads), "writes": " ".join(s.writes),
             "range": s.range, "sql": s.sql} for s in sources.sources]


def diff_rows(entries: Sequence[DiffEntry]) -> List[Row]:
    """``diff``: one row per document that is new, changed or deleted."""
    return [{"document": e.document_id, "change": e.change,
             "sources_added": " | ".join(e.sources_added),
             "sources_removed": " | ".join(e.sources_removed),
             "tables_added": " ".join(e.tables_added),
             "tables_removed": " ".join(e.tables_removed)} for e in entries]


def write_rows(rows: Sequence[Row], fmt: str, out: IO[str], *,
               columns: Optional[Sequence[str]] = None) -> None:
    """Write rows as an aligned table, a JSON array, or CSV with a header.

    Args:
        rows: Dicts with the same keys.
        fmt: One of :data:`FORMATS`.
        out: Where to write.
        columns: The table's columns (default: every key); JSON and CSV have them all.
    """
    if fmt == "json":
        out.write(json.dumps(list(rows), indent=2) + "\n")
        return
    if fmt == "csv":
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return
    if not rows:
        out.write("(none)\n")
        return
    names = list(columns or rows[0])
    cells = [[_cell(row.get(name)) for name in names] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in
              enumerate(names)]
    for line in [names, ["-" * w for w in widths], *cells]:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() + "\n")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= 70 else text[:67] + "..."


def _moment(value: Optional[datetime.datetime]) -> Optional[str]:
    return None if value is None else value.isoformat(timespec="seconds")
