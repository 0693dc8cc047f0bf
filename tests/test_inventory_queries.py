"""The questions, answered from the store: reads, sources as of a run, diffs, integrity."""

from __future__ import annotations

import datetime
from typing import Dict

import pytest
import sqlalchemy as sa
from inventory_support import catalog_inspections, with_sql

from inspector import Inspection, InvalidArgument
from inspector.inventory import Inventory
from inspector.inventory import schema as t
from inspector.inventory.queries import table_matches
from inspector.sources import build_report, report_to_dict


@pytest.fixture(scope="module")
def catalog() -> Dict[str, Inspection]:
    """The sample catalog's inspections, taken once from a real sample server."""
    from inspector.server import run_sample_server

    with run_sample_server() as server:
        return catalog_inspections(server.url)


def _run(inventory: Inventory, inspections) -> int:
    ids = [i.document.id for i in inspections]
    run_id = inventory.store.begin_run(
        server="ws://test", selection_key="k", selection={}, settings={},
        targets=[(i, True) for i in ids], stale_threshold=1.0).run_id
    for inspection in inspections:
        inventory.record(run_id, inspection)
    inventory.store.finish_run(run_id, "completed")
    return run_id


def test_table_matches_schema_whole_or_in_part():
    """A name matches with or without its schema and catalog; a wrong schema never does."""
    assert table_matches("customers", "sales.customers")
    assert table_matches("sales.customers", "sales.customers")
    assert table_matches("SALES.Customers", "dw.sales.customers")
    assert not table_matches("crm.customers", "sales.customers")
    assert not table_matches("dw.sales.customers", "sales.customers")
    assert not table_matches("customers", "sales.customers_archive")


def test_reads_finds_the_documents_that_read_a_table(inventory_db, catalog):
    """--reads sales.customers names each document and widget whose SQL reads it."""
    with Inventory(inventory_db) as inventory:
        _run(inventory, list(catalog.values()))
        uses = inventory.reads("sales.customers")
        expected = sorted(
            (i.document.id, w.id) for i in catalog.values() for w in i.widgets
            for s in w.data_sources if s.sql and "sales.customers" in s.sql.lower())
        assert sorted({(u.document_id, u.widget_id) for u in uses}) == expected
        assert expected and all(u.table.lower().endswith("sales.customers") for u in uses)
        assert {u.document_id for u in inventory.reads("customers")} >= {u.document_id
                                                                          for u in uses}
        assert inventory.reads("nosuchschema.customers") == []
        with pytest.raises(InvalidArgument, match="table"):
            inventory.reads("sales.")


def test_sources_as_of_a_run_and_a_moment(inventory_db, catalog):
    """What doc-6 read as of its first run stays answerable after it changed."""
    with Inventory(inventory_db) as inventory:
        run1 = _run(inventory, [catalog["doc-6"]])
        between = datetime.datetime.now(datetime.timezone.utc)
        run2 = _run(inventory, [with_sql(catalog["doc-6"], "SELECT name FROM hr.employees")])
        then = inventory.sources_of("doc-6", run_id=run1)
        now = inventory.sources_of("doc-6")
        assert (then.version, now.version) == (1, 2)
        assert "billing.invoices" in {table for s in then.sources for table in s.reads}
        assert "hr.employees" in {table for s in now.sources for table in s.reads}
        assert inventory.sources_of("doc-6", at=between) == then
        assert inventory.sources_of("doc-6", run_id=run2) == now
        assert inventory.reads("hr.employees", run_id=run1) == []
        assert [u.document_id for u in inventory.reads("hr.employees")] == ["doc-6"]
        assert inventory.sources_of("doc-404") is None


def test_diff_names_new_changed_and_deleted_documents(inventory_db, catalog):
    """diff(A, B): new, changed (with sources and tables that came or went), deleted."""
    with Inventory(inventory_db) as inventory:
        run1 = _run(inventory, [catalog[d] for d in ("doc-1", "doc-2", "doc-6", "deck-1")])
        changed = with_sql(catalog["doc-6"], "SELECT name FROM hr.employees")
        run2 = _run(inventory, [catalog[d] for d in ("doc-1", "doc-2", "doc-3")] + [changed])
        entries = {e.document_id: e for e in inventory.diff(run1, run2)}
        assert {d: e.change for d, e in entries.items()} == {
            "doc-3": "new", "doc-6": "changed", "deck-1": "deleted"}
        doc6 = entries["doc-6"]
        assert doc6.sources_added == ("database postgresql://warehouse.internal:5432/hr",)
        assert doc6.tables_added == ("hr.employees",)
        # Its other widget still reads billing.invoices and sales.customers on that database.
        assert (doc6.tables_removed, doc6.sources_removed) == ((), ())
        reverse = {e.document_id: e for e in inventory.diff(run2, run1)}
        assert {d: e.change for d, e in reverse.items()} == {
            "doc-3": "deleted", "doc-6": "changed", "deck-1": "new"}
        assert reverse["doc-6"].tables_removed == ("hr.employees",)
        assert inventory.diff(run2, run2) == []
        with pytest.raises(InvalidArgument, match="run"):
            inventory.diff(run1, 999)


def test_stored_inspections_give_the_same_sources_report(inventory_db, catalog):
    """The sources report built from the store equals the one built from the server."""
    with Inventory(inventory_db) as inventory:
        _run(inventory, list(catalog.values()))
        stored = build_report(inventory.inspections())
    live = build_report(sorted(catalog.values(), key=lambda i: i.document.id))
    assert report_to_dict(stored) == report_to_dict(live)


def test_runs_report_their_counts(inventory_db, catalog):
    """Each run's record has its counts, status and time."""
    with Inventory(inventory_db) as inventory:
        first = _run(inventory, [catalog["doc-1"], catalog["doc-2"]])
        second = _run(inventory, [catalog["doc-1"], with_sql(catalog["doc-2"], "SELECT 1")])
        runs = {run.id: run for run in inventory.runs()}
        assert (runs[first].new, runs[first].status) == (2, "completed")
        assert (runs[second].unchanged, runs[second].changed, runs[second].scanned) == (1, 1, 2)
        assert runs[second].seconds is not None


def test_integrity_check_finds_a_broken_store(inventory_db, catalog):
    """The integrity check passes on a good store and names what a broken one lacks."""
    with Inventory(inventory_db) as inventory:
        run = _run(inventory, [catalog["doc-1"], catalog["doc-2"]])
        assert inventory.check_integrity() == []
        with inventory.engine.begin() as connection:
            connection.execute(sa.delete(t.run_documents).where(
                t.run_documents.c.document_id == "doc-2"))
        assert inventory.check_integrity() == [
            f"run {run}: completed with 1 targets not recorded"]
