"""``document-inspector scan --dask ADDRESS`` and ``--workers N``, run in-process."""

from __future__ import annotations

import json
from typing import Any, List

import pytest

from inspector.cli import main
from inspector.server import Faults, run_sample_server

distributed = pytest.importorskip("distributed")
pytest.importorskip("sqlalchemy")

pytestmark = pytest.mark.timeout(180)


def _scan(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status = main(["scan", "--format", "json", *argv])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else None), err


def test_scan_on_a_running_cluster(dask_client: Any, tmp_path: Any,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--dask ADDRESS: every document inspected on the cluster, stored, and the run reported."""
    db = str(tmp_path / "inventory.db")
    address = dask_client.scheduler.address
    with run_sample_server(generated=300) as server:
        status, report, err = _scan(capsys, "--url", server.url, "--db", db, "--dask", address,
                                    "--all", "--full", "--batch-size", "50")
    assert status == 0, err
    assert (report["status"], report["failed"], report["all"]) == ("completed", 0, True)
    assert report["new"] == report["targets"] >= 300
    assert "Traceback" not in err


def test_scan_on_a_local_cluster_of_its_own(dask_offload_thread: None, tmp_path: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """--workers 2 starts a cluster for the scan and stops it after; failures exit 1; the cap
    holds; a second scan finds every document unchanged."""
    db = str(tmp_path / "inventory.db")
    ids: List[str] = [f"gen-1x2-w{n}" for n in range(200)] + ["doc-missing"]
    with run_sample_server() as server:
        status, report, err = _scan(capsys, "--url", server.url, "--db", db, "--workers", "2",
                                    "--connection-cap", "1", *ids)
        assert server.stats.max_open_connections == 1
        assert status == 1
        assert (report["new"], report["failed"]) == (200, 1)
        assert report["failures"][0]["document"] == "doc-missing"
        assert "doc-missing" in err and "Traceback" not in err
        status, report, err = _scan(capsys, "--url", server.url, "--db", db, "--workers", "1",
                                    *ids[:-1])
    assert status == 0, err
    assert (report["unchanged"], report["new"], report["failed"]) == (200, 0, 0)


def test_a_refused_token_stops_the_run_resumably(dask_client: Any, tmp_path: Any,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A token the server refuses: one line, exit 2, the run left to resume."""
    monkeypatch.setenv("INSPECTOR_TOKEN", "not-accepted")
    db = str(tmp_path / "inventory.db")
    with run_sample_server(Faults(refuse_status=401)) as server:
        status, report, err = _scan(capsys, "--url", server.url, "--db", db, "--dask",
                                    dask_client.scheduler.address, "doc-1", "doc-2")
    assert status == 2 and report is None
    assert err.count("\n") == 1 and "ConnectionFailed" in err and "not-accepted" not in err


@pytest.mark.parametrize("options, message", [
    (["--workers", "0"], "--workers: expected at least 1"),
    (["--workers", "2", "--connection-cap", "0"], "--connection-cap: expected at least 1"),
    (["--workers", "2", "--dask", "tcp://127.0.0.1:1"], "not allowed with argument"),
])
def test_bad_cluster_options_are_one_line(options: List[str], message: str, tmp_path: Any,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A bad cluster option: exit 2 and one line naming it, no cluster started."""
    status = main(["scan", "--url", "ws://127.0.0.1:1", "--db", str(tmp_path / "i.db"),
                   "doc-1", *options])
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err


def test_an_unreachable_scheduler_is_one_line(tmp_path: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--dask at an address where no scheduler listens: exit 2, one line naming it."""
    status = main(["scan", "--url", "ws://127.0.0.1:1", "--db", str(tmp_path / "i.db"),
                   "--timeout", "1", "--dask", "tcp://127.0.0.1:1", "doc-1"])
    err = capsys.readouterr().err
    assert status == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err
    assert err.count("\n") == 1


def test_workers_write_into_postgresql(dask_offload_thread: None, postgresql_url: str,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--workers 2 --workers-write: the local workers store the results in PostgreSQL."""
    monkeypatch.delenv("INSPECTOR_DB", raising=False)  # set by the command for its workers
    ids = [f"gen-1x1-ww{n}" for n in range(100)]
    with run_sample_server() as server:
        status, report, err = _scan(capsys, "--url", server.url, "--db", postgresql_url,
                                    "--workers", "2", "--workers-write", *ids)
    assert status == 0, err
    assert (report["new"], report["failed"]) == (100, 0)


def test_workers_write_into_sqlite_is_refused(dask_client: Any, tmp_path: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--workers-write with SQLite: one line, exit 2."""
    status = main(["scan", "--url", "ws://127.0.0.1:1", "--db", str(tmp_path / "i.db"),
                   "--dask", dask_client.scheduler.address, "--workers-write", "doc-1"])
    err = capsys.readouterr().err
    assert status == 2 and "SQLite takes one writer" in err and err.count("\n") == 1
