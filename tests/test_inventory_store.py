"""The store: each document in one transaction, idempotent, versions kept, secrets redacted."""

from __future__ import annotations

import multiprocessing
from typing import Dict

import pytest
import sqlalchemy as sa
from inventory_support import catalog_inspections, with_sql

from inspector import Inspection
from inspector.inventory import Inventory
from inspector.inventory import schema as t
from inspector.inventory.planner import StaleListing
from inspector.inventory.scan import Failure
from inspector.inventory.store import Store


@pytest.fixture(scope="module")
def catalog() -> Dict[str, Inspection]:
    """The sample catalog's inspections, taken once from a real sample server."""
    from inspector.server import run_sample_server

    with run_sample_server() as server:
        return catalog_inspections(server.url)


def _start(store: Store, ids, *, listed: bool = True, threshold=0.2):
    return store.begin_run(server="ws://test", selection_key="k", selection={}, settings={},
                           targets=[(i, listed) for i in ids],
                           stale_threshold=threshold if listed else None).run_id


def _outcomes(engine, run_id: int) -> Dict[str, str]:
    with engine.connect() as connection:
        return dict(tuple(r) for r in connection.execute(
            sa.select(t.run_documents.c.document_id, t.run_documents.c.outcome)
            .where(t.run_documents.c.run_id == run_id)).all())


def _count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_new_then_unchanged_then_changed(inventory_db, catalog):
    """A first run stores versions; equal content is unchanged; changed content a new version."""
    with Inventory(inventory_db) as inventory:
        store = inventory.store
        run1 = _start(store, ["doc-1", "doc-6"])
        assert store.record(run1, catalog["doc-1"]) == "new"
        assert store.record(run1, catalog["doc-6"]) == "new"
        run2 = _start(store, ["doc-1", "doc-6"])
        assert store.record(run2, catalog["doc-1"]) == "unchanged"
        assert store.record(run2, with_sql(catalog["doc-6"], "SELECT * FROM hr.employees")) \
            == "changed"
        assert _outcomes(inventory.engine, run2) == {"doc-1": "unchanged", "doc-6": "changed"}
        with inventory.engine.connect() as connection:
            versions = connection.execute(
                sa.select(t.document_versions.c.document_id, t.document_versions.c.version)
                .order_by(t.document_versions.c.id)).all()
        assert [tuple(v) for v in versions] == [("doc-1", 1), ("doc-6", 1), ("doc-6", 2)]
        assert inventory.check_integrity() == []


def test_recording_twice_stores_once(inventory_db, catalog):
    """The same document recorded twice for a run is stored once, with the first outcome."""
    with Inventory(inventory_db) as inventory:
        run = _start(inventory.store, ["doc-2"])
        assert inventory.record(run, catalog["doc-2"]) == "new"
        assert inventory.record(run, catalog["doc-2"]) == "new"
        assert inventory.record(run, with_sql(catalog["doc-2"], "SELECT 1 FROM x")) == "new"
        assert _count(inventory.engine, t.document_versions) == 1
        assert _count(inventory.engine, t.run_documents) == 1
        widgets = len(catalog["doc-2"].widgets)
        assert _count(inventory.engine, t.widgets) == widgets


def test_failure_is_replaced_by_a_later_success(inventory_db, catalog):
    """A failure recorded for a run gives way to the document's inspection, not the reverse."""
    with Inventory(inventory_db) as inventory:
        run = _start(inventory.store, ["doc-3"])
        assert inventory.record(run, Failure("doc-3", "RequestTimeout: late")) == "failed"
        assert inventory.failures(run) == [("doc-3", "RequestTimeout: late")]
        assert inventory.record(run, catalog["doc-3"]) == "new"
        assert inventory.record(run, Failure("doc-3", "again")) == "new"
        assert inventory.failures(run) == []


def test_unchanged_needs_a_stored_version(inventory_db, catalog):
    """record_unchanged() refuses a document the store has no version of."""
    from inspector import InvalidArgument

    with Inventory(inventory_db) as inventory:
        run = _start(inventory.store, ["doc-4"])
        with pytest.raises(InvalidArgument, match="doc-4"):
            inventory.record_unchanged(run, catalog["doc-4"].document)
        inventory.record(run, catalog["doc-4"])
        run2 = _start(inventory.store, ["doc-4"])
        assert inventory.record_unchanged(run2, catalog["doc-4"].document) == "unchanged"
        assert _outcomes(inventory.engine, run2) == {"doc-4": "unchanged"}


def test_passwords_never_reach_the_store(inventory_db, catalog):
    """A connection string's password is redacted in the rows and in the raw JSON evidence."""
    secret = "s3cr3t-pa55"
    leaky = with_sql(catalog["doc-1"], "SELECT 1 FROM t",
                     connection=f"postgresql://report:{secret}@db:5432/x?password={secret}")
    with Inventory(inventory_db) as inventory:
        run = _start(inventory.store, ["doc-1"])
        inventory.record(run, leaky)
        with inventory.engine.connect() as connection:
            for table in t.metadata.sorted_tables:
                for row in connection.execute(sa.select(table)):
                    assert secret not in repr(tuple(row)), table.name
        sources = inventory.sources_of("doc-1")
        assert sources.sources[0].connection == \
            "postgresql://report:REDACTED@db:5432/x?password=REDACTED"


def test_listing_missing_documents_marks_them_deleted(inventory_db, catalog):
    """Documents an earlier listing named and this one lacks are marked deleted in this run."""
    ids = sorted(catalog)
    with Inventory(inventory_db) as inventory:
        run1 = _start(inventory.store, ids)
        for document_id in ids:
            inventory.record(run1, catalog[document_id])
        run2 = _start(inventory.store, ids[2:])
        assert _outcomes(inventory.engine, run2) == {ids[0]: "deleted", ids[1]: "deleted"}
        # A document named, not listed, is never taken for deleted.
        run3 = _start(inventory.store, ids[3:4], listed=False)
        assert _outcomes(inventory.engine, run3) == {}
        assert inventory.check_integrity() == []


def test_too_many_missing_refuses_the_run(inventory_db, catalog):
    """An empty listing refuses the run, stored as refused with the reason; nothing deleted."""
    ids = sorted(catalog)
    with Inventory(inventory_db) as inventory:
        run1 = _start(inventory.store, ids)
        for document_id in ids:
            inventory.record(run1, catalog[document_id])
        with pytest.raises(StaleListing, match=f"{len(ids)} of the {len(ids)}") as refused:
            _start(inventory.store, [])
        run = inventory.run(refused.value.run_id)
        assert (run.status, run.targets) == ("refused", 0)
        assert "stale threshold" in run.message
        assert _count(inventory.engine, t.run_documents) == len(ids)
        # With the threshold raised, the same listing goes through.
        run3 = _start(inventory.store, [], threshold=1.0)
        assert len(_outcomes(inventory.engine, run3)) == len(ids)


def test_deleted_document_that_returns_is_new(inventory_db, catalog):
    """A document found again after it was marked deleted is new in that run."""
    with Inventory(inventory_db) as inventory:
        run1 = _start(inventory.store, ["doc-1", "doc-2", "doc-3", "doc-4", "doc-5"])
        for document_id in ("doc-1", "doc-2", "doc-3", "doc-4", "doc-5"):
            inventory.record(run1, catalog[document_id])
        _start(inventory.store, ["doc-2", "doc-3", "doc-4", "doc-5"])
        run3 = _start(inventory.store, ["doc-1", "doc-2", "doc-3", "doc-4", "doc-5"])
        assert inventory.record(run3, catalog["doc-1"]) == "new"
        assert inventory.sources_of("doc-1") is not None


def _record_in_process(db: str, run_id: int, document_ids, url: str) -> None:
    from inventory_support import catalog_inspections

    inspections = catalog_inspections(url)
    with Inventory(db) as inventory:
        for document_id in document_ids:
            inventory.record(run_id, inspections[document_id])


def test_several_processes_record_the_same_results(inventory_db, sample_server):
    """Processes recording the same documents for one run (a batch re-run) store each once."""
    ids = [f"doc-{n}" for n in range(1, 13)]
    with Inventory(inventory_db) as inventory:
        run = _start(inventory.store, ids)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_record_in_process,
                               args=(inventory_db, run, ids[::step], sample_server.url))
               for step in (1, -1, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with Inventory(inventory_db) as inventory:
        assert set(_outcomes(inventory.engine, run).values()) == {"new"}
        assert len(_outcomes(inventory.engine, run)) == len(ids)
        assert _count(inventory.engine, t.document_versions) == len(ids)
        assert inventory.check_integrity() == []
