"""The personal-data review kept in the inventory: assessments and findings per stored version.

Each live document's current version (:mod:`inspector.inventory`) is assessed once per rule
set: its score, reasons, security findings (secrets redacted, as everything in the inventory)
and findings are stored against the version in one transaction, replacing an older review of
the same version. A version already reviewed with the same rules is read back, not assessed
again, so reviewing 40,000 documents after a scan costs only the documents that changed.

Then the inventory answers :func:`documents_showing`: which documents show a category, in an
exposure ("which documents show ``national_id`` raw?"), from the store alone.

Needs the ``inventory`` extra (SQLAlchemy, alembic) and, to assess, sqlglot.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, Iterator, List, Optional, Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspector.exceptions import InvalidArgument
from inspector.inventory import schema as t
from inspector.models import Inspection
from inspector.risk.findings import CATEGORIES, EXPOSURES, Assessment, Finding, SecurityFinding
from inspector.risk.rules import RuleSet, default_rules, rules_key
from inspector.risk.score import assess_inspection
from inspector.serialization import from_json

__all__ = ["ExposureRecord", "assess_stored", "documents_showing"]

_BATCH = 200


@attrs.frozen
class ExposureRecord:
    """A stored finding: a document whose current version shows a category.

    Attributes:
        document_id: The document.
        version: Its version in the inventory.
        widget_id: The widget whose SQL shows it.
        table: The table the column comes from, or None when it cannot be known.
        column: The column.
        category: The personal-data category.
        exposure: ``raw``, ``transformed``, ``aggregated`` or ``filter``.
        confidence: From 0 to 1.
        evidence: Why, as stored.
    """

    document_id: str
    version: int
    widget_id: str
    table: Optional[str]
    column: str
    category: str
    exposure: str
    confidence: float
    evidence: List[str] = attrs.field(factory=list, hash=False)


def assess_stored(
    engine: Engine,
    document_ids: Sequence[str] = (),
    rules: Optional[RuleSet] = None,
) -> Iterator[Assessment]:
    """Assess the live documents of the inventory (their current versions); store the reviews.

    Args:
        engine: The inventory's engine (``Inventory(db).engine``).
        document_ids: Only these documents; empty for every live document.
        rules: The rules; default :func:`inspector.risk.default_rules`.

    Yields:
        Each document's assessment, by document id. A document named but not live in the
        inventory is skipped.
    """
    rule_set = default_rules() if rules is None else rules
    key = rules_key(rule_set)
    wanted = sorted(set(document_ids))
    versions = t.document_versions
    after = ""
    while True:
        query = (
            sa.select(t.documents.c.id, versions.c.id.label("version_id"), versions.c.raw_json,
                      t.risk_assessments.c.rules_key)
            .join(versions, versions.c.id == t.documents.c.current_version_id)
            .outerjoin(t.risk_assessments, t.risk_assessments.c.version_id == versions.c.id)
            .where(t.documents.c.deleted_run_id.is_(None), t.documents.c.id > after)
            .order_by(t.documents.c.id).limit(_BATCH)
        )
        if wanted:
            query = query.where(t.documents.c.id.in_(wanted))
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return
        for row in rows:
            inspection = from_json(row.raw_json, Inspection)
            if row.rules_key == key:
                with engine.connect() as connection:
                    yield _load(connection, row.version_id, inspection)
                continue
            assessment = assess_inspection(inspection, rule_set)
            with engine.begin() as connection:
                _store(connection, row.version_id, key, assessment)
            yield assessment
        after = rows[-1].id


def documents_showing(engine: Engine, category: str, exposure: Optional[str] = None,
                      ) -> List[ExposureRecord]:
    """The live documents whose current version shows ``category`` (in ``exposure``).

    Answers from the stored reviews alone (:func:`assess_stored`); a version not reviewed yet
    is not in the answer.

    Args:
        engine: The inventory's engine.
        category: One of :data:`inspector.risk.CATEGORIES`.
        exposure: ``raw``, ``transformed``, ``aggregated`` or ``filter``; None for any.

    Raises:
        InvalidArgument: An unknown category or exposure.
    """
    if category not in CATEGORIES:
        raise InvalidArgument(f"category: expected one of {', '.join(CATEGORIES)}, "
                              f"got {category!r}")
    if exposure is not None and exposure not in EXPOSURES:
        raise InvalidArgument(f"exposure: expected one of {', '.join(EXPOSURES)}, "
                              f"got {exposure!r}")
    found, versions = t.risk_findings, t.document_versions
    query = (
        sa.select(versions.c.document_id, versions.c.version, found)
        .join(versions, versions.c.id == found.c.version_id)
        .join(t.documents, t.documents.c.current_version_id == versions.c.id)
        .where(t.documents.c.deleted_run_id.is_(None), found.c.category == category)
        .order_by(versions.c.document_id, found.c.ordinal)
    )
    if exposure is not None:
        query = query.where(found.c.exposure == exposure)
    with engine.connect() as connection:
        return [
            ExposureRecord(row.document_id, row.version, row.widget_id, row.table_name,
                           row.column_name, row.category, row.exposure, row.confidence,
                           list(row.evidence))
            for row in connection.execute(query)
        ]


def _store(connection: Connection, version_id: int, key: str, assessment: Assessment) -> None:
    connection.execute(sa.delete(t.risk_findings).where(
        t.risk_findings.c.version_id == version_id))
    connection.execute(sa.delete(t.risk_assessments).where(
        t.risk_assessments.c.version_id == version_id))
    connection.execute(sa.insert(t.risk_assessments).values(
        version_id=version_id,
        assessed_at=datetime.datetime.now(datetime.timezone.utc),
        rules_key=key,
        score=assessment.score,
        level=assessment.level,
        reasons=list(assessment.reasons),
        security=[attrs.asdict(s) for s in assessment.security_findings],
    ))
    rows: List[Dict[str, Any]] = [
        {
            "version_id": version_id,
            "ordinal": ordinal,
            "widget_id": finding.widget or "",
            "kind": finding.kind,
            "table_name": finding.table,
            "column_name": finding.column,
            "category": finding.category,
            "exposure": finding.exposure,
            "confidence": finding.confidence,
            "evidence": list(finding.evidence),
        }
        for ordinal, finding in enumerate(assessment.findings)
    ]
    if rows:
        connection.execute(sa.insert(t.risk_findings), rows)


def _load(connection: Connection, version_id: int, inspection: Inspection) -> Assessment:
    stored = connection.execute(sa.select(t.risk_assessments).where(
        t.risk_assessments.c.version_id == version_id)).one()
    findings = tuple(
        Finding(row.table_name, row.column_name, row.category, row.exposure, row.confidence,
                list(row.evidence), kind=row.kind, widget=row.widget_id or None)
        for row in connection.execute(
            sa.select(t.risk_findings).where(t.risk_findings.c.version_id == version_id)
            .order_by(t.risk_findings.c.ordinal))
    )
    security = tuple(
        SecurityFinding(s["kind"], s["widget"], s["location"], tuple(s["evidence"]))
        for s in stored.security
    )
    return Assessment(
        document_id=inspection.document.id,
        score=stored.score,
        level=stored.level,
        findings=findings,
        security_findings=security,
        reasons=tuple(stored.reasons),
        document_name=inspection.document.name,
    )
