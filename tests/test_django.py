"""Tests of the Django app: its settings and the inspect_documents command, via call_command."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from support import wait_until

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.test import override_settings  # noqa: E402

from inspector import DocumentInspector, Inspection, from_json  # noqa: E402
from inspector.redaction import REDACTED  # noqa: E402
from inspector.server import SampleServer, run_sample_server  # noqa: E402

# Settings can be configured once per process; each test sets DOCUMENT_INSPECTOR itself.
if not settings.configured:
    settings.configure(INSTALLED_APPS=["inspector.contrib.django"], DOCUMENT_INSPECTOR={})
    django.setup()

TOKEN = "django-tok-5e6f7a"


def inspect_documents(*args: str, **options: Any) -> Tuple[str, str]:
    """Run the command; return its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("inspect_documents", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def configured(sample_server: SampleServer) -> Iterator[SampleServer]:
    """The sample server, named by DOCUMENT_INSPECTOR for the test."""
    with override_settings(DOCUMENT_INSPECTOR={"URL": sample_server.url, "TIMEOUT": 30.0}):
        yield sample_server


def jsonl_ids(stdout: str) -> List[str]:
    """The document id of each JSON line."""
    return [from_json(line, Inspection).document.id for line in stdout.splitlines()]


def test_app_is_installed() -> None:
    """The app loads under its own label."""
    from django.apps import apps

    config = apps.get_app_config("document_inspector")
    assert config.name == "inspector.contrib.django"


def test_one_document_prints_json(configured: SampleServer) -> None:
    """One DOC_ID: the Inspection object, as the library returns it."""
    out, err = inspect_documents("doc-1")
    assert err == ""
    with DocumentInspector(configured.url) as inspector:
        assert from_json(out, Inspection) == inspector.inspect("doc-1")


def test_one_connection_per_run_closed_at_the_end(configured: SampleServer) -> None:
    """Several documents share one connection, and the run leaves no thread behind it."""
    before = set(threading.enumerate())
    out, _ = inspect_documents("doc-1", "doc-2", "deck-1", format="jsonl")
    assert jsonl_ids(out) == ["doc-1", "doc-2", "deck-1"]
    assert configured.stats.connections_opened == 1
    assert [t.name for t in set(threading.enumerate()) - before] == []


def test_all_and_from_file(configured: SampleServer, tmp_path: Path) -> None:
    """``--from-file`` ids come after the named ones; ``--all`` adds every listed document."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("doc-3\n# a comment\ndoc-1\n", encoding="utf-8")
    out, _ = inspect_documents("deck-2", from_file=str(ids_file))
    assert jsonl_ids(out) == ["deck-2", "doc-3", "doc-1"]
    with DocumentInspector(configured.url) as inspector:
        listed = inspector.list_documents()
    out, _ = inspect_documents(all=True)
    assert jsonl_ids(out) == listed


def test_table_format(configured: SampleServer) -> None:
    """``--format table`` writes the people's view to the command's stdout."""
    out, _ = inspect_documents("doc-1", format="table")
    lines = out.splitlines()
    assert lines[0] == "doc-1  Sales overview"
    assert "table            1  doc-1/c1/w2" in lines


@pytest.mark.parametrize("output_format", ["json", "table"])
def test_sources_report(configured: SampleServer, output_format: str) -> None:
    """``--sources``: the data-source report, the password redacted."""
    out, _ = inspect_documents("doc-1", "doc-6", sources=True, format=output_format)
    assert "s3cr3t" not in out
    connection = f"postgresql://report_user:{REDACTED}@warehouse.internal:5432/sales"
    if output_format == "json":
        report = json.loads(out)
        assert report["documents"] == ["doc-1", "doc-6"]
        assert connection in [s["connection"] for s in report["sources"]]
    else:
        assert f"database  {connection}" in out.splitlines()


def test_sources_report_is_not_jsonl(configured: SampleServer) -> None:
    """``--sources --format jsonl`` is a usage error (return code 2)."""
    with pytest.raises(CommandError) as caught:
        inspect_documents("doc-1", sources=True, format="jsonl")
    assert caught.value.returncode == 2


def test_failures_are_reported_and_the_others_printed(configured: SampleServer) -> None:
    """A missing document: reported on stderr, the others printed, then CommandError code 1."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("inspect_documents", "doc-1", "no-such-doc", "doc-2", format="jsonl",
                     stdout=out, stderr=err)
    assert caught.value.returncode == 1
    assert "1 of 3 documents failed: no-such-doc" in str(caught.value)
    assert jsonl_ids(out.getvalue()) == ["doc-1", "doc-2"]
    (line,) = err.getvalue().splitlines()
    assert line.startswith("no-such-doc: ServerError: ") and "404" in line


def test_refused_connection_is_command_error_2() -> None:
    """No server: CommandError with return code 2 naming the failure."""
    with run_sample_server() as server:
        url = server.url
    with override_settings(DOCUMENT_INSPECTOR={"URL": url}), pytest.raises(CommandError) as caught:
        inspect_documents("doc-1")
    assert caught.value.returncode == 2
    assert "ConnectionFailed" in str(caught.value)


def test_token_from_settings_is_sent_and_never_printed() -> None:
    """TOKEN is sent as a bearer token; it appears in no output."""
    with run_sample_server(tokens={TOKEN: True}) as server, override_settings(
        DOCUMENT_INSPECTOR={"URL": server.url, "TOKEN": TOKEN}
    ):
        out, err = inspect_documents("doc-1")
        assert server.stats.handshake_headers[-1]["authorization"] == f"Bearer {TOKEN}"
    assert from_json(out, Inspection).document.id == "doc-1"
    assert TOKEN not in out + err


def test_no_documents_is_a_usage_error(configured: SampleServer) -> None:
    """Neither ids nor --all nor --from-file: CommandError with return code 2."""
    with pytest.raises(CommandError) as caught:
        inspect_documents()
    assert caught.value.returncode == 2
    assert configured.stats.handshakes == 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({}, "DOCUMENT_INSPECTOR['URL'] is missing"),
        ({"TOKEN": "x"}, "DOCUMENT_INSPECTOR['URL'] is missing"),
        ({"URL": "ws://h", "TIMOUT": 3}, "unknown keys ['TIMOUT']"),
        (["ws://h"], "must be a dict"),
    ],
)
def test_bad_settings_are_improperly_configured(setting: Any, message: str) -> None:
    """A missing URL, a misspelt key or a wrong shape: ImproperlyConfigured, saying which."""
    with override_settings(DOCUMENT_INSPECTOR=setting), pytest.raises(
        ImproperlyConfigured, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        inspect_documents("doc-1")


def test_missing_setting_is_improperly_configured() -> None:
    """No DOCUMENT_INSPECTOR at all: ImproperlyConfigured with an example."""
    with override_settings(), pytest.raises(ImproperlyConfigured, match="is not set"):
        del settings.DOCUMENT_INSPECTOR
        inspect_documents("doc-1")


def test_open_inspector_uses_the_settings(sample_server: SampleServer) -> None:
    """open_inspector() builds a DocumentInspector from the setting, with overrides."""
    from inspector.contrib.django.settings import inspector_options, open_inspector

    setting: Dict[str, Any] = {"URL": sample_server.url, "TIMEOUT": 7.0, "RETRIES": 2}
    with override_settings(DOCUMENT_INSPECTOR=setting):
        assert inspector_options() == {"url": sample_server.url, "timeout": 7.0, "retries": 2}
        with open_inspector(timeout=3.0) as inspector:
            assert inspector.timeout == 3.0
            assert inspector.inspect("doc-1").document.id == "doc-1"


@pytest.mark.parametrize(
    ("setting", "phrases"),
    [
        ({"URL": "ws://h", "TIMOUT": 3}, ["unknown keys ['TIMOUT']", "did you mean TIMEOUT?"]),
        ({"TOKEN": "x"}, ["DOCUMENT_INSPECTOR['URL'] is missing"]),
        ("ws://h", ["must be a dict"]),
    ],
)
def test_system_check_reports_a_bad_setting(setting: Any, phrases: List[str]) -> None:
    """``manage.py check`` fails on a misspelt key, a missing URL or a wrong shape, saying which."""
    from django.core.management.base import SystemCheckError

    with override_settings(DOCUMENT_INSPECTOR=setting), pytest.raises(SystemCheckError) as caught:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert "document_inspector.E001" in str(caught.value)
    for phrase in phrases:
        assert phrase in str(caught.value)


def test_system_check_passes_a_good_setting() -> None:
    """A setting with a URL and known keys passes ``manage.py check``."""
    out = io.StringIO()
    with override_settings(DOCUMENT_INSPECTOR={"URL": "wss://h.example.com/api", "TIMEOUT": 5}):
        call_command("check", stdout=out, stderr=io.StringIO())
    assert "no issues" in out.getvalue()


def test_lost_connection_is_one_command_error(configured: SampleServer) -> None:
    """Lost for good mid-run: one line on stderr, then CommandError code 2 saying the same."""
    configured.faults.silent_ids = frozenset({"doc-1"})  # holds the run until the drop
    out, err = io.StringIO(), io.StringIO()
    caught: List[BaseException] = []

    def run() -> None:
        try:
            call_command("inspect_documents", "doc-1", "doc-2", "doc-3", format="jsonl",
                         stdout=out, stderr=err)
        except BaseException as exc:  # noqa: BLE001  (examined below)
            caught.append(exc)

    with override_settings(DOCUMENT_INSPECTOR={"URL": configured.url}):
        thread = threading.Thread(target=run)
        thread.start()
        try:
            wait_until(lambda: configured.stats.requests_silenced >= 1)
            configured.faults.refuse_status = 403  # no new connection
            assert configured.drop_connections() == 1
        finally:
            thread.join()
    (error,) = caught
    assert isinstance(error, CommandError) and error.returncode == 2
    (line,) = err.getvalue().splitlines()
    assert line.startswith("connection lost: ") and line.endswith("; 3 documents not inspected")
    assert str(error) == line
    assert out.getvalue() == ""


@pytest.mark.parametrize("value", ["0", "nan", "inf", "-1"])
def test_bad_timeout_is_a_usage_error(configured: SampleServer, value: str) -> None:
    """``--timeout`` out of range: CommandError code 2 naming it, before connecting."""
    with pytest.raises(CommandError) as caught:
        inspect_documents("doc-1", timeout=value)
    assert caught.value.returncode == 2
    assert f"--timeout {value}" in str(caught.value)
    assert configured.stats.handshakes == 0
