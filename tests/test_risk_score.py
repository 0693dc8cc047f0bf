"""find_personal_data() and assess() (inspector.risk.score), on plain values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inspector import DataSource, Document, Inspection, InvalidArgument, Widget
from inspector.risk import assess, find_personal_data
from inspector.risk.findings import Finding
from inspector.risk.score import level_for, score_findings

PASSWORD = "pa55-w0rd"


def inspection(*sources: DataSource) -> Inspection:
    """A document with one widget per data source."""
    widgets = tuple(Widget(f"d/c1/w{n}", "table", data_sources=(s,))
                    for n, s in enumerate(sources, 1))
    return Inspection(Document("d", "biDashboard", name="Test"), (), widgets)


def database(sql: str, connection: str = "postgresql://db.internal/x") -> DataSource:
    """A database source."""
    return DataSource("database", connection=connection, sql=sql)


def test_find_personal_data_returns_only_personal_columns_with_evidence() -> None:
    """Each finding has its table, category, exposure, confidence in [0, 1] and evidence."""
    findings = find_personal_data(
        "SELECT c.email, c.country_code, sha2(c.phone, 256) FROM crm.contacts c", "mysql")
    assert [(f.table, f.column, f.category, f.exposure) for f in findings] == [
        ("crm.contacts", "email", "email", "raw"),
        ("crm.contacts", "phone", "phone", "transformed"),
    ]
    for finding in findings:
        assert 0 <= finding.confidence <= 1
        assert isinstance(finding.evidence, list) and finding.evidence
        assert all(isinstance(e, str) for e in finding.evidence)
    assert any("SHA2" in e for e in findings[1].evidence)


def test_find_personal_data_reports_bad_sql_and_refuses_non_strings() -> None:
    """Unparseable SQL is one finding with the reason; a non-string is InvalidArgument."""
    [finding] = find_personal_data("SELECT FROM WHERE")
    assert finding.kind == "unparseable" and "unparseable SQL" in finding.evidence[0]
    with pytest.raises(InvalidArgument, match="sql"):
        find_personal_data(None)  # type: ignore[arg-type]


def test_server_flags_are_evidence() -> None:
    """A column the server flags is classified by the flag, which is the evidence."""
    [finding] = find_personal_data("SELECT col7 FROM t", flags={"COL7": "health"})
    assert finding.category == "health"
    assert "flagged by the server" in finding.evidence[0]


def test_raw_national_id_outweighs_raw_email_outweighs_hashed_and_filter() -> None:
    """Score order: national id raw > email raw > email hashed > email aggregated > filter."""
    def score(sql: str) -> int:
        return assess(inspection(database(sql))).score

    national_id = score("SELECT ssn FROM hr.people")
    email = score("SELECT email FROM hr.people")
    hashed = score("SELECT md5(email) FROM hr.people")
    aggregated = score("SELECT COUNT(DISTINCT email) FROM hr.people")
    filtered = score("SELECT id FROM hr.people WHERE email = 'x'")
    assert national_id > email > hashed > aggregated > filtered > 0
    assert score("SELECT region, SUM(amount) FROM sales.orders GROUP BY region") == 0


def test_select_star_over_people_raises_the_score() -> None:
    """A star over a table named for people weighs more than over any other table."""
    people = assess(inspection(database("SELECT * FROM crm.customers")))
    other = assess(inspection(database("SELECT * FROM ops.metrics")))
    assert people.score > other.score > 0
    assert people.reasons[0] == "SELECT * over crm.customers"


def test_levels() -> None:
    """none at 0, then low, medium, high."""
    assert [level_for(s) for s in (0, 1, 24, 25, 59, 60, 100)] == [
        "none", "low", "low", "medium", "medium", "high", "high"]


def test_score_counts_a_column_once() -> None:
    """The same column found by two widgets counts once, at its heaviest."""
    finding = Finding("t", "email", "email", "raw", 0.9, ["x"])
    assert score_findings([finding, finding])[0] == score_findings([finding])[0]


def test_assessment_has_widgets_reasons_and_security_findings() -> None:
    """Findings name their widget; the password is redacted; outside shares are found."""
    sources = (
        database("SELECT email FROM crm.contacts",
                 f"postgresql://report:{PASSWORD}@db.internal/crm"),
        DataSource("spreadsheet", url="https://sheets.example.com/d/1", range="A1:B2",
                   extra={"sharedWith": ["me@example.com", "them@partner.test"]}),
        DataSource("spreadsheet", url="https://sheets.example.com/d/2",
                   extra={"linkSharing": "anyoneWithLink"}),
        DataSource("spreadsheet", url="https://sheets.example.com/d/3",
                   extra={"sharedWith": ["team@hr.example.com"]}),
    )
    result = assess(inspection(*sources))
    assert result.document_id == "d" and result.level in ("medium", "high")
    assert [f.widget for f in result.findings] == ["d/c1/w1"]
    kinds = [(s.kind, s.widget) for s in result.security_findings]
    assert kinds == [("embedded_password", "d/c1/w1"), ("external_share", "d/c1/w2"),
                     ("external_share", "d/c1/w3")]
    assert "them@partner.test" in result.security_findings[1].evidence[0]
    assert "me@example.com" not in result.security_findings[1].evidence[0]
    assert PASSWORD not in repr(result) + str(result.security_findings)
    assert "email raw (crm.contacts.email)" in result.reasons


def test_import_inspector_does_not_import_sqlglot() -> None:
    """The base install has no sqlglot: importing inspector and inspector.risk must not need it."""
    code = ("import sys, inspector, inspector.risk, inspector.cli; "
            "print('sqlglot' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_arguments_are_checked() -> None:
    """An unknown dialect, rules that are not a RuleSet, an unknown flag: InvalidArgument."""
    with pytest.raises(InvalidArgument, match="dialect"):
        find_personal_data("SELECT 1", "no-such-dialect")
    with pytest.raises(InvalidArgument, match="rules"):
        find_personal_data("SELECT 1", rules={"rules": []})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="flags"):
        find_personal_data("SELECT a FROM t", flags={"a": "shoe_size"})
    with pytest.raises(InvalidArgument, match="inspection"):
        assess("doc-1")  # type: ignore[arg-type]


def test_huge_sql_is_reported_not_parsed() -> None:
    """SQL over the size limit is one unparseable finding, quickly."""
    from inspector.risk.lineage import MAX_SQL_LENGTH

    sql = "SELECT email FROM t WHERE " + " OR ".join(["a = 1"] * (MAX_SQL_LENGTH // 8))
    [finding] = find_personal_data(sql)
    assert finding.kind == "unparseable" and "not analysed" in finding.evidence[0]


def test_filter_evidence_names_the_condition() -> None:
    """A filter's evidence shows the clause and the condition."""
    [finding] = find_personal_data("SELECT id FROM hr.people WHERE ssn LIKE '123%'")
    assert "in WHERE: ssn LIKE '123%'" in finding.evidence
