"""What the personal-data review finds: column uses, findings, security findings, assessments.

Plain frozen attrs classes with no behaviour of their own, so that every other module of
:mod:`inspector.risk` (and a user's script) can hold them without importing sqlglot.

Exposures, from the most revealing to the least:

* ``raw`` - the value reaches the document as it is (also through ``LOWER``, ``CONCAT``,
  ``COALESCE``, casts, arithmetic, and aggregates that return one of their inputs: ``MIN``,
  ``MAX``, ``ANY_VALUE``, ``STRING_AGG``, ``LAG``...).
* ``transformed`` - hashed, masked or cut down: ``MD5``, ``SHA2``, a masking function,
  ``LEFT(x, 3)``, ``SUBSTRING``, ``EXTRACT(YEAR FROM ...)``, ``DATE_TRUNC``...
* ``aggregated`` - only inside ``COUNT``, ``SUM``, ``AVG``, ``COUNT(DISTINCT ...)``...
* ``filter`` - never shown, only used to choose or order rows: ``WHERE``, ``JOIN ... ON``,
  ``GROUP BY``, ``HAVING``, ``ORDER BY``, a window's ``PARTITION BY``, a comparison.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

import attrs

__all__ = [
    "ALL_COLUMNS",
    "Assessment",
    "CATEGORIES",
    "ColumnUse",
    "EXPOSURES",
    "Finding",
    "KINDS",
    "LEVELS",
    "SecurityFinding",
    "StatementLineage",
    "UNKNOWN_CATEGORY",
    "more_exposed",
]

#: The exposures, most revealing first.
EXPOSURES = ("raw", "transformed", "aggregated", "filter")

#: The personal-data categories a finding can name (the fixed vocabulary of the rules).
CATEGORIES = (
    "email",
    "phone",
    "person_name",
    "postal_address",
    "national_id",
    "passport",
    "date_of_birth",
    "financial_account",
    "compensation",
    "health",
    "special_category",
    "ip_address",
    "device_id",
    "geolocation",
    "gender",
    "credential",
    "username",
)

#: The category of a finding whose columns are not known: ``SELECT *``, unparseable SQL.
UNKNOWN_CATEGORY = "unknown"

#: The column name of a finding about all the columns of a table (``SELECT *``, ``t.*``).
ALL_COLUMNS = "*"

#: What a finding is about: one column, all the columns of a table, or SQL that was not read.
KINDS = ("column", "all_columns", "unparseable")

#: The levels of an assessment, lowest first.
LEVELS = ("none", "low", "medium", "high")


def more_exposed(first: str, second: str) -> str:
    """The more revealing of two exposures (``raw`` over ``transformed`` over ...)."""
    return first if EXPOSURES.index(first) <= EXPOSURES.index(second) else second


def _string_list(value: Iterable[str]) -> List[str]:
    return list(value)


@attrs.frozen
class ColumnUse:
    """How one statement uses one column: the lineage, before any classification.

    Attributes:
        table: The table it comes from (``schema.table`` kept whole), or None when that cannot
            be known without a schema (an unqualified column of a join).
        column: The column's name; ``*`` for all the columns of ``table``.
        exposure: ``raw``, ``transformed``, ``aggregated`` or ``filter``.
        evidence: How the statement uses it, e.g. ``MD5(users.phone) AS p``, ``in WHERE``.
        candidates: The tables it may come from, when ``table`` is None.
    """

    table: Optional[str]
    column: str
    exposure: str
    evidence: Tuple[str, ...] = ()
    candidates: Tuple[str, ...] = ()


@attrs.frozen
class StatementLineage:
    """The columns one SQL text uses, or why they are not known.

    Attributes:
        uses: One entry per (table, column), with its most revealing exposure.
        error: Why the SQL could not be read (the parser's reason), or None.
    """

    uses: Tuple[ColumnUse, ...] = ()
    error: Optional[str] = None


@attrs.frozen
class Finding:
    """A column that holds personal data, how the statement exposes it, and why we think so.

    Attributes:
        table: The table the column comes from, or None when it cannot be known.
        column: The column's name (``*`` for ``SELECT *``).
        category: One of :data:`CATEGORIES`, or ``unknown`` for ``SELECT *`` and unread SQL.
        exposure: ``raw``, ``transformed``, ``aggregated`` or ``filter``.
        confidence: How sure the classification is, from 0 to 1.
        evidence: Why: the rule and name that matched, the expression, a flag the server sent.
        kind: ``column``, ``all_columns`` (``SELECT *``: the exposure of each column is
            unknown) or ``unparseable`` (the SQL could not be read; ``evidence`` says why).
        widget: The widget whose statement it is, when found by :func:`inspector.risk.assess`.
    """

    table: Optional[str]
    column: str
    category: str
    exposure: str
    confidence: float
    evidence: List[str] = attrs.field(factory=list, converter=_string_list, hash=False)
    kind: str = "column"
    widget: Optional[str] = None

    @property
    def where(self) -> str:
        """``table.column``, or the column alone when the table is not known."""
        return f"{self.table}.{self.column}" if self.table else self.column

    def __repr__(self) -> str:
        # Short, for a REPL: the evidence is one attribute away.
        widget = f", widget={self.widget!r}" if self.widget else ""
        return (f"Finding({self.category} {self.exposure}: {self.where}, "
                f"confidence={self.confidence}{widget})")


@attrs.frozen
class SecurityFinding:
    """A security problem beside the personal data: a password, a sheet shared outside.

    Attributes:
        kind: ``embedded_password`` or ``external_share``.
        widget: The widget whose data source it is.
        location: The connection string or link, with any secret replaced by ``REDACTED``.
        evidence: Why, in words; never the secret itself.
    """

    kind: str
    widget: str
    location: str
    evidence: Tuple[str, ...] = ()


@attrs.frozen
class Assessment:
    """The personal-data exposure of one document.

    Attributes:
        document_id: The document.
        score: 0 (nothing personal) to 100 (special categories or national ids shown raw).
        level: ``none``, ``low``, ``medium`` or ``high``.
        findings: Every finding, in widget order.
        security_findings: The security findings, in widget order.
        reasons: The findings that weigh most, in words, heaviest first.
        document_name: The document's display name, if it has one.
    """

    document_id: str
    score: int
    level: str
    findings: Tuple[Finding, ...] = ()
    security_findings: Tuple[SecurityFinding, ...] = ()
    reasons: Tuple[str, ...] = ()
    document_name: Optional[str] = None

    def __repr__(self) -> str:
        return (
            f"Assessment(document_id={self.document_id!r}, score={self.score}, "
            f"level={self.level!r}, findings={len(self.findings)}, "
            f"security_findings={len(self.security_findings)})"
        )
