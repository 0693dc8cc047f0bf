"""``document-inspector risk``, run as a subprocess against the sample server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

from inspector import DocumentInspector
from inspector.server import SampleServer

PROG = [sys.executable, "-m", "inspector"]
RUN_TIMEOUT = 60.0
CATALOG_PASSWORDS = ("s3cr3t", "b1ll1ng-r0")  # in the sample catalog's connection strings


def run_cli(*args: str, url: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m inspector ARGS``, INSPECTOR_URL set to ``url``."""
    env: Dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith("INSPECTOR_")}
    if url is not None:
        env["INSPECTOR_URL"] = url
    return subprocess.run([*PROG, *args], env=env, input="", capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def assert_one_line_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    """An expected failure: one line on stderr, no traceback."""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_risk_all_table_ranks_worst_first(sample_server: SampleServer) -> None:
    """--all --format table: one line per document, scores descending, no password shown."""
    result = run_cli("risk", "--all", "--format", "table", url=sample_server.url)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["SCORE", "LEVEL", "DOCUMENT", "REASONS"]
    with DocumentInspector(sample_server.url) as inspector:
        listed = inspector.list_documents()
    documents = [line.split()[2] for line in lines]
    assert sorted(documents) == sorted(listed)
    assert {"doc-13", "doc-14", "doc-15", "doc-16"} <= set(documents)
    scores = [int(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert lines[0].split()[1] == "high" and "national_id raw" in lines[0]
    doc_1 = next(line for line in lines if line.split()[2] == "doc-1")
    assert doc_1.split()[:2] == ["0", "none"]
    for password in CATALOG_PASSWORDS:
        assert password not in result.stdout + result.stderr


def test_risk_json_has_findings_evidence_and_redacted_security(
        sample_server: SampleServer) -> None:
    """--format json: findings with evidence, the password redacted in security findings."""
    result = run_cli("risk", "doc-15", "doc-1", "--format", "json", url=sample_server.url)
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)
    assert (first["document_id"], second["document_id"]) == ("doc-15", "doc-1")
    found = {(f["column"], f["category"], f["exposure"]) for f in first["findings"]}
    assert ("email", "email", "raw") in found
    assert ("card_number", "financial_account", "transformed") in found
    assert ("date_of_birth", "date_of_birth", "filter") in found
    assert all(f["evidence"] and f["widget"] for f in first["findings"])
    security = first["security_findings"]
    assert [s["widget"] for s in security] == ["doc-15/c1/w1", "doc-15/c1/w2", "doc-15/c2/w1"]
    for finding in security:
        assert finding["kind"] == "embedded_password" and "REDACTED" in finding["location"]
    assert not any(p in result.stdout for p in CATALOG_PASSWORDS)


def test_risk_rules_file_overrides_the_defaults(sample_server: SampleServer,
                                                tmp_path: Path) -> None:
    """--rules FILE: a disabled rule finds nothing; a company domain makes a share internal."""
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({
        "company_domains": ["example.com", "payroll-partners.co.uk"],
        "rules": [{"id": "national_id", "disabled": True}],
    }))
    default = json.loads(run_cli("risk", "doc-13", "--format", "json",
                                 url=sample_server.url).stdout)[0]
    result = run_cli("risk", "doc-13", "--format", "json", "--rules", str(rules),
                     url=sample_server.url)
    assert result.returncode == 0, result.stderr
    [custom] = json.loads(result.stdout)
    assert any(f["category"] == "national_id" for f in default["findings"])
    assert not any(f["category"] == "national_id" for f in custom["findings"])
    assert [s["kind"] for s in default["security_findings"]] == ["external_share"]
    assert custom["security_findings"] == []
    assert custom["score"] <= default["score"]


def test_risk_failed_document_exit_1(sample_server: SampleServer) -> None:
    """A document that fails is one stderr line; the others are printed; exit 1."""
    result = run_cli("risk", "doc-13", "no-such-doc", url=sample_server.url)
    assert result.returncode == 1
    assert "no-such-doc" in result.stderr
    assert_one_line_no_traceback(result)
    assert "doc-13" in result.stdout


def test_risk_usage_errors_exit_2_before_connecting(sample_server: SampleServer,
                                                    tmp_path: Path) -> None:
    """No documents, or a bad rules file: exit 2, one line, no connection opened."""
    result = run_cli("risk", url=sample_server.url)
    assert result.returncode == 2 and "DOC_ID" in result.stderr
    assert_one_line_no_traceback(result)
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"id": "x", "category": "shoe_size", "names": ["shoe"]}]}')
    result = run_cli("risk", "doc-1", "--rules", str(bad), url=sample_server.url)
    assert result.returncode == 2 and "category" in result.stderr
    assert_one_line_no_traceback(result)
    assert sample_server.stats.handshakes == 0


def test_risk_without_sqlglot_says_what_to_install(sample_server: SampleServer) -> None:
    """Without sqlglot, risk exits 2 naming the risk extra, before connecting."""
    code = (
        "import sys; sys.modules['sqlglot'] = None\n"
        "from inspector.cli import main\n"
        f"sys.exit(main(['risk', 'doc-1', '--url', {sample_server.url!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=RUN_TIMEOUT)
    assert result.returncode == 2
    assert "pip install 'document-inspector[risk]'" in result.stderr
    assert_one_line_no_traceback(result)
    assert sample_server.stats.handshakes == 0
