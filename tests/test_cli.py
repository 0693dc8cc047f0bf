"""Tests of the command line, run as a subprocess against the sample server."""

from __future__ import annotations

import contextlib
import fcntl
import http.server
import importlib.metadata
import json
import os
import re
import select
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import sysconfig
import termios
import threading
import time
from pathlib import Path
from typing import IO, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import pytest
import trustme
from support import MS, wait_until

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


def start_held_up(
    server: SampleServer, documents: Sequence[str] = ("doc-1", "doc-2"), *options: str
) -> Tuple[subprocess.Popen[str], str]:
    """``inspect DOCUMENTS --format jsonl``, doc-2 never answered: the child and doc-1's line.

    When this returns, the child has printed doc-1 and is waiting for doc-2.
    """
    server.faults.silent_ids = frozenset({"doc-2"})
    proc = subprocess.Popen(
        [*PROG, "inspect", *documents, "--format", "jsonl", *options],
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


def test_lost_connection_is_one_line_and_exits_2(sample_server: SampleServer) -> None:
    """Lost for good mid-run: one line for the outage with the count not inspected, exit 2."""
    order = ["doc-1", "doc-2", "doc-3", "doc-4", "doc-5", "doc-6"]
    proc, line = start_held_up(sample_server, order)
    assert from_json(line, Inspection).document.id == "doc-1"
    sample_server.faults.refuse_status = 401  # no new connection, should the client try one
    assert sample_server.drop_connections() == 1
    stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 2
    (outage,) = stderr.splitlines()
    assert outage.startswith("document-inspector: connection lost: ")
    assert outage.endswith("; 5 documents not inspected")
    assert stdout == ""  # doc-1's line was read by start_held_up


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
    """``-vv`` logs everything to stderr; without it, a good run leaves stderr empty."""
    quiet = run_cli("inspect", "doc-1", url=sample_server.url)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    for args in (["-vv", "inspect", "doc-1"], ["inspect", "doc-1", "-vv"]):
        loud = run_cli(*args, url=sample_server.url)
        assert loud.returncode == 0
        assert " DEBUG inspector" in loud.stderr
        assert loud.stdout == quiet.stdout


def test_verbose_shows_one_line_per_reconnection(sample_server: SampleServer) -> None:
    """``-v``: each reopened connection is one INFO line (no traceback, no DEBUG noise)."""
    sample_server.faults.drop_after = 3  # every connection dies on its third request
    result = run_cli("inspect", "doc-1", "-v", "--retries", "50", url=sample_server.url)
    assert result.returncode == 0, result.stderr
    assert from_json(result.stdout, Inspection).document.id == "doc-1"
    lines = result.stderr.splitlines()
    reopening = [line for line in lines if " INFO inspector" in line and "reopen" in line]
    assert len(reopening) >= sample_server.stats.connections_dropped - 1 >= 1
    assert all(" DEBUG " not in line for line in lines)
    assert_no_traceback(result)


def test_verbose_shows_one_line_per_request_sent_again(sample_server: SampleServer) -> None:
    """``-v``: each request sent again after silence is one INFO line."""
    sample_server.faults.silent_ids = frozenset({"doc-1/c2"})
    result = run_cli("inspect", "doc-1", "-v", "--request-timeout", "0.2", "--retries", "2",
                     url=sample_server.url)
    assert result.returncode == 1  # doc-1/c2 never answers, however often it is asked
    again = [line for line in result.stderr.splitlines()
             if " INFO inspector" in line and "again" in line and "doc-1/c2" in line]
    assert len(again) == 2
    assert_no_traceback(result)


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


# -- ids and options in any order (item 4) --


def test_ids_may_come_after_options(sample_server: SampleServer) -> None:
    """``inspect doc-1 --format jsonl doc-2``: both ids are taken, in order."""
    result = run_cli("inspect", "doc-1", "--format", "jsonl", "doc-2", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert jsonl_ids(result.stdout) == ["doc-1", "doc-2"]


def test_what_is_not_understood_is_named_by_the_command(sample_server: SampleServer) -> None:
    """An unknown option is named, with the command's own usage; the value is not echoed."""
    result = run_cli("inspect", "doc-1", "--bogus=secret-value", "doc-2", url=sample_server.url)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        "document-inspector inspect: error: unrecognized arguments: --bogus=..."
    )
    assert result.stderr.startswith("usage: document-inspector inspect ")
    assert "secret-value" not in result.stderr
    assert sample_server.stats.handshakes == 0


# -- mistakes that can never succeed (item 6) --


def assert_one_line_usage_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit status 2, one line on stderr holding each phrase, nothing on stdout."""
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr
    assert result.stdout == ""
    assert_no_traceback(result)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://{host}/api", "did you mean ws://{host}/api?"),
        ("https://{host}/api", "did you mean wss://{host}/api?"),
        ("{host}", "has no scheme: did you mean ws://{host}?"),
    ],
)
def test_url_that_is_not_a_websocket_url_fails_before_connecting(
    sample_server: SampleServer, url: str, hint: str
) -> None:
    """http://, https:// and a missing scheme: exit 2 with the URL meant, nothing connected."""
    host = sample_server.url.split("://", 1)[1]
    result = run_cli("inspect", "doc-1", url=url.format(host=host))
    assert_one_line_usage_error(result, "INSPECTOR_URL: ", hint.format(host=host))
    result = run_cli("list", "--url", url.format(host=host), env=child_env())
    assert_one_line_usage_error(result, hint.format(host=host))
    assert "INSPECTOR_URL" not in result.stderr
    assert sample_server.stats.handshakes == 0


class CountingHTTPServer:
    """A plain HTTP server answering 200 to every request; counts the connections it gets."""

    def __init__(self) -> None:
        self.connections = 0
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def setup(self) -> None:
                counter.connections += 1
                super().setup()

            def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
                body = b"<html>a web page</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="plain-http")

    def __enter__(self) -> CountingHTTPServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_plain_http_server_fails_with_exit_2_and_a_hint() -> None:
    """A web server answering 200: one line saying it is not a WebSocket upgrade, exit 2."""
    with CountingHTTPServer() as web:
        result = run_cli("inspect", "doc-1", url=f"ws://127.0.0.1:{web.port}/")
    assert_one_line_usage_error(
        result, "the server answered plain HTTP, not a WebSocket upgrade", "HTTP 200 OK"
    )


def test_plain_http_server_is_asked_once() -> None:
    """A failure that can never succeed is not retried: one connection, not five."""
    with CountingHTTPServer() as web:
        result = run_cli("inspect", "doc-1", url=f"ws://127.0.0.1:{web.port}/")
        assert result.returncode == 2
        assert web.connections == 1


def test_wss_to_a_server_without_tls_suggests_ws() -> None:
    """wss:// where the server speaks plain TCP: exit 2, "did you mean ws://?"."""
    with CountingHTTPServer() as web:
        result = run_cli("inspect", "doc-1", url=f"wss://127.0.0.1:{web.port}/")
    assert_one_line_usage_error(result, "does not speak TLS", "did you mean ws://?")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Tuple[SampleServer, Path]]:
    """A wss:// sample server whose certificate a private CA signed, and that CA's PEM file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    cafile = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    with run_sample_server(ssl_context=context) as server:
        yield server, cafile


def test_untrusted_certificate_says_pass_cafile(tls_server: Tuple[SampleServer, Path]) -> None:
    """A certificate the system does not trust: exit 2, "certificate not trusted", --cafile."""
    server, _ = tls_server
    result = run_cli("inspect", "doc-1", url=server.url)
    assert_one_line_usage_error(result, "certificate not trusted", "pass --cafile")


@pytest.mark.parametrize("how", ["option", "variable"])
def test_cafile_trusts_a_private_ca(tls_server: Tuple[SampleServer, Path], how: str) -> None:
    """``--cafile FILE`` (or INSPECTOR_CAFILE) trusts the CA that signed the server's cert."""
    server, cafile = tls_server
    if how == "option":
        result = run_cli("inspect", "doc-1", "--cafile", str(cafile), url=server.url)
    else:
        result = run_cli("inspect", "doc-1",
                         env=child_env(server.url, INSPECTOR_CAFILE=str(cafile)))
    assert (result.returncode, result.stderr) == (0, "")
    assert from_json(result.stdout, Inspection).document.id == "doc-1"


def test_unreadable_cafile_is_a_usage_error(sample_server: SampleServer, tmp_path: Path) -> None:
    """``--cafile`` naming no file: exit 2 naming it, before connecting."""
    missing = tmp_path / "no-such-ca.pem"
    result = run_cli("inspect", "doc-1", "--cafile", str(missing), url=sample_server.url)
    assert_one_line_usage_error(result, f"--cafile {missing}")
    assert sample_server.stats.handshakes == 0


@pytest.mark.parametrize(
    ("status", "text"),
    [(401, "HTTP 401 Unauthorized: a token is missing or wrong"),
     (403, "HTTP 403 Forbidden: the token may not read"),
     (404, "HTTP 404 Not Found")],
)
def test_refused_handshake_says_the_status_in_one_form(
    sample_server: SampleServer, status: int, text: str
) -> None:
    """A refused handshake names its status with the standard phrase, whatever the server says."""
    sample_server.faults.refuse_status = status
    result = run_cli("inspect", "doc-1", url=sample_server.url)
    assert_one_line_usage_error(result, text)


# -- numbers (items 7, 8, 10) --


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "1e10", "soon"])
@pytest.mark.parametrize("option", ["--timeout", "--request-timeout", "--connect-timeout"])
def test_bad_timeout_is_one_line_before_connecting(
    sample_server: SampleServer, option: str, value: str
) -> None:
    """0, negative, nan, inf, 1e10 or a word: exit 2, one line naming the option."""
    result = run_cli("inspect", "doc-1", f"{option}={value}", url=sample_server.url)
    assert_one_line_usage_error(result, f"{option} {value}")
    assert sample_server.stats.handshakes == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-in-flight", "0"), ("--max-in-flight", "2.5"), ("--retries", "-1"),
     ("--retries", "none"), ("--max-in-flight", "1e10")],
)
def test_bad_count_is_one_line_before_connecting(
    sample_server: SampleServer, option: str, value: str
) -> None:
    """A count that is not a whole number in range: exit 2, one line naming the option."""
    result = run_cli("inspect", "doc-1", f"{option}={value}", url=sample_server.url)
    assert_one_line_usage_error(result, f"{option} {value}")
    assert sample_server.stats.handshakes == 0


def test_bad_variable_is_named(sample_server: SampleServer) -> None:
    """A bad INSPECTOR_* value is reported naming the variable; an option wins over it."""
    env = child_env(sample_server.url, INSPECTOR_TIMEOUT="nan")
    result = run_cli("inspect", "doc-1", env=env)
    assert_one_line_usage_error(result, "INSPECTOR_TIMEOUT nan")
    result = run_cli("inspect", "doc-1", "--timeout", "5", env=env)
    assert result.returncode == 0, result.stderr


def test_timeout_none_means_no_limit(sample_server: SampleServer) -> None:
    """``--timeout none`` (any case) is accepted: no limit."""
    result = run_cli("inspect", "doc-1", "--timeout", "None", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")


def test_durations_are_printed_rounded(sample_server: SampleServer) -> None:
    """A document that timed out shows no duration like ``0.29999807199999395s``."""
    sample_server.faults.silent_ids = frozenset({"doc-2"})
    result = run_cli("inspect", "doc-2", "--timeout", "0.3", url=sample_server.url)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("document-inspector: doc-2: RequestTimeout: ")
    assert not re.search(r"\d\.\d{3,}", line), line  # "0.3 s" at most, never 0.29999807...


class SilentServer:
    """Accepts TCP connections and never answers: a handshake that hangs."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()


def test_silent_server_fails_within_connect_timeout() -> None:
    """A server that accepts TCP but never answers: exit 2 soon, naming --connect-timeout."""
    with SilentServer() as silent:
        started = time.monotonic()
        result = run_cli("inspect", "doc-1", "--connect-timeout", "0.2", "--timeout", "none",
                         url=f"ws://127.0.0.1:{silent.port}")
        elapsed = time.monotonic() - started
    assert_one_line_usage_error(result, "--connect-timeout 0.2 s per attempt, --timeout none")
    assert elapsed < 20_000 * MS  # five attempts of 0.2 s and their backoff, not 30 s each


# -- progress (item 5) --


@pytest.mark.parametrize("option", ["--no-progress", "--quiet", "-q"])
def test_progress_bar_can_be_turned_off(
    sample_server: SampleServer, tmp_path: Path, option: str
) -> None:
    """stderr a terminal, several documents, and --no-progress or --quiet: nothing on stderr."""
    shown, _ = run_on_terminal(
        ["inspect", "doc-1", "doc-2", "doc-3", "--format", "jsonl", option],
        sample_server.url, stdout_path=tmp_path / "out.jsonl",
    )
    assert shown == ""
    assert jsonl_ids((tmp_path / "out.jsonl").read_text()) == ["doc-1", "doc-2", "doc-3"]


def test_no_bar_when_results_go_to_the_same_terminal(sample_server: SampleServer) -> None:
    """stdout and stderr one terminal: the table is shown whole, with no bar through it."""
    args = ["inspect", "doc-1", "doc-6", "deck-1", "--format", "table"]
    shown, status = run_on_terminal(args, sample_server.url)
    assert status == 0
    expected = run_cli(*args, url=sample_server.url).stdout
    assert shown.replace("\r\n", "\n") == expected


def run_on_terminal(
    args: List[str], url: str, stdout_path: Optional[Path] = None
) -> Tuple[str, int]:
    """Run the command with stderr (and stdout, unless ``stdout_path``) on a pseudo-terminal.

    Returns:
        What the terminal showed, and the exit status.
    """
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    try:
        with contextlib.ExitStack() as stack:
            out: Union[int, IO[bytes]] = terminal
            if stdout_path is not None:
                out = stack.enter_context(open(stdout_path, "wb"))
            proc = subprocess.Popen(
                [*PROG, *args], env=child_env(url), stdin=subprocess.DEVNULL,
                stdout=out, stderr=terminal,
            )
        os.close(terminal)
        terminal = -1
        shown = read_terminal(controller, time.monotonic() + RUN_TIMEOUT)
        return shown, proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)


# -- output to a file (item 10) --


def test_output_file_holds_what_stdout_would(sample_server: SampleServer, tmp_path: Path) -> None:
    """``-o FILE``: the results in FILE, nothing on stdout, no temporary file left."""
    target = tmp_path / "documents.json"
    result = run_cli("inspect", "doc-1", "doc-2", "--format", "json", "-o", str(target),
                     url=sample_server.url)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    expected = run_cli("inspect", "doc-1", "doc-2", "--format", "json", url=sample_server.url)
    assert target.read_text() == expected.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["documents.json"]
    assert stat.S_IMODE(target.stat().st_mode) & 0o044  # not mkstemp's 0600: others may read


def test_interrupted_run_leaves_no_output_file(sample_server: SampleServer, tmp_path: Path) -> None:
    """Ctrl-C during ``-o FILE``: the earlier FILE untouched, no temporary file left."""
    target = tmp_path / "documents.jsonl"
    target.write_text("the previous run\n")
    sample_server.faults.silent_ids = frozenset({"doc-2"})
    proc = subprocess.Popen(
        [*PROG, "inspect", "doc-1", "doc-2", "--format", "jsonl", "-o", str(target)],
        env=child_env(sample_server.url),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # doc-1 is written to the temporary file beside the target; doc-2 holds the run up.
        wait_until(lambda: any(p.name.endswith(".partial") and p.stat().st_size
                               for p in tmp_path.iterdir()), RUN_TIMEOUT)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 130, stderr
    assert target.read_text() == "the previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["documents.jsonl"]


def test_lost_run_leaves_no_output_file(sample_server: SampleServer, tmp_path: Path) -> None:
    """A run cut short by a lost connection writes no FILE (exit 2, one line)."""
    target = tmp_path / "documents.jsonl"
    sample_server.faults.drop_after = 2
    sample_server.faults.refuse_status = 403
    result = run_cli("inspect", "doc-1", "doc-2", "-o", str(target), url=sample_server.url)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_output_into_a_missing_directory_is_a_usage_error(
    sample_server: SampleServer, tmp_path: Path
) -> None:
    """``-o`` into a directory that does not exist: exit 2 naming it, before connecting."""
    target = tmp_path / "nowhere" / "out.json"
    result = run_cli("inspect", "doc-1", "-o", str(target), url=sample_server.url)
    assert_one_line_usage_error(result, f"cannot write --output {target}")
    assert sample_server.stats.handshakes == 0


# -- list, --version (item 10) --


def test_list_prints_the_listed_ids_one_a_line(sample_server: SampleServer) -> None:
    """``list`` prints ListDocuments' ids, one a line, in its order."""
    with DocumentInspector(sample_server.url) as inspector:
        listed = inspector.list_documents()
    result = run_cli("list", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == listed


def test_version() -> None:
    """``--version`` prints the installed version."""
    result = run_cli("--version", env=child_env())
    assert result.returncode == 0
    version = importlib.metadata.version("document-inspector")
    assert result.stdout == f"document-inspector {version}\n"


# -- item 9 --


def test_sources_all_counts_only_documents_that_use_a_source(sample_server: SampleServer) -> None:
    """``sources --all``: the head line counts the documents that use a source, of all."""
    with DocumentInspector(sample_server.url) as inspector:
        listed = inspector.list_documents()
        using = [i.document.id for i in inspector.inspect_many(listed)
                 if any(w.data_sources for w in i.widgets)]
    assert 0 < len(using) < len(listed)
    result = run_cli("sources", "--all", "--format", "table", url=sample_server.url)
    assert result.returncode == 0, result.stderr
    head = result.stdout.splitlines()[0]
    assert f" used by {len(using)} of {len(listed)} documents: {using[0]}, " in head


def test_byte_order_mark_in_from_file_is_dropped(
    sample_server: SampleServer, tmp_path: Path
) -> None:
    """A UTF-8 BOM (Notepad's) at the start of --from-file is not part of the first id."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes("\ufeffdoc-2\r\ndoc-1\r\n".encode())
    result = run_cli("inspect", "--from-file", str(ids_file), url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert jsonl_ids(result.stdout) == ["doc-2", "doc-1"]
    result = run_cli("inspect", "--from-file", "-", url=sample_server.url,
                     stdin="\ufeffdoc-3\n")
    assert jsonl_ids(result.stdout) == ["doc-3"]


def test_generated_id_404_says_what_ids_exist(sample_server: SampleServer) -> None:
    """``gen-200x50-legacy`` is a 404 that explains the generated-id convention."""
    result = run_cli("inspect", "gen-200x50-legacy", url=sample_server.url)
    assert result.returncode == 1
    assert "gen-<C>x<W>[-legacy][-<tag>]" in result.stderr
    assert "-legacy only with W = 1" in result.stderr


@pytest.mark.parametrize("output_format", ["jsonl", "table"])
def test_demo_takes_format(output_format: str) -> None:
    """``demo --format`` prints the sample documents as asked."""
    result = run_cli("demo", "doc-1", "doc-2", "--format", output_format, "-q", env=child_env())
    assert (result.returncode, result.stderr) == (0, "")
    if output_format == "jsonl":
        assert jsonl_ids(result.stdout) == ["doc-1", "doc-2"]
    else:
        assert result.stdout.startswith("doc-1  Sales overview\n")


def test_serve_names_a_missing_certfile() -> None:
    """``serve --certfile nope.pem``: exit 2, one line naming the file."""
    result = run_cli("serve", "--port", "0", "--certfile", "nope.pem", env=child_env())
    assert_one_line_usage_error(result, "--certfile nope.pem")


def test_serve_on_a_port_in_use_exits_2_with_one_line() -> None:
    """``serve`` on a port taken: exit 2 and one line saying so, no errno."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env=child_env())
    assert_one_line_usage_error(result, f"127.0.0.1:{port}", "already in use")
    assert "Errno" not in result.stderr


# -- --help of every command works (the report shows them) --


@pytest.mark.parametrize("command", [[], ["inspect"], ["sources"], ["list"], ["demo"], ["serve"]])
def test_help(command: List[str]) -> None:
    """``--help`` of the program and of each command: exit 0, the usage on stdout."""
    result = run_cli(*command, "--help", env=child_env())
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: document-inspector {' '.join(command)}".rstrip())


def test_sigterm_leaves_no_output_file(sample_server: SampleServer, tmp_path: Path) -> None:
    """SIGTERM during ``-o FILE`` ends the run as Ctrl-C does: no file, no temporary file."""
    target = tmp_path / "documents.jsonl"
    sample_server.faults.silent_ids = frozenset({"doc-2"})
    proc = subprocess.Popen(
        [*PROG, "inspect", "doc-1", "doc-2", "--format", "jsonl", "-o", str(target)],
        env=child_env(sample_server.url),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: any(p.name.endswith(".partial") and p.stat().st_size
                               for p in tmp_path.iterdir()), RUN_TIMEOUT)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert list(tmp_path.iterdir()) == []


def test_wss_to_a_websocket_server_without_tls_suggests_ws(sample_server: SampleServer) -> None:
    """wss:// to the (plain) sample server, which hangs up on a ClientHello: the hint ws://."""
    result = run_cli("inspect", "doc-1", url=sample_server.url.replace("ws://", "wss://"))
    assert_one_line_usage_error(result, "the server closed the connection", "use ws://")
