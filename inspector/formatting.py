"""The ``table`` format: inspections and the data-source report as plain-text columns, for people.

Columns are padded with spaces to the widest cell; the last column of a row is never padded, so
a long SQL statement runs on rather than being cut. Lists of ids longer than
:data:`MAX_IDS_SHOWN` end in ``(+N more)``: the JSON formats always hold everything. Connection
strings come from :mod:`inspector.sources`, passwords already redacted.
"""

from __future__ import annotations

from collections import Counter
from typing import AbstractSet, List, Optional, Sequence

from inspector.display import printable
from inspector.models import Inspection
from inspector.sources import Source, SourcesReport, build_report

__all__ = ["MAX_IDS_SHOWN", "inspection_table", "sources_table"]

#: The most ids one cell lists before it says how many more there are.
MAX_IDS_SHOWN = 6

_GAP = "  "


def inspection_table(inspection: Inspection) -> str:
    """One document for people: what it is, its widgets by type, and its data sources.

    Args:
        inspection: The document's inspection.

    Returns:
        Lines of text, the last ending in a newline.
    """
    document = inspection.document
    title = f"{document.id}  {document.name}" if document.name else document.id
    facts = [f"type {document.type}"]
    if document.owner:
        facts.append(f"owner {document.owner}")
    facts.append(_count(len(inspection.containers), "container"))
    facts.append(_count(len(inspection.widgets), "widget"))
    lines = [title, ", ".join(facts)]

    by_type = Counter(widget.type for widget in inspection.widgets)
    if by_type:
        rows = [
            [widget_type, str(count), _ids([w.id for w in inspection.widgets
                                            if w.type == widget_type])]
            for widget_type, count in sorted(by_type.items(), key=lambda item: (-item[1], item[0]))
        ]
        lines += ["", *_columns(["WIDGET TYPE", "COUNT", "WIDGETS"], rows, right={1})]

    sources = build_report([inspection]).sources
    if sources:
        rows = [[s.kind, s.location or "-", _reads(s), _ids(s.widgets)] for s in sources]
        lines += ["", *_columns(["DATA SOURCE", "WHERE", "READS", "WIDGETS"], rows)]
    else:
        lines += ["", "no data sources"]
    return _terminal_text(lines)


def sources_table(report: SourcesReport) -> str:
    """The data-source report for people: each source, who uses it, and its SQL statements.

    Args:
        report: The report, from :func:`inspector.sources.build_report`.

    Returns:
        Lines of text, the last ending in a newline.
    """
    # Only the documents that use a source: "used by 24 documents" when 5 of them use none
    # would overstate what the sources feed.
    using = set().union(*(source.documents for source in report.sources))
    users = tuple(document for document in report.documents if document in using)
    of_all = "" if len(users) == len(report.documents) else f" of {len(report.documents)}"
    lines = [
        f"{_count(len(report.sources), 'data source')} used by {len(users)}{of_all} "
        f"document{'' if len(report.documents if of_all else users) == 1 else 's'}"
        + (f": {_ids(users)}" if users else "")
    ]
    for source in report.sources:
        lines += ["", *_source_block(source)]
    return _terminal_text(lines)


def _source_block(source: Source) -> List[str]:
    facts = [["documents", _ids(source.documents)], ["widgets", _ids(source.widgets)]]
    if source.statements:
        facts.append(["tables", ", ".join(source.tables) or "-"])
    if source.ranges:
        facts.append(["ranges", ", ".join(source.ranges)])
    lines = [f"{source.kind}  {source.location or '-'}"]
    lines += _columns(None, facts, indent="  ")
    if not source.statements:
        return lines
    writes = any(statement.writes for statement in source.statements)
    headers = ["#", "READS", *(["WRITES"] if writes else []), "WIDGETS", "SQL"]
    rows = []
    for number, statement in enumerate(source.statements, 1):
        reads = "(unparseable)" if statement.error else ", ".join(statement.tables) or "-"
        rows.append([
            str(number),
            reads,
            *([", ".join(statement.writes) or "-"] if writes else []),
            _ids(statement.widgets),
            " ".join(statement.sql.split()),
        ])
    lines += ["", *_columns(headers, rows, right={0}, indent="  ")]
    lines += [
        f"  #{number}: {statement.error}"
        for number, statement in enumerate(source.statements, 1)
        if statement.error
    ]
    return lines


def _reads(source: Source) -> str:
    """What a source gives: the tables its SQL reads, or the ranges of a spreadsheet."""
    parts = list(source.tables) + list(source.ranges)
    unparseable = sum(1 for statement in source.statements if statement.error)
    if unparseable:
        parts.append(f"({_count(unparseable, 'unparseable statement')})")
    return ", ".join(parts) or "-"


def _columns(
    headers: Optional[Sequence[str]],
    rows: Sequence[Sequence[str]],
    *,
    right: AbstractSet[int] = frozenset(),
    indent: str = "",
) -> List[str]:
    """Rows as aligned columns; the columns in ``right`` aligned right, the last never padded."""
    table = [list(headers)] if headers else []
    table += [list(row) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row[:-1], widths))
        ]
        last = row[-1].rjust(widths[-1]) if len(row) - 1 in right else row[-1]
        lines.append((indent + _GAP.join([*cells, last])).rstrip())
    return lines


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    hidden = len(ids) - MAX_IDS_SHOWN
    return f"{shown} (+{hidden} more)" if hidden > 0 else shown or "-"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _terminal_text(lines: List[str]) -> str:
    # The lines hold the server's text (titles, ids, SQL): escape what would drive a terminal
    # (escape sequences, carriage returns, bidirectional overrides), never cut it.
    return "\n".join(printable(line, limit=len(line)) for line in lines) + "\n"
