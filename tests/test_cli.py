"""Tests of the command line, run as a subprocess against the sample server."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import termios
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from inspector import DocumentInspector, Inspection, from_json
from inspector.redaction import REDACTED
from inspector.server import SampleServer, run_sample_server

PROG = [sys.executable, "-m", "inspector"]
TOKEN = "tok-9f8e7d6c5b4a"
CATALOG_PASSWORD = "s3cr3t"
RUN_TIMEOUT = 60.0


def child_env(url: Optional[str] = None, **extra: str) -> Dict[str, str]:
    """The environment of a child: ours without INSPECTOR_*, plus INSPECTOR_URL and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECTOR_")}
    if url is not None:
        env["INSPECTOR_URL"] = url
    env.update(extra)
    return env


def run_cli(
    *args: str,
    url: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    stdin: Optional[str] = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m inspector ARGS`` to completion; stdout and stderr captured as text."""
    return subprocess.run(
        [*PROG, *args],
        env=env if env is not None else child_env(url),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def jsonl_ids(stdout: str) -> List[str]:
    """The document id of each JSON line."""
    return [from_json(line, Inspection).document.id for line in stdout.splitlines()]


def read_line(fd: int, deadline: float) -> str:
    """Read one line from a pipe, byte by byte, waiting at most until ``deadline``."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"no full line before the deadline; got {data!r}")
        chunk = os.read(fd, 1)
        if not chunk:
            pytest.fail(f"end of output before a full line; got {data!r}")
        data += chunk
    return data.decode()


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    """Expected failures are reported in a line, never as a traceback."""
    assert "Traceback" not in result.stderr


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- inspect: what is printed --


def test_one_document_prints_its_inspection_as_json(sample_server: SampleServer) -> None:
    """``inspect DOC_ID`` prints the Inspection object, equal to the library's."""
    result = run_cli("inspect", "doc-1", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    with DocumentInspector(sample_server.url) as inspector:
        expected = inspector.inspect("doc-1")
    assert from_json(result.stdout, Inspection) == expected
    assert result.stdout.startswith("{\n")  # indented, for people too


def test_console_script_is_the_same_command(sample_server: SampleServer) -> None:
    """The installed ``document-inspector`` script runs the same command line."""
    script = Path(sysconfig.get_path("scripts")) / "document-inspector"
    assert script.exists(), "the package is not installed with its console script"
    result = subprocess.run(
        [str(script), "inspect", "doc-2", "--format", "jsonl"],
        env=child_env(sample_server.url), capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert jsonl_ids(result.stdout) == ["doc-2"]


def test_several_documents_print_one_line_each_in_order(sample_server: SampleServer) -> None:
    """Several documents default to jsonl, one line per document, in the order given."""
    sample_server.faults.jitter = 0.02  # replies out of order; the output is not
    order = ["deck-2", "doc-3", "doc-1", "ds-1", "gen-4x3"]
    result = run_cli("inspect", *order, url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert jsonl_ids(result.stdout) == order


def test_json_format_of_several_documents_is_an_array(sample_server: SampleServer) -> None:
    """``--format json`` with several documents prints one JSON array of Inspections."""
    result = run_cli("inspect", "doc-1", "doc-2", "--format", "json", url=sample_server.url)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [item["document"]["id"] for item in data] == ["doc-1", "doc-2"]


def start_held_up(server: SampleServer) -> Tuple[subprocess.Popen[str], str]:
    """``inspect doc-1 doc-2 --format jsonl``, doc-2 never answered: the child and doc-1's line.

    When this returns, the child has printed doc-1 and is waiting for doc-2.
    """
    server.faults.silent_ids = frozenset({"doc-2"})
    proc = subprocess.Popen(
        [*PROG, "inspect", "doc-1", "doc-2", "--format", "jsonl"],
        env=child_env(server.url),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        return proc, read_line(proc.stdout.fileno(), time.monotonic() + RUN_TIMEOUT)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=RUN_TIMEOUT)
        raise


def test_jsonl_prints_each_document_as_soon_as_it_is_done(sample_server: SampleServer) -> None:
    """doc-1's line arrives while doc-2, never answered, still holds the command up."""
    proc, line = start_held_up(sample_server)
    try:
        assert from_json(line, Inspection).document.id == "doc-1"
        assert proc.poll() is None  # still waiting for doc-2
    finally:
        proc.kill()
        proc.communicate(timeout=RUN_TIMEOUT)


def test_ctrl_c_exits_130_with_one_line(sample_server: SampleServer) -> None:
    """SIGINT while waiting for a document: exit status 130 and a one-line message."""
    proc, _ = start_held_up(sample_server)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 130
    assert stderr == "document-inspector: interrupted\n"


def test_table_format_shows_widgets_by_type_and_sources(sample_server: SampleServer) -> None:
    """``--format table``: per document, its facts, widget types and data sources."""
    result = run_cli("inspect", "doc-1", "doc-6", "--format", "table", url=sample_server.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["doc-1  Sales overview",
                         "type biDashboard, owner finance, 2 containers, 3 widgets"]
    assert "chart            1  doc-1/c1/w1" in lines
    assert any(line.split()[:3] == ["spreadsheet", "https://sheets.example.com/d/8f2a",
                                    "A1:D40"] for line in lines)
    assert lines[lines.index("doc-6  Accounts receivable aging") - 1] == ""  # one blank line
    assert f"report_user:{REDACTED}@warehouse" in result.stdout
    assert CATALOG_PASSWORD not in result.stdout


# -- which documents --


def test_all_inspects_every_listed_document(sample_server: SampleServer) -> None:
    """``--all`` inspects every document ListDocuments names, in its order."""
    with DocumentInspector(sample_server.url) as inspector:
        listed = inspector.list_documents()
    assert len(listed) > 10
    result = run_cli("inspect", "--all", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert jsonl_ids(result.stdout) == listed


def test_ids_from_a_file_skip_blanks_comments_and_repeats(
    sample_server: SampleServer, tmp_path: Path
) -> None:
    """``--from-file FILE``: one id a line; blank, ``#`` and repeated lines are skipped."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# dashboards to review\ndoc-3\n\n  doc-1  \ndoc-3\n", encoding="utf-8")
    result = run_cli("inspect", "deck-1", "--from-file", str(ids_file), url=sample_server.url)
    assert result.returncode == 0, result.stderr
    assert jsonl_ids(result.stdout) == ["deck-1", "doc-3", "doc-1"]


def test_ids_from_stdin(sample_server: SampleServer) -> None:
    """``--from-file -`` reads the ids from stdin."""
    result = run_cli("inspect", "--from-file", "-", url=sample_server.url, stdin="doc-2\ndoc-1\n")
    assert result.returncode == 0, result.stderr
    assert jsonl_ids(result.stdout) == ["doc-2", "doc-1"]


# -- where, and with which token --


def test_url_option_wins_over_the_environment(sample_server: SampleServer) -> None:
    """``--url`` is used rather than INSPECTOR_URL, which is used when there is no --url."""
    dead = f"ws://127.0.0.1:{free_port()}"
    result = run_cli("inspect", "doc-1", "--url", sample_server.url, url=dead)
    assert result.returncode == 0, result.stderr
    result = run_cli("inspect", "doc-1", url=sample_server.url)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variable", ["INSPECTOR_TOKEN", "REPORTING_TOKEN"])
def test_token_comes_from_the_environment(variable: str) -> None:
    """The token is read from INSPECTOR_TOKEN, or the variable --token-env names, and sent."""
    with run_sample_server(tokens={TOKEN: True}) as server:
        option = [] if variable == "INSPECTOR_TOKEN" else ["--token-env", variable]
        result = run_cli("inspect", "doc-1", *option,
                         env=child_env(server.url, **{variable: TOKEN}))
        assert result.returncode == 0, result.stderr
        assert server.stats.handshake_headers[-1]["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in result.stdout + result.stderr


def test_missing_token_is_a_connection_error() -> None:
    """Without a token the server refuses the handshake: exit status 2, one line, no token."""
    with run_sample_server(tokens={TOKEN: True}) as server:
        result = run_cli("inspect", "doc-1", url=server.url)
    assert result.returncode == 2
    assert "401" in result.stderr and len(result.stderr.splitlines()) == 1
    assert_no_traceback(result)


@pytest.mark.parametrize("form", [["--token", TOKEN], [f"--token={TOKEN}"], ["--tok", TOKEN]])
def test_token_is_never_accepted_as_an_argument(
    sample_server: SampleServer, form: List[str]
) -> None:
    """``--token VALUE`` (or an abbreviation) is a usage error that does not echo the value."""
    result = run_cli("inspect", "doc-1", *form, url=sample_server.url)
    assert result.returncode == 2
    assert TOKEN not in result.stdout + result.stderr
    assert sample_server.stats.handshakes == 0


def test_token_env_naming_an_unset_variable_is_a_usage_error(sample_server: SampleServer) -> None:
    """``--token-env VAR`` with VAR unset: exit status 2, and the name given is not echoed."""
    result = run_cli("inspect", "doc-1", "--token-env", TOKEN, url=sample_server.url)
    assert result.returncode == 2
    assert "--token-env" in result.stderr and TOKEN not in result.stderr


# -- failures and exit status --


def test_failed_document_is_reported_and_the_others_printed(sample_server: SampleServer) -> None:
    """One missing document: its id and reason on stderr, the others on stdout, exit status 1."""
    result = run_cli("inspect", "doc-1", "no-such-doc", "doc-3", url=sample_server.url)
    assert result.returncode == 1
    assert jsonl_ids(result.stdout) == ["doc-1", "doc-3"]
    (line,) = result.stderr.splitlines()
    assert line.startswith("document-inspector: no-such-doc: ServerError: ")
    assert "404" in line
    assert_no_traceback(result)


def test_refused_connection_exits_2_without_traceback() -> None:
    """Nothing listening: one line on stderr, exit status 2."""
    result = run_cli("inspect", "doc-1", url=f"ws://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert result.stderr.startswith("document-inspector: ConnectionFailed: ")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_lost_connection_exits_2(sample_server: SampleServer) -> None:
    """The connection dropped mid-run and cannot be reopened: exit status 2."""
    proc, _ = start_held_up(sample_server)
    sample_server.faults.refuse_status = 401  # no new connection, should the client try one
    assert sample_server.drop_connections() == 1
    _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 2
    assert stderr.startswith("document-inspector: doc-2: Connection")
    assert len(stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect"], "name at least one DOC_ID"),
        (["inspect", "doc-1", "--format", "xml"], "invalid choice"),
        (["inspect", "--from-file", "/nonexistent/ids.txt"], "cannot read --from-file"),
        (["sources", "doc-1", "--format", "jsonl"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(sample_server: SampleServer, args: List[str], message: str) -> None:
    """A bad command line: exit status 2 and a message, never a traceback."""
    result = run_cli(*args, url=sample_server.url)
    assert result.returncode == 2
    assert message in result.stderr
    assert_no_traceback(result)


def test_no_url_is_a_usage_error() -> None:
    """Neither --url nor INSPECTOR_URL: exit status 2 saying so."""
    result = run_cli("inspect", "doc-1", env=child_env())
    assert result.returncode == 2
    assert "INSPECTOR_URL" in result.stderr


def test_verbose_turns_on_logging(sample_server: SampleServer) -> None:
    """``--verbose`` logs to stderr; without it, a good run leaves stderr empty."""
    quiet = run_cli("inspect", "doc-1", url=sample_server.url)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    for args in (["--verbose", "inspect", "doc-1"], ["inspect", "doc-1", "-v"]):
        loud = run_cli(*args, url=sample_server.url)
        assert loud.returncode == 0
        assert " DEBUG inspector" in loud.stderr
        assert loud.stdout == quiet.stdout


# -- the progress bar --


def test_no_progress_bar_when_stderr_is_a_pipe(sample_server: SampleServer) -> None:
    """Several documents, stderr a pipe: nothing on stderr."""
    result = run_cli("inspect", "doc-1", "doc-2", "doc-3", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")


def read_terminal(fd: int, deadline: float) -> str:
    """Everything written to a pseudo-terminal until its last writer closes it."""
    output = b""
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"the terminal was not closed before the deadline; got {output!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO on Linux: every writer has closed it
            break
        if not chunk:
            break
        output += chunk
    return output.decode(errors="replace")


@pytest.mark.parametrize("documents", [["doc-1", "doc-2", "doc-3"], ["doc-1"]])
def test_progress_bar_on_a_terminal(
    sample_server: SampleServer, tmp_path: Path, documents: List[str]
) -> None:
    """stderr a terminal: a progress bar for several documents, none for one."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        with open(tmp_path / "out.jsonl", "w") as out:
            proc = subprocess.Popen(
                [*PROG, "inspect", *documents, "--format", "jsonl"],
                env=child_env(sample_server.url),
                stdin=subprocess.DEVNULL, stdout=out, stderr=terminal,
            )
        os.close(terminal)
        terminal = -1
        shown = read_terminal(controller, time.monotonic() + RUN_TIMEOUT)
        assert proc.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    assert jsonl_ids((tmp_path / "out.jsonl").read_text()) == documents
    if len(documents) > 1:
        assert "3/3" in shown and "100%" in shown
    else:
        assert shown == ""


# -- sources --


def test_sources_json_report(sample_server: SampleServer) -> None:
    """``sources``: each distinct source with its statements, tables and users; no password."""
    result = run_cli("sources", "doc-1", "doc-6", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert CATALOG_PASSWORD not in result.stdout
    report = json.loads(result.stdout)
    assert report["documents"] == ["doc-1", "doc-6"]
    by_location = {s["connection"] or s["url"]: s for s in report["sources"]}
    plain = by_location["postgresql://warehouse.internal:5432/sales"]
    assert plain["widgets"] == ["doc-1/c1/w1", "doc-1/c1/w2"]
    assert [s["tables"] for s in plain["statements"]] == [
        ["orders"], ["sales.accounts", "sales.orders"]
    ]
    secret = by_location[f"postgresql://report_user:{REDACTED}@warehouse.internal:5432/sales"]
    assert secret["documents"] == ["doc-6"]
    assert by_location["https://sheets.example.com/d/8f2a"]["ranges"] == ["A1:D40"]


def test_sources_table_report(sample_server: SampleServer) -> None:
    """``sources --format table``: a block per source, its SQL with the tables each reads."""
    result = run_cli("sources", "doc-1", "doc-6", "--format", "table", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == "3 data sources used by 2 documents: doc-1, doc-6"
    assert "database  postgresql://warehouse.internal:5432/sales" in lines
    assert f"database  postgresql://report_user:{REDACTED}@warehouse.internal:5432/sales" in lines
    (row,) = [line for line in lines if line.endswith("FROM orders GROUP BY region")]
    assert row.split()[:3] == ["1", "orders", "doc-1/c1/w1"]
    assert CATALOG_PASSWORD not in result.stdout


def test_sources_of_failed_documents_are_left_out(sample_server: SampleServer) -> None:
    """A failed document is reported on stderr; the report covers the others; exit status 1."""
    result = run_cli("sources", "no-such-doc", "doc-1", url=sample_server.url)
    assert result.returncode == 1
    assert json.loads(result.stdout)["documents"] == ["doc-1"]
    assert result.stderr.startswith("document-inspector: no-such-doc: ServerError: ")


def test_sources_without_sqlglot_says_what_to_install(sample_server: SampleServer) -> None:
    """Without sqlglot, ``sources`` exits 2 naming the extra to install, before connecting."""
    code = (
        "import sys; sys.modules['sqlglot'] = None\n"
        "from inspector.cli import main\n"
        f"sys.exit(main(['sources', 'doc-1', '--url', {sample_server.url!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True,
                            text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 2
    assert "pip install 'document-inspector[cli]'" in result.stderr
    assert_no_traceback(result)
    assert sample_server.stats.handshakes == 0


# -- demo and serve --


def test_demo_prints_doc_1() -> None:
    """``demo`` runs the sample server in-process and prints doc-1's Inspection."""
    result = run_cli("demo", env=child_env())
    assert result.returncode == 0, result.stderr
    report = from_json(result.stdout, Inspection)
    assert (report.document.id, report.document.name) == ("doc-1", "Sales overview")
    assert len(report.widgets) == 3


def test_serve_runs_the_sample_server_until_sigterm() -> None:
    """``serve --port 0`` says where it listens, serves, and exits 0 on SIGTERM."""
    proc = subprocess.Popen(
        [*PROG, "serve", "--port", "0"], env=child_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = read_line(proc.stdout.fileno(), time.monotonic() + RUN_TIMEOUT)
        assert line.startswith("listening on ws://")
        with DocumentInspector(line.split()[-1]) as inspector:
            assert inspector.inspect("doc-1").document.name == "Sales overview"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0
