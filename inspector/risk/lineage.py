"""Column-level lineage: which columns a SQL statement reads, from where, and how it uses them.

Built on sqlglot: the statement is parsed, qualified by the optimizer's ``qualify`` (tables
aliased, columns given their table where that can be known without a schema, stars of derived
tables expanded), and each output column is traced by :func:`sqlglot.lineage.lineage` through
CTEs, subqueries, UNIONs and aliases down to the tables it comes from. Each step of a trace is
read for what it does to the value (see :mod:`inspector.risk.findings` for the exposures): a
column keeps the least revealing exposure met on its way to the output. Every column used
anywhere else (``WHERE``, ``JOIN ... ON``, ``GROUP BY``, ``HAVING``, ``ORDER BY``, a subquery
that filters) is a ``filter`` use. Columns a CTE selects but nobody reads are not used.

What this module does not guess: an unqualified column of a join, whose table only a schema
could say, keeps ``table=None`` and lists the candidate tables; ``SELECT *`` over a table is a
use of ``*`` (all its columns). SQL that cannot be parsed is reported with the parser's reason.

This module needs sqlglot (the ``risk`` extra).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import sqlglot
from sqlglot import Dialect, exp
from sqlglot.lineage import Node, lineage, to_node
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.qualify_columns import qualify_outputs
from sqlglot.optimizer.scope import Scope, build_scope, find_all_in_scope
from sqlglot.schema import ensure_schema

from inspector.risk.findings import ALL_COLUMNS, EXPOSURES, ColumnUse, StatementLineage
from inspector.sources import _parse_failure, _statements

__all__ = ["MAX_SQL_LENGTH", "column_uses"]

#: The longest SQL text analysed: longer ones are reported, not parsed (time and memory stay
#: bounded whatever a server sends). Dashboards' statements are a few KiB.
MAX_SQL_LENGTH = 1_000_000

RAW, TRANSFORMED, AGGREGATED, FILTER = EXPOSURES

# A node of sqlglot's syntax tree: its base class is exp.Expression up to sqlglot 29 and
# exp.Expr from 30 on, so the type is left open.
SqlNode = Any

# Aggregates and window functions that return one of their inputs: the value is shown as is.
_VALUE_KEEPING_AGGREGATES = frozenset({
    "max", "min", "anyvalue", "first", "last", "firstvalue", "lastvalue", "nthvalue", "lag",
    "lead", "arrayagg", "groupconcat", "argmax", "argmin", "mode", "collectlist", "collectset",
    "arrayuniqueagg", "string_agg", "listagg", "group_concat", "array_agg", "any_value",
})

# Functions that hash, mask, cut or coarsen a value (sqlglot's keys, and the names of
# functions it does not know, lower case).
_TRANSFORMING_FUNCTIONS = frozenset({
    # hashes
    "md5", "md5digest", "sha", "sha1", "sha2", "sha1digest", "sha2digest", "sha256", "sha512",
    "standardhash", "farmfingerprint", "hash", "hashbytes", "hash_md5", "hash_sha256", "crc32",
    "xxhash64", "xxhash", "murmur3", "murmurhash3_32", "hmac", "md5_hex", "sha2_hex",
    "sha1_hex", "md5_number_lower64",
    # masking, encryption, pseudonymisation
    "mask", "mask_first_n", "mask_last_n", "mask_show_first_n", "mask_show_last_n",
    "mask_hash", "anonymize", "pseudonymize", "redact", "encrypt", "aes_encrypt", "tokenize",
    "regexpreplace", "regexp_replace",
    # parts of a value
    "left", "right", "substring", "substr", "splitpart", "split_part", "initcap_first",
    "length", "len", "char_length",
    # dates and numbers made coarse
    "extract", "datetrunc", "timestamptrunc", "datetimetrunc", "timetrunc", "date_trunc",
    "year", "month", "quarter", "week", "dayofweek", "date_part", "datepart", "trunc",
})

# The clauses of a SELECT other than its projections, as the ``arg_types`` keys sqlglot uses,
# and the words a reviewer knows them by.
_CLAUSE_NAMES = {
    "where": "WHERE",
    "joins": "JOIN ... ON",
    "group": "GROUP BY",
    "having": "HAVING",
    "order": "ORDER BY",
    "qualify": "QUALIFY",
    "from": "FROM",
    "laterals": "LATERAL",
    "windows": "WINDOW",
    "distinct": "DISTINCT ON",
}

# Statements sqlglot keeps as text that read settings or the catalog, never rows.
_NO_DATA_COMMANDS = frozenset({
    "SHOW", "SET", "RESET", "USE", "DESCRIBE", "DESC", "COMMENT", "GRANT", "REVOKE",
    "ANALYZE", "VACUUM", "BEGIN", "COMMIT", "ROLLBACK",
})

_MAX_EVIDENCE = 3
_MAX_EXPRESSION = 80


def column_uses(sql: str, dialect: Optional[str] = None) -> StatementLineage:
    """Find every column one SQL text reads, its table where known, and how it is used.

    Args:
        sql: One statement, or several separated by semicolons.
        dialect: A sqlglot dialect name (``postgres``, ``snowflake``, ``tsql``, ...); None for
            sqlglot's own, which reads most SQL.

    Returns:
        The uses, one per (table, column) with its most revealing exposure; or the reason the
        SQL could not be read. Never raises for bad SQL.
    """
    if len(sql) > MAX_SQL_LENGTH:
        return StatementLineage(
            error=f"SQL of {len(sql)} characters, over {MAX_SQL_LENGTH}: not analysed")
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception as exc:  # any failure of a third-party parser on data we were sent
        return StatementLineage(error=f"unparseable SQL: {_parse_failure(exc)}")
    if isinstance(tree, exp.Command):
        if str(tree.this).upper() in _NO_DATA_COMMANDS:
            return StatementLineage()
        return StatementLineage(error="unsupported SQL statement; its columns are not known")
    uses: List[ColumnUse] = []
    for statement in _statements(tree):
        if isinstance(statement.this if isinstance(statement, exp.Alias) else statement,
                      exp.Condition):
            return StatementLineage(error="unparseable SQL: not a SQL statement")
        query = statement if isinstance(statement, exp.Query) else statement.find(exp.Query)
        if query is None:
            continue  # SHOW, SET, DROP ...: reads no column
        try:
            uses.extend(_Tracer(query, dialect).uses())
        except Exception as exc:  # sqlglot's optimizer on SQL it parsed but cannot follow
            return StatementLineage(error=f"SQL not understood: {_one_line(exc)}")
    return StatementLineage(uses=_merged(uses))


class _Tracer:
    """The lineage of one query: its output columns traced, then its other columns."""

    def __init__(self, query: SqlNode, dialect: Optional[str]) -> None:
        self.dialect = dialect
        # The optimizer normalises identifiers (EmployeeName -> employeename in T-SQL); the
        # names are reported, and classified, as written.
        self.spelling: Dict[str, str] = {}
        for identifier in query.find_all(exp.Identifier):
            self.spelling.setdefault(identifier.name.casefold(), identifier.name)
        self.tree = _qualified(query, dialect)
        root = build_scope(self.tree)
        if root is None:
            raise ValueError("not a query")
        self.root: Scope = root
        self.scope_of_column: Dict[int, Scope] = {}
        self.scopes: List[Scope] = list(root.traverse())
        self.scope_of_query = {id(scope.expression): scope for scope in self.scopes}
        for scope in self.scopes:
            for column in find_all_in_scope(scope.expression, exp.Column):
                self.scope_of_column[id(column)] = scope
        self.traced: Set[int] = set()  # ids of the Column nodes already accounted for
        self.visited: Set[Tuple[int, str]] = set()
        self.nodes: List[Node] = []  # the nodes visited, kept alive so their ids stay unique
        self.found: List[ColumnUse] = []

    def uses(self) -> List[ColumnUse]:
        if isinstance(self.root.expression, exp.Query) and self.root.expression.selects:
            outputs = lineage(None, self.tree, schema={}, scope=self.root, dialect=self.dialect,
                              trim_selects=False, copy=False)
            for node in outputs.values():
                self._visit(node, RAW, ())
        for scope in self.scopes:
            self._other_columns(scope)
        return self.found

    # -- the output columns, through the lineage graph --

    def _visit(self, node: Node, exposure: str, how: Tuple[str, ...]) -> None:
        key = (id(node), exposure)
        if key in self.visited:
            return
        self.visited.add(key)
        self.nodes.append(node)
        if isinstance(node.source, exp.SetOperation) and node.name in (
                "UNION", "INTERSECT", "EXCEPT"):
            for branch in node.downstream:  # each branch's column at the same position
                self._visit(branch, exposure, how)
            return
        projection = node.expression
        columns = list(find_all_in_scope(projection, exp.Column))
        shown = _shorten(projection.sql(dialect=self.dialect))
        for child in node.downstream:
            target = child.expression
            if isinstance(target, (exp.Table, exp.Placeholder)) or (
                child.name.endswith("*") and not isinstance(target, (exp.Alias, exp.Column))
            ):
                self._leaf(child, projection, columns, exposure, how + (shown,))
                continue
            column = _column_named(columns, child.name)
            if column is not None:
                self.traced.add(id(column))
                step, reason = _step(column, projection)
            else:  # a scalar subquery of the projection, or a branch of a set operation
                step, reason = RAW, ""
            self._visit(child, _least(exposure, step), how + _nonempty(shown, reason))

    def _leaf(self, child: Node, projection: SqlNode, columns: List[exp.Column], exposure: str,
              how: Tuple[str, ...]) -> None:
        target = child.expression
        if child.name.endswith("*") and isinstance(target, (exp.Table, exp.Select)):
            column = _column_named(columns, child.name)
            if column is not None:
                self.traced.add(id(column))
            if isinstance(target, exp.Table):
                self._emit(_table_name(target), ALL_COLUMNS, RAW, how)
            else:  # SELECT * over a derived table that itself has a star
                self._stars_of(target, how)
            return
        column = _column_named(columns, child.name)
        if column is None:
            return
        self.traced.add(id(column))
        step, reason = _step(column, projection)
        exposure = _least(exposure, step)
        how = how + _nonempty(reason)
        if isinstance(target, exp.Table):
            self._emit(_table_name(target), column.name, exposure, how)
        else:
            self._resolve(column, exposure, how)

    def _stars_of(self, select: SqlNode, how: Tuple[str, ...]) -> None:
        """The tables whose columns a star over a derived table shows, through its stars."""
        scope = self.scope_of_query.get(id(select))
        if scope is None:
            return
        for projection in getattr(select, "selects", []):
            star_table = (projection.table if isinstance(projection, exp.Column)
                          and isinstance(projection.this, exp.Star) else None)
            if not isinstance(projection, exp.Star) and star_table is None:
                # A named column beside the star: shown through the outer star too.
                self._visit(to_node(projection.alias_or_name, scope=scope, dialect=self.dialect,
                                    schema=_NO_SCHEMA, trim_selects=False), RAW, how)
                continue
            for name, (_, source) in scope.selected_sources.items():
                if star_table and name != star_table:
                    continue
                if isinstance(source, exp.Table):
                    self._emit(_table_name(source), ALL_COLUMNS, RAW, how)
                elif isinstance(source, Scope):
                    self._stars_of(source.expression, how)

    # -- every other column: filters --

    def _other_columns(self, scope: Scope) -> None:
        filtering = _filters(scope)
        outputs = {s.alias_or_name for s in getattr(scope.expression, "selects", [])}
        for column in find_all_in_scope(scope.expression, exp.Column):
            if id(column) in self.traced or isinstance(column.this, exp.Star):
                continue
            clause = _clause_of(column, scope.expression)
            if clause is None and not filtering:
                continue  # a projection nobody reads (a CTE's spare column)
            if clause in ("order", "having", "qualify") and not column.table and (
                    column.name in outputs):
                continue  # refers to an output column, traced already
            self.traced.add(id(column))
            where = f"in {_CLAUSE_NAMES.get(clause or '', 'a subquery that filters')}"
            condition = column.find_ancestor(exp.Predicate)
            if condition is not None and _clause_of(condition, scope.expression) == clause:
                where += f": {_shorten(condition.sql(dialect=self.dialect))}"
            self._resolve(column, FILTER, (where,))

    # -- where a column comes from --

    def _resolve(self, column: exp.Column, exposure: str, how: Tuple[str, ...]) -> None:
        scope = self.scope_of_column.get(id(column))
        if scope is None:
            self._emit(None, column.name, exposure, how)
            return
        source, candidates = _source_of(column, scope)
        if isinstance(source, exp.Table):
            self._emit(_table_name(source), column.name, exposure, how)
        elif isinstance(source, Scope):
            selects = getattr(source.expression, "selects", [])
            if not isinstance(source.expression, exp.SetOperation) and not any(
                    s.alias_or_name == column.name or isinstance(s, exp.Star) for s in selects):
                self._emit(None, column.name, exposure, how)  # not a column of the derived table
                return
            try:
                node = to_node(column.name, scope=source, dialect=self.dialect, schema=_NO_SCHEMA,
                               trim_selects=False)
            except Exception:  # a column the derived table does not have: report it unresolved
                self._emit(None, column.name, exposure, how)
                return
            self._visit(node, exposure, how)
        else:
            self._emit(None, column.name, exposure, how, candidates)

    def _emit(self, table: Optional[str], column: str, exposure: str, how: Iterable[str],
              candidates: Tuple[str, ...] = ()) -> None:
        evidence = tuple(dict.fromkeys(h for h in how if h))
        if table is not None:
            table = ".".join(self.spelling.get(p.casefold(), p) for p in table.split("."))
        column = self.spelling.get(column.casefold(), column)
        self.found.append(ColumnUse(table, column, exposure, evidence, candidates))


def _qualified(query: SqlNode, dialect: Optional[str]) -> SqlNode:
    options: Dict[str, Any] = dict(dialect=dialect, validate_qualify_columns=False,
                                   quote_identifiers=False, identify=False)
    try:
        return qualify(query.copy(), **options)
    except Exception:
        # Without a schema the optimizer refuses some correlated subqueries; tables are still
        # qualified, and columns are then resolved scope by scope below.
        tree = qualify(query.copy(), qualify_columns=False, **options)
        root = build_scope(tree)
        for scope in root.traverse() if root is not None else ():
            qualify_outputs(scope, Dialect.get_or_raise(dialect))  # names every projection
        return tree


_NO_SCHEMA = ensure_schema({})  # no schema: what cannot be known without one is not guessed


def _source_of(column: exp.Column, scope: Scope) -> Tuple[Any, Tuple[str, ...]]:
    """The table or scope a column comes from, else None and the candidate tables."""
    current: Optional[Scope] = scope
    if column.table:
        while current is not None:  # a correlated reference reaches an outer scope
            if column.table in current.selected_sources:
                return current.selected_sources[column.table][1], ()
            if column.table in current.sources:
                return current.sources[column.table], ()
            current = current.parent
        return None, ()
    selected = scope.selected_sources
    if len(selected) == 1:
        return next(iter(selected.values()))[1], ()
    candidates = tuple(
        _table_name(source) if isinstance(source, exp.Table) else name
        for name, (_, source) in selected.items()
    )
    return None, candidates


def _filters(scope: Scope) -> bool:
    """Whether the scope is a subquery whose result only chooses rows (IN, EXISTS, ...)."""
    if not scope.is_subquery or scope.parent is None:
        return False
    return _clause_of(scope.expression, scope.parent.expression) is not None


def _clause_of(node: SqlNode, select: SqlNode) -> Optional[str]:
    """The clause of ``select`` that holds ``node``: None for a projection."""
    while node.parent is not None and node.parent is not select:
        node = node.parent
    if node.parent is None:
        return "unknown"
    key = node.arg_key
    return None if key == "expressions" else key


def _step(column: exp.Column, top: SqlNode) -> Tuple[str, str]:
    """What the expression around ``column``, up to ``top``, does to its value."""
    exposure, reason = RAW, ""
    node: SqlNode = column
    while node is not top and node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.Window) and node is not parent.this:
            return FILTER, "in a window's PARTITION BY / ORDER BY"
        if isinstance(parent, (exp.Predicate, exp.Ordered)) or (
                isinstance(parent, exp.Case) and node is parent.this) or (
                isinstance(parent, exp.If) and node is parent.this):
            return FILTER, f"compared only: {_shorten(parent.sql())}"
        name = _function_name(parent)
        if isinstance(parent, exp.AggFunc):
            if name not in _VALUE_KEEPING_AGGREGATES and exposure != AGGREGATED:
                exposure, reason = AGGREGATED, f"aggregated: {_shorten(parent.sql())}"
        elif isinstance(parent, exp.Func) and name in _TRANSFORMING_FUNCTIONS and (
                exposure == RAW):
            exposure, reason = TRANSFORMED, f"transformed: {_shorten(parent.sql())}"
        node = parent
    return exposure, reason


def _function_name(node: SqlNode) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.key)


def _column_named(columns: List[exp.Column], name: str) -> Optional[exp.Column]:
    """The column of a projection that a lineage node names (``t.col``, or ``col``)."""
    table, _, column = name.rpartition(".")
    for candidate in columns:
        if candidate.sql(comments=False) == name:
            return candidate
    for candidate in columns:
        if candidate.name == column and (candidate.table or "") == table:
            return candidate
    return None


def _least(first: str, second: str) -> str:
    return first if EXPOSURES.index(first) >= EXPOSURES.index(second) else second


def _merged(uses: List[ColumnUse]) -> Tuple[ColumnUse, ...]:
    """One use per (table, column): the most revealing exposure, the evidence of all."""
    merged: Dict[Tuple[Optional[str], str], ColumnUse] = {}
    for use in uses:
        key = ((use.table or "").casefold() or None, use.column.casefold())
        previous = merged.get(key)
        if previous is None:
            merged[key] = use
            continue
        best, other = (previous, use) if EXPOSURES.index(previous.exposure) <= EXPOSURES.index(
            use.exposure) else (use, previous)
        evidence = tuple(dict.fromkeys(best.evidence + other.evidence))[:_MAX_EVIDENCE]
        candidates = tuple(dict.fromkeys(best.candidates + other.candidates))
        merged[key] = ColumnUse(best.table, best.column, best.exposure, evidence, candidates)
    return tuple(
        ColumnUse(u.table, u.column, u.exposure, u.evidence[:_MAX_EVIDENCE], u.candidates)
        for u in merged.values()
    )


def _table_name(table: exp.Table) -> str:
    return ".".join(part for part in (table.catalog, table.db, table.name) if part)


def _nonempty(*texts: str) -> Tuple[str, ...]:
    return tuple(text for text in texts if text)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_EXPRESSION else text[: _MAX_EXPRESSION - 3] + "..."


def _one_line(exc: Exception) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]
