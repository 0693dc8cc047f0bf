"""The data-source report: which databases, spreadsheets and SQL statements feed the documents.

Pure functions over :class:`~inspector.models.Inspection` objects; no I/O. The report answers
the compliance questions: what does each document read, and who uses each source?

* A *source* is one distinct place data comes from: its ``kind`` and its connection string or
  link, with any password replaced (:func:`inspector.redaction.redact`). Sources are told apart
  by that redacted form, so the report never holds a secret, and come sorted by kind, then
  connection or link.
* Each database source lists the distinct SQL statements run on it, each with the tables it
  reads, parsed with `sqlglot <https://sqlglot.com>`_ in the dialect the connection's scheme
  names (``postgresql://`` -> ``postgres``, ...). Names of common table expressions defined in
  the statement are not tables and are left out; schema-qualified names stay qualified
  (``sales.orders``, ``DB.SCHEMA.TABLE``). A statement that writes (``INSERT``, ``UPDATE``,
  ``CREATE``, ...) names its target in ``writes``. SQL that cannot be parsed is reported with
  the reason, never raised.
* A spreadsheet source lists the ranges read. Every source lists the documents and widgets that
  use it, in the order they were inspected; every statement, its widgets.

:func:`report_to_dict` gives the JSON-able form (attribute names as keys, tuples as lists).

This module needs ``sqlglot`` (``pip install 'document-inspector[cli]'``).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

import attrs
import sqlglot
from sqlglot import exp

from inspector.models import DataSource, Inspection
from inspector.redaction import redact

__all__ = [
    "Source",
    "SourcesReport",
    "Statement",
    "analyze_sql",
    "build_report",
    "dialect_for",
    "report_to_dict",
]

# Connection URL schemes (before any "+driver") -> sqlglot dialect, where the names differ or
# the scheme has aliases. Any other scheme sqlglot knows by name is used as is.
_DIALECT_ALIASES = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "pgsql": "postgres",
    "psql": "postgres",
    "mariadb": "mysql",
    "mssql": "tsql",
    "sqlserver": "tsql",
    "spark2": "spark",
}

# Statements whose ``this`` is the table they write rather than read. Looked up by name: the
# set of classes differs between sqlglot versions (AlterTable became Alter).
_WRITING_STATEMENTS: Tuple[type, ...] = tuple(
    getattr(exp, name)
    for name in ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "TruncateTable",
                 "Alter", "AlterTable")
    if hasattr(exp, name)
)

# Several statements in one text parse as a Block (sqlglot 29 and later; before, parse_one
# refuses them), where a lone semicolon may stand as a statement of its own.
_BLOCK: Any = getattr(exp, "Block", None)
_EMPTY_STATEMENT: Any = getattr(exp, "Semicolon", ())


@attrs.frozen
class Statement:
    """One distinct SQL statement run on a database source.

    Attributes:
        sql: The statement, as the widget sends it.
        tables: The tables it reads, sorted, each as written (``schema.table`` kept whole).
        writes: The tables it writes, if it is not a plain query.
        error: Why the tables are not known (the SQL could not be parsed); None when they are.
        widgets: The widgets that run it, in the order inspected.
    """

    sql: str
    tables: Tuple[str, ...] = ()
    writes: Tuple[str, ...] = ()
    error: Optional[str] = None
    widgets: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        outcome = f"error={self.error!r}" if self.error else f"tables={list(self.tables)!r}"
        return f"Statement({_shorten(self.sql, 40)!r}, {outcome}, widgets={len(self.widgets)})"


@attrs.frozen
class Source:
    """One distinct data source and what uses it.

    Attributes:
        kind: ``database``, ``spreadsheet`` or any other kind the server names.
        connection: The connection string, passwords redacted; None if the source has none.
        url: The link (of a spreadsheet, ...), secrets redacted; None if the source has none.
        statements: The distinct SQL statements run on it, in the order first seen.
        ranges: The distinct spreadsheet ranges read, in the order first seen.
        documents: The documents that use it.
        widgets: The widgets that use it.
    """

    kind: str
    connection: Optional[str] = None
    url: Optional[str] = None
    statements: Tuple[Statement, ...] = ()
    ranges: Tuple[str, ...] = ()
    documents: Tuple[str, ...] = ()
    widgets: Tuple[str, ...] = ()

    @property
    def location(self) -> str:
        """The connection and/or the link, as one string for display."""
        return " ".join(part for part in (self.connection, self.url) if part)

    @property
    def tables(self) -> Tuple[str, ...]:
        """Every table its statements read, sorted."""
        return _sorted_names(table for s in self.statements for table in s.tables)

    def __repr__(self) -> str:
        return (
            f"Source(kind={self.kind!r}, location={self.location!r}, "
            f"statements={len(self.statements)}, widgets={len(self.widgets)})"
        )


@attrs.frozen
class SourcesReport:
    """The data sources of some documents.

    Attributes:
        documents: The documents the report covers, in the order inspected.
        sources: Each distinct source, sorted by kind, then connection or link.
    """

    documents: Tuple[str, ...] = ()
    sources: Tuple[Source, ...] = ()

    def __repr__(self) -> str:
        return f"SourcesReport(documents={len(self.documents)}, sources={len(self.sources)})"


def build_report(inspections: Iterable[Inspection]) -> SourcesReport:
    """Collect the distinct data sources of some inspected documents.

    Args:
        inspections: The documents' inspections; a document given twice counts once.

    Returns:
        The report; see the module docstring for what it holds.
    """
    documents: Dict[str, None] = {}
    groups: Dict[Tuple[str, Optional[str], Optional[str]], _Group] = {}
    for inspection in inspections:
        document_id = inspection.document.id
        documents[document_id] = None
        for widget in inspection.widgets:
            for data_source in widget.data_sources:
                key = _key(data_source)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group()
                group.add(document_id, widget.id, data_source)
    sources = [group.source(*key) for key, group in groups.items()]
    sources.sort(key=lambda s: (s.kind.casefold(), s.location.casefold(), s.location))
    return SourcesReport(tuple(documents), tuple(sources))


def report_to_dict(report: SourcesReport) -> Dict[str, Any]:
    """The JSON-able form of a report: dicts keyed by attribute name, lists for tuples."""
    return attrs.asdict(report)


def analyze_sql(sql: str, dialect: Optional[str] = None) -> Statement:
    """Parse one SQL statement and find the tables it reads and writes.

    Args:
        sql: The statement.
        dialect: A sqlglot dialect name (``postgres``, ``mysql``, ``snowflake``, ...); None for
            sqlglot's own, which reads most SQL.

    Returns:
        A :class:`Statement` without widgets: ``tables`` and ``writes`` filled, or ``error``
        saying why the SQL could not be read.
    """
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception as exc:  # any failure of a third-party parser on data we were sent
        return Statement(sql, error=f"unparseable SQL: {_parse_failure(exc)}")
    if isinstance(tree, exp.Command):
        # sqlglot's fallback for syntax it does not know: the text is kept, not understood.
        return Statement(sql, error="unsupported SQL statement; its tables are not known")
    statements = _statements(tree)
    if any(isinstance(s.this if isinstance(s, exp.Alias) else s, exp.Condition)
           for s in statements):
        # Words that are no statement ("hello world") parse as an expression, or its alias.
        return Statement(sql, error="unparseable SQL: not a SQL statement")
    common_table_names = {cte.alias_or_name.casefold() for cte in tree.find_all(exp.CTE)}
    written = [target for s in statements for target in _written_tables(s)]
    reads: List[str] = []
    for table in tree.find_all(exp.Table):
        if any(table is target for target in written) or not table.name:
            continue  # a write target, or a table function such as generate_series(...)
        if not table.db and not table.catalog and table.name.casefold() in common_table_names:
            continue  # a common table expression of this statement, not a table
        reads.append(_table_name(table))
    return Statement(
        sql,
        tables=_sorted_names(reads),
        writes=_sorted_names(_table_name(t) for t in written),
    )


def dialect_for(connection: Optional[str]) -> Optional[str]:
    """The sqlglot dialect that a connection URL's scheme names, or None.

    Args:
        connection: A connection string such as ``postgresql+psycopg://host/db``.
    """
    if not connection or "://" not in connection:
        return None
    scheme = connection.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme.startswith("jdbc:"):
        scheme = scheme[len("jdbc:"):]
    name = _DIALECT_ALIASES.get(scheme, scheme)
    try:
        sqlglot.Dialect.get_or_raise(name)
    except Exception:  # unknown to sqlglot: its own dialect reads most SQL
        return None
    return name


class _Group:
    """What the report gathers for one source while it walks the inspections."""

    def __init__(self) -> None:
        self.statement_widgets: Dict[str, Dict[str, None]] = {}  # sql -> widget ids
        self.ranges: Dict[str, None] = {}
        self.documents: Dict[str, None] = {}
        self.widgets: Dict[str, None] = {}

    def add(self, document_id: str, widget_id: str, data_source: DataSource) -> None:
        self.documents[document_id] = None
        self.widgets[widget_id] = None
        if data_source.sql is not None:
            self.statement_widgets.setdefault(data_source.sql, {})[widget_id] = None
        if data_source.range is not None:
            self.ranges[data_source.range] = None

    def source(self, kind: str, connection: Optional[str], url: Optional[str]) -> Source:
        dialect = dialect_for(connection)
        statements = tuple(
            attrs.evolve(analyze_sql(sql, dialect), widgets=tuple(widgets))
            for sql, widgets in self.statement_widgets.items()
        )
        return Source(
            kind=kind,
            connection=connection,
            url=url,
            statements=statements,
            ranges=tuple(self.ranges),
            documents=tuple(self.documents),
            widgets=tuple(self.widgets),
        )


def _key(data_source: DataSource) -> Tuple[str, Optional[str], Optional[str]]:
    connection, url = data_source.connection, data_source.url
    return (
        data_source.kind,
        None if connection is None else redact(connection),
        None if url is None else redact(url),
    )


def _statements(tree: Any) -> List[Any]:
    """The statements of a parse: sqlglot 29 and later return an ``exp.Block`` for several."""
    if _BLOCK is None or not isinstance(tree, _BLOCK):
        return [tree]
    return [
        s for s in tree.expressions
        if isinstance(s, exp.Expression) and not isinstance(s, _EMPTY_STATEMENT)
    ]


def _written_tables(statement: exp.Expression) -> List[exp.Table]:
    if not isinstance(statement, _WRITING_STATEMENTS):
        return []
    # The target is ``this``; DROP (in sqlglot 30) and a multi-table DELETE list ``tables``.
    targets = [statement.this, *(statement.args.get("tables") or ())]
    # INSERT INTO t (a, b) and CREATE TABLE t (a INT) wrap the table in a Schema.
    targets = [t.this if isinstance(t, exp.Schema) else t for t in targets]
    return [t for t in targets if isinstance(t, exp.Table)]


def _table_name(table: exp.Table) -> str:
    return ".".join(part for part in (table.catalog, table.db, table.name) if part)


def _sorted_names(names: Iterable[str]) -> Tuple[str, ...]:
    return tuple(sorted(set(names), key=lambda name: (name.casefold(), name)))


def _parse_failure(exc: Exception) -> str:
    """One line saying why sqlglot could not parse a statement, and where."""
    errors = getattr(exc, "errors", None)  # a ParseError's structured details
    if errors and isinstance(errors[0], dict):
        error = errors[0]
        # "Expected table name but got <Token token_type: ...>": the token is shown below.
        description = str(error.get("description", "")).partition(" but got <Token")[0]
        near = f" near {error['highlight']!r}" if error.get("highlight") else ""
        return f"{description}{near} (line {error.get('line')}, column {error.get('col')})"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
