"""The inventory's commands, run through main() against a real sample server and database."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from typing import Iterator, List, Tuple

import pytest

from inspector.cli import main
from inspector.server import SampleServer, run_sample_server


@pytest.fixture
def server() -> Iterator[SampleServer]:
    """A sample server with 30 generated documents beside the catalog."""
    with run_sample_server(generated=30, seed=7) as running:
        yield running


def run(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str, str]:
    """main(argv): (exit status, stdout, stderr)."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def scan(capsys, server: SampleServer, db: str, *options: str) -> Tuple[int, dict, str]:
    status, out, err = run(capsys, "scan", "--db", db, "--url", server.url, "--format", "json",
                           *options)
    return status, json.loads(out) if out else {}, err


def test_scan_prints_the_run_report(inventory_db, server, capsys):
    """scan --all stores every document and reports counts, time and rate; json for machines."""
    status, report, err = scan(capsys, server, inventory_db, "--all")
    listed = len(server.document_ids())
    assert (status, err) == (0, "")
    assert (report["status"], report["new"], report["targets"]) == ("completed", listed, listed)
    assert report["docs_per_second"] > 0 and report["failures"] == []
    status, out, _ = run(capsys, "scan", "--db", inventory_db, "--url", server.url, "--all")
    assert status == 0
    assert f"scanned {listed} of {listed}: 0 new, 0 changed, {listed} unchanged" in out
    assert "documents/s" in out


def test_scan_with_failures_exits_1_and_names_them(inventory_db, server, capsys):
    """A document that fails is one line on stderr and exit status 1; the others are stored."""
    status, report, err = scan(capsys, server, inventory_db, "doc-1", "no-such-doc")
    assert status == 1
    assert (report["new"], report["failed"]) == (1, 1)
    assert err.startswith("document-inspector: no-such-doc: ServerError")
    assert len(err.splitlines()) == 1


def test_refused_run_exits_2_with_the_reason(inventory_db, server, capsys):
    """A listing that lacks too many documents: one line saying why, exit status 2."""
    scan(capsys, server, inventory_db, "--all")
    for _ in range(15):
        server.mutate(kind="remove_document", notify=False)
    status, _, err = scan(capsys, server, inventory_db, "--all", "--stale-threshold", "0.1")
    assert status == 2
    assert "refused" in err and "--stale-threshold" in err and len(err.splitlines()) == 1
    status, report, _ = scan(capsys, server, inventory_db, "--all", "--stale-threshold", "0.5")
    assert (status, report["deleted"]) == (0, 15)


def test_query_reads_in_three_formats(inventory_db, server, capsys):
    """query --reads: a table, JSON and CSV, all naming the same documents."""
    scan(capsys, server, inventory_db, "--all")
    _, as_json, _ = run(capsys, "query", "--db", inventory_db, "--reads", "sales.customers",
                        "--format", "json")
    documents = {row["document"] for row in json.loads(as_json)}
    assert "doc-6" in documents
    _, as_csv, _ = run(capsys, "query", "--db", inventory_db, "--reads", "customers",
                       "--format", "csv")
    assert documents <= {row["document"] for row in csv.DictReader(io.StringIO(as_csv))}
    status, table, _ = run(capsys, "query", "--db", inventory_db, "--reads", "sales.customers")
    assert status == 0 and table.splitlines()[0].split()[:3] == ["document", "version", "table"]
    assert all(document in table for document in documents)


def test_query_sources_of_as_of_a_run(inventory_db, server, capsys):
    """query --sources-of DOC --run N: the sources the document had then."""
    scan(capsys, server, inventory_db, "--all")
    mutation = server.mutate("doc-6", kind="sql", notify=False)
    scan(capsys, server, inventory_db, "--all")
    _, then, _ = run(capsys, "query", "--db", inventory_db, "--sources-of", "doc-6", "--run", "1",
                     "--format", "json")
    _, now, _ = run(capsys, "query", "--db", inventory_db, "--sources-of", "doc-6",
                    "--format", "json")
    assert {row["version"] for row in json.loads(then)} == {1}
    assert {row["version"] for row in json.loads(now)} == {2}
    assert mutation.object_id in {row["widget"] for row in json.loads(now)}


def test_diff_between_two_runs(inventory_db, server, capsys):
    """diff RUN_A RUN_B lists new, changed and deleted documents."""
    scan(capsys, server, inventory_db, "--all")
    changed = server.mutate("doc-2", kind="sql", notify=False).document_id
    removed = server.mutate("doc-3", kind="remove_document", notify=False).document_id
    added = server.mutate(kind="add_document", notify=False).document_id
    scan(capsys, server, inventory_db, "--all")
    status, out, _ = run(capsys, "diff", "--db", inventory_db, "1", "2", "--format", "json")
    assert status == 0
    assert {(row["document"], row["change"]) for row in json.loads(out)} == {
        (changed, "changed"), (removed, "deleted"), (added, "new")}
    status, table, _ = run(capsys, "diff", "--db", inventory_db, "1", "2")
    assert status == 0 and changed in table


def test_runs_lists_every_run(inventory_db, server, capsys):
    """runs: every run with its counts; runs N: that run's report."""
    scan(capsys, server, inventory_db, "--all")
    scan(capsys, server, inventory_db, "doc-1", "nope")
    _, out, _ = run(capsys, "runs", "--db", inventory_db, "--format", "json")
    rows: List[dict] = json.loads(out)
    assert [(r["run"], r["status"], r["failed"]) for r in rows] == [(1, "completed", 0),
                                                                    (2, "completed", 1)]
    _, out, _ = run(capsys, "runs", "--db", inventory_db, "2")
    assert "failed: nope: ServerError" in out


def test_sources_from_the_store_equals_sources_from_the_server(inventory_db, server, capsys):
    """sources --db gives the report the server gives for the same documents."""
    scan(capsys, server, inventory_db, "--all")
    ids = sorted(server.document_ids())
    _, from_store, _ = run(capsys, "sources", "--db", inventory_db)
    _, from_server, _ = run(capsys, "sources", "--url", server.url, *ids)
    assert json.loads(from_store) == json.loads(from_server)


def test_usage_errors_are_one_line_exit_2(tmp_path, server, capsys, monkeypatch):
    """No database, no documents, a bad threshold: one line on stderr, exit 2."""
    monkeypatch.delenv("INSPECTOR_DB", raising=False)
    for argv, expected in (
        (["scan", "--url", server.url, "doc-1"], "INSPECTOR_DB"),
        (["scan", "--db", str(tmp_path / "i.db"), "--url", server.url], "DOC_ID"),
        (["scan", "--db", str(tmp_path / "i.db"), "--url", server.url, "--all",
          "--stale-threshold", "2"], "--stale-threshold"),
        (["diff", "--db", str(tmp_path / "i.db"), "1", "2"], "no run 1"),
        (["query", "--db", str(tmp_path / "i.db"), "--reads", "x", "--at", "2026-01-01"],
         "--at goes with --sources-of"),
    ):
        status, out, err = run(capsys, *argv)
        assert status == 2, argv
        assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_help_works_without_the_inventory_extra():
    """--help needs no SQLAlchemy; running a command without it says how to install it."""
    code = (
        "import sys; sys.modules['sqlalchemy'] = None; from inspector.cli import main; "
        "assert main(['scan', '--help']) == 0; "
        "sys.exit(main(['runs', '--db', 'x.db']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert "pip install 'document-inspector[inventory]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_scan_resume_continues_the_stopped_run(inventory_db, server, capsys):
    """scan --resume continues the latest stopped scan, and says so in its report."""
    from inspector.inventory import Inventory

    with Inventory(inventory_db) as inventory:
        stopped = inventory.start_run(server=server.url, document_ids=["doc-1", "doc-2"])
        stopped.finish("interrupted", "stopped")
    status, report, _ = scan(capsys, server, inventory_db, "--resume")
    assert (status, report["run"], report["resumed"], report["new"]) == (0, 1, 1, 2)
    # Nothing stopped now: --resume says so.
    status, _, err = run(capsys, "scan", "--db", inventory_db, "--url", server.url, "--resume")
    assert status == 2 and "NothingToResume" in err


def test_watch_runs_until_interrupted(tmp_path, server):
    """watch keeps scanning in its own process; Ctrl-C stops it with status 0."""
    import signal

    from support import MS, wait_until

    from inspector.inventory import Inventory

    db = str(tmp_path / "watched.db")
    Inventory(db).close()
    process = subprocess.Popen(
        [sys.executable, "-m", "inspector", "watch", "--db", db, "--url", server.url,
         "--relist", "0.2"], stderr=subprocess.PIPE, text=True)
    try:
        def runs() -> int:
            with Inventory(db) as inventory:
                return sum(run.status == "completed" for run in inventory.runs())
        wait_until(lambda: runs() >= 2, timeout=30_000 * MS)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "watch: run 1 completed" in err and err.rstrip().endswith("watch: stopped")
    with Inventory(db) as inventory:
        assert {run.trigger for run in inventory.runs()} == {"watch"}
