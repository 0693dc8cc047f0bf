"""The review kept in the inventory (inspector.risk.store), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict, List

import attrs
import pytest
import sqlalchemy as sa
from inventory_support import with_sql

from inspector import DocumentInspector, Inspection, InvalidArgument
from inspector.inventory import Inventory
from inspector.inventory import schema as t
from inspector.risk import assess, load_rules
from inspector.risk.store import assess_stored, documents_showing
from inspector.server import run_sample_server

CATALOG_PASSWORDS = ("s3cr3t", "b1ll1ng-r0")


@pytest.fixture(scope="module")
def catalog() -> Dict[str, Inspection]:
    """Every document of the sample catalog, inspected once from a real sample server."""
    with run_sample_server() as server, DocumentInspector(server.url) as inspector:
        ids = inspector.list_documents()
        return {i.document.id: i for i in inspector.inspect_many(ids)}


def store_catalog(db: str, catalog: Dict[str, Inspection], ids: List[str]) -> None:
    """One run that stores these documents of the catalog."""
    with Inventory(db) as inventory:
        run = inventory.start_run(server="ws://test", document_ids=ids)
        for document_id in run.pending_ids():
            inventory.record(run.run_id, catalog[document_id])
        run.finish()


def test_which_documents_show_national_id_raw(inventory_db: str,
                                              catalog: Dict[str, Inspection]) -> None:
    """After a review, the inventory answers by category and exposure, from the store alone."""
    store_catalog(inventory_db, catalog, list(catalog))
    with Inventory(inventory_db) as inventory:
        assert documents_showing(inventory.engine, "national_id", "raw") == []  # not reviewed
        reviewed = {a.document_id: a for a in assess_stored(inventory.engine)}
        assert set(reviewed) == set(catalog)
        raw = documents_showing(inventory.engine, "national_id", "raw")
        assert [(r.document_id, r.column) for r in raw] == [
            ("doc-13", "NATIONAL_INSURANCE_NUMBER")]
        assert raw[0].widget_id == "doc-13/c2/w1" and raw[0].evidence
        filtered = {r.document_id for r in documents_showing(inventory.engine, "national_id",
                                                             "filter")}
        assert filtered == {"doc-15"}
        emails = {r.document_id for r in documents_showing(inventory.engine, "email")}
        assert {"doc-14", "doc-15", "doc-16"} <= emails


def test_stored_reviews_equal_fresh_ones_and_keep_no_password(
        inventory_db: str, catalog: Dict[str, Inspection]) -> None:
    """A stored review reads back equal to assessing the stored inspection; no secret stored."""
    store_catalog(inventory_db, catalog, ["doc-13", "doc-15"])
    with Inventory(inventory_db) as inventory:
        first = list(assess_stored(inventory.engine))
        stored = [attrs.evolve(a) for a in assess_stored(inventory.engine)]
        assert stored == first
        fresh = [assess(i) for i in inventory.inspections()]
        assert [(a.document_id, a.score, a.reasons) for a in fresh] == [
            (a.document_id, a.score, a.reasons) for a in stored]
        doc_15 = next(a for a in stored if a.document_id == "doc-15")
        assert {s.kind for s in doc_15.security_findings} == {"embedded_password"}
        with inventory.engine.connect() as connection:
            dumped = json.dumps([list(map(str, row)) for table in (t.risk_assessments,
                                 t.risk_findings)
                                 for row in connection.execute(sa.select(table))])
        assert not any(p in dumped for p in CATALOG_PASSWORDS)


def test_a_review_is_redone_for_new_versions_and_other_rules(
        inventory_db: str, catalog: Dict[str, Inspection], tmp_path: object) -> None:
    """A changed document, or another rule set, is assessed again; the rest is read back."""
    store_catalog(inventory_db, catalog, ["doc-1", "doc-13"])
    with Inventory(inventory_db) as inventory:
        list(assess_stored(inventory.engine))
        with inventory.engine.connect() as connection:
            before = dict(connection.execute(sa.select(
                t.risk_assessments.c.version_id, t.risk_assessments.c.assessed_at)).all())
        run = inventory.start_run(server="ws://test", document_ids=["doc-1"])
        inventory.record(run.run_id, with_sql(catalog["doc-1"], "SELECT ssn FROM hr.people"))
        run.finish()
        [doc_1] = assess_stored(inventory.engine, ["doc-1"])
        assert doc_1.reasons[0] == "national_id raw (hr.people.ssn)"
        shown = {r.document_id for r in documents_showing(inventory.engine, "national_id",
                                                          "raw")}
        assert shown == {"doc-1", "doc-13"}
        list(assess_stored(inventory.engine, ["doc-13"]))
        with inventory.engine.connect() as connection:
            after = dict(connection.execute(sa.select(
                t.risk_assessments.c.version_id, t.risk_assessments.c.assessed_at)).all())
        unchanged = set(before) & set(after)
        assert unchanged and all(before[v] == after[v] for v in unchanged)
        path = os.path.join(str(tmp_path), "rules.json")
        with open(path, "w") as file:
            json.dump({"rules": [{"id": "national_id", "disabled": True}]}, file)
        [doc_13] = assess_stored(inventory.engine, ["doc-13"], load_rules(path))
        assert not any(f.category == "national_id" for f in doc_13.findings)
        assert documents_showing(inventory.engine, "national_id", "raw")[0].document_id \
            == "doc-1"


def test_documents_showing_checks_its_arguments(inventory_db: str) -> None:
    """An unknown category or exposure is InvalidArgument naming it."""
    with Inventory(inventory_db) as inventory:
        with pytest.raises(InvalidArgument, match="category"):
            documents_showing(inventory.engine, "shoe_size")
        with pytest.raises(InvalidArgument, match="exposure"):
            documents_showing(inventory.engine, "email", "shown")


def test_risk_db_command(tmp_path: object, catalog: Dict[str, Inspection]) -> None:
    """risk --db DB reviews the stored documents; --shows answers from the store."""
    db = os.path.join(str(tmp_path), "inventory.db")
    store_catalog(db, catalog, ["doc-1", "doc-13", "doc-15"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECTOR_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "inspector", "risk", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    result = run("--db", db, "--shows", "national_id:raw")
    assert result.returncode == 0 and "no stored findings" in result.stdout
    result = run("--db", db)
    assert result.returncode == 0, result.stderr
    assert [line.split()[2] for line in result.stdout.splitlines()[1:]] == [
        "doc-13", "doc-15", "doc-1"]
    result = run("--db", db, "--shows", "national_id:raw")
    assert result.returncode == 0, result.stderr
    header, line = result.stdout.splitlines()
    assert header.split() == ["DOCUMENT", "VERSION", "WIDGET", "EXPOSURE", "CONFIDENCE",
                              "COLUMN"]
    assert line.split()[:4] == ["doc-13", "1", "doc-13/c2/w1", "raw"]
    result = run("--db", db, "no-such-doc")
    assert result.returncode == 1 and "no-such-doc: not in the inventory" in result.stderr
    result = run("--db", db, "--shows", "shoe_size")
    assert result.returncode == 2 and "category" in result.stderr
    result = run("--shows", "email", "doc-1")
    assert result.returncode == 2 and "--db" in result.stderr
