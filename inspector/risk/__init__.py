"""Personal-data exposure: which personal data each document shows, in what form, and why.

The compliance step after the data-source report: for each SQL statement a document runs,
which columns reach it (column-level lineage, :mod:`inspector.risk.lineage`), which of them
hold personal data (rules that are data, :mod:`inspector.risk.rules`,
:mod:`inspector.risk.classify`), and a score per document that ranks documents for review
(:mod:`inspector.risk.score`). Every finding carries its evidence.

Needs sqlglot (``pip install 'document-inspector[risk]'``), imported when a function here is
first called, not when this package is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Mapping, Optional

from inspector.risk.findings import (
    CATEGORIES,
    EXPOSURES,
    LEVELS,
    Assessment,
    Finding,
    SecurityFinding,
)
from inspector.risk.rules import RuleSet, default_rules, load_rules

if TYPE_CHECKING:
    from inspector.models import Inspection

__all__ = [
    "Assessment",
    "CATEGORIES",
    "EXPOSURES",
    "Finding",
    "LEVELS",
    "RuleSet",
    "SecurityFinding",
    "assess",
    "default_rules",
    "find_personal_data",
    "load_rules",
]


def find_personal_data(
    sql: str,
    dialect: Optional[str] = None,
    *,
    rules: Optional[RuleSet] = None,
    flags: Optional[Mapping[str, str]] = None,
) -> List[Finding]:
    """Find the personal data one SQL text reads, and how it exposes it.

    Args:
        sql: The statement (or several, separated by semicolons).
        dialect: A sqlglot dialect name (``postgres``, ``mysql``, ``snowflake``, ``tsql``...);
            None for sqlglot's own, which reads most SQL.
        rules: The rules to classify columns by; default :func:`default_rules`.
        flags: Column name -> category, for columns the server flagged as personal.

    Returns:
        One finding per personal column (by table and column) with its most revealing
        exposure; one per ``SELECT *`` (category ``unknown``, kind ``all_columns``); or one
        of kind ``unparseable`` with the parser's reason. Columns that hold no personal data
        are not returned.

    Raises:
        InvalidArgument: ``sql`` is not a string.
    """
    from inspector.risk.score import statement_findings

    return statement_findings(sql, dialect, rules=rules, flags=flags)


def assess(inspection: Inspection, rules: Optional[RuleSet] = None) -> Assessment:
    """Score one inspected document's personal-data exposure, with the reasons.

    Args:
        inspection: The document's inspection (:meth:`inspector.DocumentInspector.inspect`).
        rules: The rules; default :func:`default_rules`. Its ``company_domains`` say which
            spreadsheet shares are inside the company.

    Returns:
        The assessment: ``score`` 0-100, ``level``, ``findings`` (each with its widget),
        ``security_findings`` and the ``reasons`` that weigh most.
    """
    from inspector.risk.score import assess_inspection

    return assess_inspection(inspection, rules)
