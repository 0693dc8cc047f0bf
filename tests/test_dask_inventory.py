"""inspector.contrib.dask.scan: a scan into the inventory, inspected on a real LocalCluster."""

from __future__ import annotations

import os
import signal
from typing import Any, List, Optional, Tuple

import pytest
from conftest import start_dask_cluster
from support import MS, wait_until

from inspector import InvalidArgument
from inspector.sample_catalog import load_catalog
from inspector.server import Faults, run_sample_server

distributed = pytest.importorskip("distributed")
pytest.importorskip("sqlalchemy")

from inspector.contrib.dask import InspectorSettings, StoreUnavailable, scan  # noqa: E402
from inspector.inventory import Inventory  # noqa: E402

pytestmark = pytest.mark.timeout(180)


def test_a_scan_of_the_sample_catalog(dask_client: Any, inventory_db: str) -> None:
    """Every catalog document is stored once; the run record counts them as new."""
    ids = load_catalog().document_ids()
    seen: List[Tuple[str, str, Optional[str]]] = []
    with run_sample_server() as server, Inventory(inventory_db) as inventory:
        record = scan(inventory, dask_client, InspectorSettings(server.url), ids, full=True,
                      batch_size=4, on_result=lambda *result: seen.append(result))
        assert record.status == "completed"
        assert (record.targets, record.new, record.failed) == (len(ids), len(ids), 0)
        assert sorted(i for i, _, _ in seen) == sorted(ids)
        assert sorted(i.document.id for i in inventory.inspections()) == sorted(ids)
        assert inventory.check_integrity() == []


def test_two_thousand_generated_documents(dask_client: Any, inventory_db: str) -> None:
    """2,000 generated documents land in the inventory, each once."""
    ids = [f"gen-2x2-i{n}" for n in range(2000)]
    with run_sample_server() as server, Inventory(inventory_db) as inventory:
        record = scan(inventory, dask_client, InspectorSettings(server.url), ids, full=True,
                      batch_size=100)
        assert (record.status, record.new, record.failed) == ("completed", 2000, 0)
        assert inventory.check_integrity() == []


def test_a_failed_document_is_recorded_as_failed(dask_client: Any, inventory_db: str) -> None:
    """A document the server refuses is in the run's failures with its reason; not retried."""
    with run_sample_server(Faults(error_for={"doc-2": 500})) as server, \
            Inventory(inventory_db) as inventory:
        record = scan(inventory, dask_client, InspectorSettings(server.url, retries=0),
                      ["doc-1", "doc-2"], full=True)
        assert (record.new, record.failed) == (1, 1)
        [(document_id, reason)] = inventory.failures(record.id)
        assert document_id == "doc-2" and "500" in reason
        assert server.stats.requests_by_method.get("GetDocument") == 2


def test_a_stopped_scan_resumes_where_it_stopped(dask_client: Any, inventory_db: str) -> None:
    """Interrupted after some documents, the next scan of the same selection does the rest."""
    ids = [f"gen-1x1-r{n}" for n in range(300)]
    recorded: List[str] = []

    def stop_after_100(document_id: str, outcome: str, reason: Optional[str]) -> None:
        recorded.append(document_id)
        if len(recorded) == 100:
            raise KeyboardInterrupt

    with run_sample_server() as server, Inventory(inventory_db) as inventory:
        settings = InspectorSettings(server.url)
        with pytest.raises(KeyboardInterrupt):
            scan(inventory, dask_client, settings, ids, full=True, batch_size=20,
                 on_result=stop_after_100)
        [stopped] = inventory.runs()
        assert (stopped.status, stopped.new) == ("interrupted", 100)
        record = scan(inventory, dask_client, settings, ids, full=True, batch_size=20,
                      on_result=lambda document_id, *_: recorded.append(document_id))
        assert record.id == stopped.id and record.status == "completed"
        assert (record.new, record.failed) == (300, 0)
        assert sorted(recorded) == sorted(ids)  # the second part did only the rest
        assert inventory.check_integrity() == []


def test_a_worker_killed_during_a_scan_into_the_inventory(own_dask_client: Any,
                                                          inventory_db: str) -> None:
    """The killed worker's batches run again elsewhere; every document stored exactly once."""
    ids = [f"gen-1x2-kill{n}" for n in range(600)]
    victim = sorted(own_dask_client.run(os.getpid).items())[0][1]
    recorded: List[str] = []

    def kill_once(document_id: str, outcome: str, reason: Optional[str]) -> None:
        recorded.append(document_id)
        if len(recorded) == 40:  # both workers are inside a batch now
            os.kill(victim, signal.SIGKILL)

    with run_sample_server(Faults(latency=0.005)) as server, \
            Inventory(inventory_db) as inventory:
        record = scan(inventory, own_dask_client, InspectorSettings(server.url), ids,
                      full=True, batch_size=20, max_batches_in_flight=4, on_result=kill_once)
        assert (record.status, record.new, record.failed) == ("completed", 600, 0)
        assert sorted(recorded) == sorted(ids)
        assert len(list(inventory.inspections())) == 600
        assert inventory.check_integrity() == []
    own_dask_client.wait_for_workers(2, timeout=30_000 * MS)
    wait_until(lambda: victim not in own_dask_client.run(os.getpid).values(), 30_000 * MS)


def test_a_second_scan_is_incremental(dask_client: Any, inventory_db: str) -> None:
    """Unchanged documents cost one request each on the workers; a changed one is re-read."""
    ids = [f"gen-2x2-inc{n}" for n in range(200)]
    with run_sample_server() as server, Inventory(inventory_db) as inventory:
        settings = InspectorSettings(server.url)
        first = scan(inventory, dask_client, settings, ids, batch_size=50)
        assert (first.new, first.unchanged) == (200, 0)
        containers_before = server.stats.requests_by_method["GetWidgetContainer"]
        server.mutate(ids[7], "sql", notify=False)
        second = scan(inventory, dask_client, settings, ids, batch_size=50)
        assert (second.new, second.changed, second.unchanged) == (0, 1, 199)
        # Only the changed document's containers were asked for again.
        assert server.stats.requests_by_method["GetWidgetContainer"] == containers_before + 2
        assert inventory.check_integrity() == []


DB_ENV = "INSPECTOR_DASK_TEST_DB"
DB_PASSWORD = "pw-9c41e7-never-pickled"


@pytest.fixture
def postgresql_with_password(postgresql_url: str) -> str:
    """The test database's URL with a distinctive password (the server trusts local users)."""
    return postgresql_url.replace("inventory@", f"inventory:{DB_PASSWORD}@", 1)


def test_workers_write_into_postgresql(dask_offload_thread: None, postgresql_with_password: str,
                                       dask_frames: List[bytes]) -> None:
    """With workers_write, each worker records its batches; the password never travels."""
    ids = [f"gen-1x2-pg{n}" for n in range(300)] + ["doc-missing"]
    with start_dask_cluster(**{DB_ENV: postgresql_with_password}) as client, \
            run_sample_server() as server, Inventory(postgresql_with_password) as inventory:
        settings = InspectorSettings(server.url, store_env=DB_ENV)
        seen: List[str] = []
        first = scan(inventory, client, settings, ids, workers_write=True, batch_size=25,
                     on_result=lambda document_id, *_: seen.append(document_id))
        assert (first.status, first.new, first.failed) == ("completed", 300, 1)
        assert sorted(seen) == sorted(ids)
        [(failed_id, reason)] = inventory.failures(first.id)
        assert failed_id == "doc-missing" and "404" in reason
        second = scan(inventory, client, settings, ids[:-1], workers_write=True, batch_size=25)
        assert (second.unchanged, second.new, second.failed) == (300, 0, 0)
        assert inventory.check_integrity() == []
    sent = b"".join(dask_frames)
    assert b"gen-1x2-pg7" in sent  # the capture saw the batches
    assert DB_PASSWORD.encode() not in sent


def test_workers_write_refuses_sqlite(dask_client: Any, tmp_path: Any) -> None:
    """SQLite takes one writer: workers_write is refused by name; no run is started."""
    with Inventory(str(tmp_path / "inventory.db")) as inventory:
        with pytest.raises(InvalidArgument, match="workers_write"):
            scan(inventory, dask_client, InspectorSettings("ws://127.0.0.1:1", store_env=DB_ENV),
                 ["doc-1"], workers_write=True)
        assert inventory.runs() == []


def test_workers_without_the_database_url_stop_the_run(dask_client: Any,
                                                       postgresql_url: str) -> None:
    """Workers that cannot reach the inventory stop the run, resumably, naming the variable."""
    with run_sample_server() as server, Inventory(postgresql_url) as inventory:
        settings = InspectorSettings(server.url, store_env="INSPECTOR_DASK_TEST_UNSET_DB")
        with pytest.raises(StoreUnavailable, match="INSPECTOR_DASK_TEST_UNSET_DB is not set"):
            scan(inventory, dask_client, settings, ["doc-1", "doc-2"], workers_write=True)
        [run] = inventory.runs()
        assert (run.status, run.new, run.failed) == ("interrupted", 0, 0)
