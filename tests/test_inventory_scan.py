"""The scan: incremental, resumable (kill -9 included), deletions with a fail-safe."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from typing import Dict, Iterator

import pytest
import sqlalchemy as sa
from support import MS, wait_until

from inspector import ConnectionLost, DocumentInspector, InvalidArgument
from inspector.inventory import Inventory
from inspector.inventory import schema as t
from inspector.inventory.planner import StaleListing
from inspector.inventory.scan import NothingToResume
from inspector.server import SampleServer, run_sample_server


@pytest.fixture
def server() -> Iterator[SampleServer]:
    """A sample server listing 200 generated documents beside the catalog."""
    with run_sample_server(generated=200, seed=12) as running:
        yield running


def _requests(server: SampleServer) -> Dict[str, int]:
    return dict(server.stats.requests_by_method)


def _outcomes(inventory: Inventory, run_id: int) -> Dict[str, str]:
    with inventory.engine.connect() as connection:
        return {row.document_id: row.outcome for row in connection.execute(
            sa.select(t.run_documents).where(t.run_documents.c.run_id == run_id))}


def test_full_scan_then_rescan_costs_one_request_per_document(inventory_db, server):
    """A first scan stores everything; a rescan with nothing changed sends only GetDocument."""
    listing = server.document_ids()
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        first = inventory.scan(inspector, list_all=True)
        assert (first.status, first.new, first.targets) == ("completed", len(listing),
                                                            len(listing))
        before = _requests(server)
        second = inventory.scan(inspector, list_all=True)
        after = _requests(server)
        assert (second.unchanged, second.new, second.changed) == (len(listing), 0, 0)
        assert after["GetDocument"] - before["GetDocument"] == len(listing)
        assert after.get("GetWidgetContainer") == before.get("GetWidgetContainer")
        assert after.get("GetWidgetProperties") == before.get("GetWidgetProperties")
        assert inventory.check_integrity() == []


def test_rescan_stores_exactly_the_changed_documents(inventory_db, server):
    """After some documents change, a rescan stores new versions of exactly those."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        inventory.scan(inspector, list_all=True)
        changed = {server.mutate(kind=kind, notify=False).document_id
                   for kind in ("sql", "add_widget", "remove_widget", "sql")}
        run = inventory.scan(inspector, list_all=True)
        outcomes = _outcomes(inventory, run.id)
        assert {d for d, o in outcomes.items() if o == "changed"} == changed
        assert run.changed == len(changed)
        assert run.unchanged == len(outcomes) - len(changed)


def test_full_rescan_fetches_everything_and_stores_nothing_new(inventory_db, server):
    """--full inspects every document whole; unchanged content gets no new version."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        inventory.scan(inspector, ["doc-1", "doc-6"])
        before = _requests(server)
        run = inventory.scan(inspector, ["doc-1", "doc-6"], full=True)
        assert run.unchanged == 2
        assert _requests(server)["GetWidgetProperties"] > before["GetWidgetProperties"]


def test_removed_documents_are_marked_deleted(inventory_db, server):
    """A document an earlier --all scan listed and the server removed is deleted in the run."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        first = inventory.scan(inspector, list_all=True)
        gone = server.mutate(kind="remove_document", notify=False).document_id
        added = server.mutate(kind="add_document", notify=False).document_id
        run = inventory.scan(inspector, list_all=True)
        assert (run.deleted, run.new) == (1, 1)
        outcomes = _outcomes(inventory, run.id)
        assert (outcomes[gone], outcomes[added]) == ("deleted", "new")
        assert {(e.document_id, e.change) for e in inventory.diff(first.id, run.id)} == {
            (gone, "deleted"), (added, "new")}


def test_an_empty_listing_refuses_the_run(inventory_db, server):
    """More than the stale threshold missing refuses the run; nothing is marked deleted."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        inventory.scan(inspector, list_all=True)
        for _ in range(60):  # 60 of 224 listed: 27%, above the default 20%
            server.mutate(kind="remove_document", notify=False)
        with pytest.raises(StaleListing, match="stale threshold") as refused:
            inventory.scan(inspector, list_all=True)
        assert inventory.run(refused.value.run_id).status == "refused"
        assert inventory.runs()[-1].deleted == 0
        run = inventory.scan(inspector, list_all=True, stale_threshold=0.5)
        assert run.deleted == 60


def test_failures_are_stored_with_their_reasons(inventory_db, server):
    """A document the server cannot give is a failure of the run, with its reason."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        run = inventory.scan(inspector, ["doc-1", "no-such-document"])
        assert (run.new, run.failed) == (1, 1)
        [(document_id, reason)] = inventory.failures(run.id)
        assert document_id == "no-such-document"
        assert "ServerError" in reason and "404" in reason


def test_a_lost_connection_interrupts_and_the_next_scan_resumes(inventory_db):
    """A connection lost for good leaves the run interrupted; the same selection resumes it."""
    ids = [f"gen-2x2-r{n}" for n in range(60)]
    with Inventory(inventory_db) as inventory:
        # Eight documents at a time, so that when the server stops at the 31st result, the
        # last twenty have not been asked for yet.
        with run_sample_server() as server, DocumentInspector(
                server.url, retries=0, connect_timeout=2000 * MS,
                max_documents_in_flight=8) as inspector:
            port = int(server.url.rsplit(":", 1)[1])

            def stop_halfway(document_id, outcome, reason):
                if document_id == ids[30]:
                    server.stop()
            with pytest.raises(ConnectionLost):
                inventory.scan(inspector, ids, on_result=stop_halfway)
        interrupted = inventory.runs()[-1]
        assert interrupted.status == "interrupted"
        assert 30 < len(_outcomes(inventory, interrupted.id)) < 60
        # The same server back (the same URL: the same selection).
        with run_sample_server(port=port) as server, DocumentInspector(server.url) as inspector:
            run = inventory.scan(inspector, ids)
        assert (run.id, run.status, run.resumed) == (interrupted.id, "completed", 1)
        assert run.new == len(ids)
        assert inventory.check_integrity() == []


def test_resume_needs_a_stopped_run(inventory_db, server):
    """--resume with nothing stopped is an error; a completed selection starts afresh."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        with pytest.raises(NothingToResume):
            inventory.scan(inspector, resume=True)
        first = inventory.scan(inspector, ["doc-1"])
        second = inventory.scan(inspector, ["doc-1"])
        assert second.id != first.id and second.resumed == 0
        with pytest.raises(InvalidArgument, match="document_ids"):
            inventory.scan(inspector)


def test_a_run_driven_by_hand_is_the_cluster_entry_point(inventory_db, server):
    """start_run + pending_ids + record: what a Dask client does, results in any order."""
    ids = ["doc-1", "doc-2", "doc-3", "deck-1"]
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        run = inventory.start_run(server=server.url, document_ids=ids)
        handed = list(run.pending_ids())
        assert handed == ids
        results = list(inspector.inspect_many(handed))
        for inspection in reversed(results + results):  # any order, and again after a retry
            inventory.record(run.run_id, inspection)
        run.finish()
        assert inventory.run(run.run_id).new == len(ids)
        again = inventory.start_run(server=server.url, document_ids=ids)
        assert not again.should_inspect(results[0].document) or results[0].document.extra == {}
        for document_id in again.pending_ids():
            document = next(r.document for r in results if r.document.id == document_id)
            assert not again.should_inspect(document)
            inventory.record_unchanged(again.run_id, document)
        again.finish()
        assert inventory.run(again.run_id).unchanged == len(ids)


# -- kill -9 --

_KILLS = 5


def _scan_process(db: str, url: str, ids_file: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "inspector", "scan", "--db", db, "--url", url,
         "--from-file", ids_file, "--format", "json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _recorded(db: str) -> int:
    with Inventory(db) as inventory, inventory.engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(t.run_documents)).scalar_one()


@pytest.mark.timeout(240)
def test_kill_9_at_random_points_then_resume(inventory_db, tmp_path):
    """A scan killed with SIGKILL 5 times, then resumed: every document stored exactly once."""
    count = 400
    ids = [f"gen-3x3-k{n}" for n in range(count)]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    chooser = random.Random(int.from_bytes(os.urandom(4), "big"))
    kill_points = sorted(chooser.sample(range(1, count - 20), _KILLS))
    Inventory(inventory_db).close()  # the schema, before any process races to create it
    with run_sample_server() as server:
        for point in kill_points:
            process = _scan_process(inventory_db, server.url, str(ids_file))
            try:
                wait_until(lambda point=point, process=process: (
                    _recorded(inventory_db) >= point or process.poll() is not None),
                    timeout=60_000 * MS)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
            assert process.returncode == -signal.SIGKILL, process.stderr.read()
        process = _scan_process(inventory_db, server.url, str(ids_file))
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    with Inventory(inventory_db) as inventory:
        [run] = inventory.runs()
        assert (run.status, run.targets, run.new) == ("completed", count, count)
        assert 1 <= run.resumed <= _KILLS
        outcomes = _outcomes(inventory, run.id)
        assert sorted(outcomes) == sorted(ids)
        with inventory.engine.connect() as connection:
            versions = connection.execute(
                sa.select(t.document_versions.c.document_id, sa.func.count())
                .group_by(t.document_versions.c.document_id)).all()
            widgets = connection.execute(
                sa.select(sa.func.count()).select_from(t.widgets)).scalar_one()
        assert sorted(d for d, _ in versions) == sorted(ids)
        assert {n for _, n in versions} == {1}
        assert widgets == count * 9
        assert inventory.check_integrity() == []
        if inventory.engine.dialect.name == "sqlite":
            with inventory.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
