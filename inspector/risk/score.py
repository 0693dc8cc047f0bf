"""The assessment of a document: its findings, its security findings and one score.

Pure functions over an :class:`~inspector.models.Inspection`; no I/O.

The score ranks documents for review. Each distinct finding weighs its category's weight times
its exposure's factor times its confidence (all in [0, 1]), and the weights combine as
independent chances: ``score = 100 * (1 - prod(1 - weight))``, so one special category shown
raw scores about 95, one email shown raw about 45, and several raw emails more than one. Raw
weighs most; transformed (hashed, masked) and aggregated much less; filter-only least. A
``SELECT *`` over a table whose name says it holds people weighs like an email shown raw; over
any other table, less. SQL that cannot be read weighs a little: its columns are unknown.

Levels: ``none`` (score 0), ``low`` (below 25), ``medium`` (below 60), ``high``.

Security findings stand beside the score, not in it:

* ``embedded_password`` - a connection string (or a link) carrying a password or another
  secret. The finding shows it redacted (:func:`inspector.redaction.redact`), never the secret.
* ``external_share`` - a spreadsheet shared beyond the company's domains
  (:attr:`RuleSet.company_domains <inspector.risk.rules.RuleSet.company_domains>`): a data
  source's ``sharedWith`` wire field lists an address or domain outside them, or its
  ``linkSharing`` is ``anyone`` / ``public`` / ``anyoneWithLink``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from inspector.exceptions import InvalidArgument
from inspector.models import DataSource, Inspection
from inspector.redaction import REDACTED, redact
from inspector.risk.classify import Classifier
from inspector.risk.findings import (
    CATEGORIES,
    UNKNOWN_CATEGORY,
    Assessment,
    Finding,
    SecurityFinding,
)
from inspector.risk.rules import RuleSet, default_rules

__all__ = [
    "CATEGORY_WEIGHTS",
    "EXPOSURE_FACTORS",
    "assess_inspection",
    "finding_weight",
    "level_for",
    "score_findings",
    "security_findings",
    "statement_findings",
]

#: How much a category weighs when shown raw, with full confidence.
CATEGORY_WEIGHTS: Mapping[str, float] = {
    "special_category": 1.0,
    "health": 1.0,
    "national_id": 1.0,
    "passport": 0.9,
    "financial_account": 0.9,
    "credential": 0.9,
    "compensation": 0.7,
    "date_of_birth": 0.6,
    "geolocation": 0.6,
    "email": 0.5,
    "phone": 0.5,
    "postal_address": 0.5,
    "person_name": 0.4,
    "ip_address": 0.4,
    "device_id": 0.4,
    "gender": 0.4,
    "username": 0.3,
    UNKNOWN_CATEGORY: 0.8,  # times a star's confidence: 0.6 over people, 0.3 elsewhere
}

#: What an exposure keeps of a category's weight.
EXPOSURE_FACTORS: Mapping[str, float] = {
    "raw": 1.0,
    "transformed": 0.3,
    "aggregated": 0.15,
    "filter": 0.05,
}

_LEVEL_BOUNDS = ((60, "high"), (25, "medium"), (1, "low"))
_REASONS = 3
_SHARED_WITH_ANYONE = frozenset({"anyone", "public", "anyonewithlink", "anyone_with_link"})


def statement_findings(
    sql: str,
    dialect: Optional[str] = None,
    *,
    rules: Optional[RuleSet] = None,
    flags: Optional[Mapping[str, str]] = None,
) -> List[Finding]:
    """:func:`inspector.risk.find_personal_data`: the lineage of ``sql``, classified."""
    if not isinstance(sql, str):
        raise InvalidArgument(f"sql must be a string, not {type(sql).__name__}")
    _check_rules(rules)
    if flags is not None:
        unknown = {str(c) for c in flags.values()} - set(CATEGORIES)
        if unknown:
            raise InvalidArgument(f"flags: unknown categories {sorted(unknown)}; expected "
                                  f"some of {', '.join(CATEGORIES)}")
    import sqlglot

    from inspector.risk.lineage import column_uses

    if dialect is not None:
        try:
            sqlglot.Dialect.get_or_raise(dialect)
        except Exception:  # sqlglot's error for a name it does not know
            raise InvalidArgument(f"dialect: {dialect!r} is not a dialect sqlglot knows") \
                from None

    return _classifier(rules).findings(column_uses(sql, dialect), flags)


@functools.lru_cache(maxsize=8)
def _classifier(rules: Optional[RuleSet]) -> Classifier:
    return Classifier(default_rules() if rules is None else rules)


def assess_inspection(inspection: Inspection, rules: Optional[RuleSet] = None) -> Assessment:
    """:func:`inspector.risk.assess`: every widget's statements and sources, scored."""
    from inspector.sources import dialect_for

    if not isinstance(inspection, Inspection):
        raise InvalidArgument(f"inspection must be an Inspection, not "
                              f"{type(inspection).__name__}")
    _check_rules(rules)
    rule_set = default_rules() if rules is None else rules
    findings: List[Finding] = []
    seen: Dict[Tuple[str, Optional[str], Tuple[Tuple[str, str], ...]], List[Finding]] = {}
    for widget in inspection.widgets:
        for source in widget.data_sources:
            if source.sql is None:
                continue
            flags = _flags(source)
            key = (source.sql, source.connection, tuple(sorted(flags.items())))
            if key not in seen:
                seen[key] = statement_findings(
                    source.sql, dialect_for(source.connection), rules=rules, flags=flags)
            findings.extend(_with_widget(f, widget.id) for f in seen[key])
    security = security_findings(
        ((widget.id, source) for widget in inspection.widgets for source in widget.data_sources),
        rule_set.company_domains,
    )
    score, reasons = score_findings(findings)
    reasons += tuple(_security_reason(s) for s in _distinct_security(security))
    return Assessment(
        document_id=inspection.document.id,
        score=score,
        level=level_for(score),
        findings=tuple(findings),
        security_findings=tuple(security),
        reasons=reasons,
        document_name=inspection.document.name,
    )


def _check_rules(rules: Optional[RuleSet]) -> None:
    if rules is not None and not isinstance(rules, RuleSet):
        raise InvalidArgument(f"rules must be a RuleSet (inspector.risk.load_rules), not "
                              f"{type(rules).__name__}")


def finding_weight(finding: Finding) -> float:
    """What one finding weighs in the score, from 0 to 1."""
    return (CATEGORY_WEIGHTS.get(finding.category, 0.5)
            * EXPOSURE_FACTORS.get(finding.exposure, 1.0)
            * min(max(finding.confidence, 0.0), 1.0))


def score_findings(findings: Iterable[Finding]) -> Tuple[int, Tuple[str, ...]]:
    """The score (0-100) of some findings, and the heaviest of them in words."""
    heaviest: Dict[Tuple[Optional[str], str, str], Tuple[float, Finding]] = {}
    for finding in findings:
        key = ((finding.table or "").casefold(), finding.column.casefold(), finding.category)
        weight = finding_weight(finding)
        if key not in heaviest or weight > heaviest[key][0]:
            heaviest[key] = (weight, finding)
    kept = math.prod(1.0 - weight for weight, _ in heaviest.values())
    score = min(100, round(100 * (1.0 - kept)))
    if score == 0 and heaviest:
        score = 1  # something was found: never "none"
    ranked = sorted(heaviest.values(), key=lambda item: -item[0])
    return score, tuple(_reason(finding) for _, finding in ranked[:_REASONS])


def level_for(score: int) -> str:
    """The level of a score: ``none``, ``low``, ``medium`` or ``high``."""
    for bound, level in _LEVEL_BOUNDS:
        if score >= bound:
            return level
    return "none"


def security_findings(
    sources: Iterable[Tuple[str, DataSource]], company_domains: Iterable[str]
) -> List[SecurityFinding]:
    """Passwords in connection strings and links; spreadsheets shared outside the company.

    Args:
        sources: (widget id, data source) pairs.
        company_domains: The domains inside the company (``example.com`` covers its
            subdomains too).
    """
    domains = tuple(d.casefold() for d in company_domains)
    found: List[SecurityFinding] = []
    for widget_id, source in sources:
        for field, value in (("connection string", source.connection), ("link", source.url)):
            # REDACTED already there: the inventory stored it with the secret taken out.
            if value is not None and (redact(value) != value or REDACTED in value):
                found.append(SecurityFinding(
                    "embedded_password", widget_id, redact(value),
                    (f"the {field} carries a password or secret (shown here redacted)",)))
        outside = _shared_outside(source.extra, domains)
        if outside:
            found.append(SecurityFinding(
                "external_share", widget_id, redact(source.url or source.connection or ""),
                (f"shared outside the company's domains: {', '.join(outside)}",)))
    return found


def _shared_outside(extra: Mapping[str, Any], domains: Tuple[str, ...]) -> List[str]:
    outside: List[str] = []
    sharing = extra.get("linkSharing")
    if isinstance(sharing, str) and sharing.replace(" ", "").casefold() in _SHARED_WITH_ANYONE:
        outside.append(f"anyone with the link ({sharing})")
    shared_with = extra.get("sharedWith")
    for entry in shared_with if isinstance(shared_with, list) else ():
        if not isinstance(entry, str):
            continue
        domain = entry.rpartition("@")[2].casefold().strip(".")
        if not any(domain == d or domain.endswith("." + d) for d in domains):
            outside.append(entry)
    return outside


def _flags(source: DataSource) -> Dict[str, str]:
    """Columns the server flagged as personal: a ``personalData`` wire field, name -> category."""
    flagged = source.extra.get("personalData")
    if not isinstance(flagged, Mapping):
        return {}
    return {str(name): str(category) for name, category in flagged.items()
            if category in CATEGORIES}


def _with_widget(finding: Finding, widget_id: str) -> Finding:
    return Finding(finding.table, finding.column, finding.category, finding.exposure,
                   finding.confidence, finding.evidence, kind=finding.kind, widget=widget_id)


def _reason(finding: Finding) -> str:
    if finding.kind == "unparseable":
        return "SQL not read (columns unknown)"
    if finding.kind == "all_columns":
        return f"SELECT * over {finding.table}"
    return f"{finding.category} {finding.exposure} ({finding.where})"


def _distinct_security(found: List[SecurityFinding]) -> List[SecurityFinding]:
    distinct: Dict[Tuple[str, str], SecurityFinding] = {}
    for finding in found:
        distinct.setdefault((finding.kind, finding.location), finding)
    return list(distinct.values())


def _security_reason(finding: SecurityFinding) -> str:
    if finding.kind == "embedded_password":
        return "password in a connection string"
    return "spreadsheet shared outside"
