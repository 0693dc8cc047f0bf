"""Tests of inspector.DocumentInspector against the sample server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

import pytest
from support import MS, expected_layout, layout_of, run_threads

from inspector import (
    ClientClosed,
    Document,
    DocumentInspector,
    Inspection,
    InspectorError,
    InvalidArgument,
    ProtocolError,
    RequestTimeout,
    ServerError,
    Widget,
    from_json,
    to_json,
)


def test_widgets_come_in_document_order_whatever_the_reply_order(sample_server: Any) -> None:
    """Containers in document order, widgets in container order, though replies are shuffled."""
    expected = expected_layout(sample_server.url, "gen-12x6")
    assert len(expected) == 72
    sample_server.faults.latency = 1 * MS
    sample_server.faults.jitter = 20 * MS
    with DocumentInspector(sample_server.url) as inspector:
        for _ in range(3):
            widgets = inspector.get_widgets("gen-12x6")
            assert layout_of(widgets) == expected
            assert all(isinstance(w, Widget) and w.type for w in widgets)


def test_catalog_dashboard_is_typed_and_complete(sample_server: Any) -> None:
    """doc-1 comes back as typed objects with its data sources, as docs/protocol.md shows them."""
    with DocumentInspector(sample_server.url) as inspector:
        report = inspector.inspect("doc-1")
    assert isinstance(report, Inspection) and isinstance(report.document, Document)
    assert report.document.name == "Sales overview"
    assert [c.id for c in report.containers] == ["doc-1/c1", "doc-1/c2"]
    first = report.widgets[0]
    assert (first.id, first.container_id, first.font_size) == ("doc-1/c1/w1", "doc-1/c1", 12)
    assert [s.kind for s in first.data_sources] == ["database", "spreadsheet"]
    assert first.data_sources[0].sql == "SELECT region, SUM(amount) FROM orders GROUP BY region"
    assert first.data_sources[1].range == "A1:D40"


def test_shared_widget_fetched_once_returned_once(sample_server: Any) -> None:
    """A widget listed by two containers is requested once and attributed to the first."""
    expected = expected_layout(sample_server.url, "doc-2")
    sample_server.faults.jitter = 20 * MS
    with DocumentInspector(sample_server.url) as inspector:
        before = inspector.connection.stats.requests
        report = inspector.inspect("doc-2")
        sent = inspector.connection.stats.requests - before
    ids = [w.id for w in report.widgets]
    assert ids.count("doc-2/c1/w1") == 1
    assert layout_of(list(report.widgets)) == expected
    assert sent == 1 + len(report.containers) + len(report.widgets)


def test_legacy_single_widget_id_containers(sample_server: Any) -> None:
    """Containers that send one widgetId are read like those that send widgetIds."""
    expected = expected_layout(sample_server.url, "doc-8")
    with DocumentInspector(sample_server.url) as inspector:
        assert layout_of(inspector.get_widgets("doc-8")) == expected
        widgets = inspector.get_widgets("gen-30x1-legacy")
    assert [w.id for w in widgets] == [w for w, _ in expected_layout(sample_server.url,
                                                                     "gen-30x1-legacy")]
    assert len(widgets) == 30


@pytest.mark.parametrize("document_id", ["ds-1", "folder-1", "doc-11"])
def test_document_without_widgets(sample_server: Any, document_id: str) -> None:
    """A dataset or folder gives no widgets; inspect() still returns its Document."""
    with DocumentInspector(sample_server.url) as inspector:
        assert inspector.get_widgets(document_id) == []
        report = inspector.inspect(document_id)
    assert report.document.id == document_id and report.widgets == ()


def test_unknown_document_is_a_404(sample_server: Any) -> None:
    """An unknown document raises ServerError 404 naming it."""
    with DocumentInspector(sample_server.url) as inspector:
        with pytest.raises(ServerError) as caught:
            inspector.get_widgets("no-such-doc")
        assert caught.value.code == 404 and "no-such-doc" in str(caught.value)


def test_failing_widget_names_itself_and_inspector_stays_usable(sample_server: Any) -> None:
    """A widget whose properties fail raises ServerError naming it; other calls carry on."""
    sample_server.faults.error_for = {"doc-1/c1/w2": 500}
    with DocumentInspector(sample_server.url) as inspector:
        with pytest.raises(ServerError) as caught:
            inspector.inspect("doc-1")
        assert caught.value.code == 500
        assert "doc-1/c1/w2" in str(caught.value)
        assert caught.value.method == "GetWidgetProperties"
        assert len(inspector.get_widgets("doc-3")) > 0


def test_timeout_bounds_the_whole_call(sample_server: Any) -> None:
    """A widget that never answers makes the call fail at its timeout, not request_timeout."""
    sample_server.faults.silent_ids = frozenset({"doc-1/c2/w1"})
    with DocumentInspector(sample_server.url, request_timeout=60_000 * MS) as inspector:
        started = time.monotonic()
        with pytest.raises(RequestTimeout, match="doc-1"):
            inspector.inspect("doc-1", timeout=500 * MS)
        assert time.monotonic() - started < 5000 * MS
        assert inspector.get_widgets("doc-3")


def test_inspect_many_yields_in_given_order(sample_server: Any) -> None:
    """inspect_many yields in the order given, however replies interleave."""
    sample_server.faults.jitter = 20 * MS
    ids = ["doc-3", "gen-3x2-a", "ds-1", "doc-1", "deck-1", "gen-1x1-b"]
    with DocumentInspector(sample_server.url) as inspector:
        reports = list(inspector.inspect_many(ids))
        singles = [inspector.inspect(i) for i in ids]
    assert [r.document.id for r in reports if isinstance(r, Inspection)] == ids
    assert reports == singles


def test_inspect_many_works_on_several_documents_at_once(sample_server: Any) -> None:
    """Twenty documents at 0.1 s latency cost far less than 20 x 3 round trips."""
    sample_server.faults.latency = 100 * MS
    ids = [f"gen-2x2-p{i}" for i in range(20)]
    with DocumentInspector(sample_server.url, max_documents_in_flight=8) as inspector:
        started = time.monotonic()
        reports = list(inspector.inspect_many(ids))
        elapsed = time.monotonic() - started
    assert [r.document.id for r in reports if isinstance(r, Inspection)] == ids
    sequential = len(ids) * 3 * 0.1
    assert elapsed < sequential / 2, f"{elapsed:.2f}s: no better than one at a time"


def test_inspect_many_return_exceptions_keeps_going(sample_server: Any) -> None:
    """With return_exceptions a failing document yields its error; the others still come."""
    with DocumentInspector(sample_server.url) as inspector:
        results = list(inspector.inspect_many(["doc-1", "missing", "doc-3"],
                                              return_exceptions=True))
        assert isinstance(results[1], ServerError) and results[1].code == 404
        assert [r.document.id for r in results if isinstance(r, Inspection)] == ["doc-1", "doc-3"]
        with pytest.raises(ServerError):
            list(inspector.inspect_many(["doc-1", "missing", "doc-3"]))


@pytest.mark.timeout(120)
def test_16_threads_share_one_inspector(sample_server: Any) -> None:
    """Sixteen threads inspecting at once through one inspector all get correct results."""
    sample_server.faults.jitter = 5 * MS
    ids = ["doc-1", "doc-2", "doc-8", "deck-1", "ds-1", "gen-5x4"]
    expected: Dict[str, List[Tuple[str, str]]] = {
        i: expected_layout(sample_server.url, i) for i in ids
    }
    errors: List[str] = []
    with DocumentInspector(sample_server.url) as inspector:

        def worker(n: int) -> None:
            for round_no in range(5):
                document_id = ids[(n + round_no) % len(ids)]
                try:
                    got = layout_of(inspector.get_widgets(document_id))
                except InspectorError as error:
                    errors.append(f"{n}: {error}")
                    continue
                if got != expected[document_id]:
                    errors.append(f"{n}: {document_id} differs")

        run_threads(worker, 16)
    assert errors == []


def test_large_document_in_order(sample_server: Any) -> None:
    """A 100 x 50 document comes back whole and in order."""
    with DocumentInspector(sample_server.url) as inspector:
        widgets = inspector.get_widgets("gen-100x50")
    assert len(widgets) == 5000
    assert layout_of(widgets) == expected_layout(sample_server.url, "gen-100x50")


def test_closed_inspector_refuses_calls(sample_server: Any) -> None:
    """After close() (idempotent) calls raise ClientClosed with a plain message."""
    inspector = DocumentInspector(sample_server.url)
    inspector.close()
    inspector.close()
    with pytest.raises(ClientClosed, match="closed"):
        inspector.get_widgets("doc-1")
    assert "closed" in repr(inspector)


def test_bad_arguments_are_refused_naming_them(sample_server: Any) -> None:
    """A bad document id or limit is an InvalidArgument (an InspectorError and a ValueError)."""
    with DocumentInspector(sample_server.url) as inspector:
        with pytest.raises(InvalidArgument, match="non-empty string"):
            inspector.get_widgets("")
        assert inspector.connection.stats.requests == 0
    for option in ("max_in_flight", "max_documents_in_flight"):
        with pytest.raises(ValueError, match=option) as caught:
            DocumentInspector(sample_server.url, **{option: 0})
        assert isinstance(caught.value, InspectorError)


def test_list_documents(sample_server: Any) -> None:
    """list_documents() returns the catalog's ids."""
    with DocumentInspector(sample_server.url) as inspector:
        ids = inspector.list_documents()
    assert "doc-1" in ids and len(ids) >= 20


# --- the command line -------------------------------------------------------------------


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m inspector ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_demo_prints_a_sample_inspection() -> None:
    """``demo`` starts the sample server in-process and prints doc-1's Inspection as JSON."""
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["document"]["id"] == "doc-1"
    assert report["widgets"][0]["dataSources"][0]["kind"] == "database"


def test_inspect_command_prints_one_inspection(sample_server: Any) -> None:
    """``inspect DOC_ID --url URL`` prints that document's Inspection as JSON."""
    result = run_cli("inspect", "doc-3", "--url", sample_server.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["document"]["id"] == "doc-3"


@pytest.mark.parametrize(
    "object_id, broken, method, field",
    [
        ("doc-1", {"id": "doc-1", "type": "biDashboard", "widgetContainerIds": "doc-1/c1"},
         "GetDocument", "widgetContainerIds"),
        ("doc-1/c1", {"id": "doc-1/c1", "widgetIds": [["doc-1/c1/w1"]]},
         "GetWidgetContainer", "widgetIds[0]"),
        ("doc-1/c1/w1", {"id": "doc-1/c1/w1", "type": "chart", "dataSources": [{"sql": "x"}]},
         "GetWidgetProperties", "dataSources[0].kind"),
        ("doc-1/c2", ["not", "an", "object"], "GetWidgetContainer", None),
    ],
)
def test_reply_of_the_wrong_shape_names_method_object_and_field(
    sample_server: Any, object_id: str, broken: Any, method: str, field: Any
) -> None:
    """A reply of the wrong shape raises ProtocolError naming method, object and wire field."""
    sample_server.faults.result_for = {object_id: broken}
    with DocumentInspector(sample_server.url) as inspector:
        with pytest.raises(ProtocolError) as caught:
            inspector.inspect("doc-1")
        message = str(caught.value)
        assert method in message
        assert field is None or f"'{field}'" in message
        if isinstance(broken, dict):
            assert object_id in message
        sample_server.faults.result_for = {}
        assert len(inspector.get_widgets("doc-1")) == 3


def test_reply_describing_another_object_is_refused(sample_server: Any) -> None:
    """A reply whose id is not the one asked for is a ProtocolError, not silently accepted."""
    sample_server.faults.result_for = {"doc-1/c1/w2": {"id": "doc-1/c1/w1", "type": "chart"}}
    with DocumentInspector(sample_server.url) as inspector:
        with pytest.raises(ProtocolError, match="describes"):
            inspector.get_widgets("doc-1")


def test_fields_the_model_does_not_name_are_kept(sample_server: Any) -> None:
    """Extra wire fields (updatedAt, theme, ...) survive into the models and back to JSON."""
    with DocumentInspector(sample_server.url) as inspector:
        report = inspector.inspect("doc-2")
    assert report.document.extra.get("updatedAt") == "2024-09-30T17:04:11Z"
    wire = json.loads(to_json(report))
    assert wire["document"]["theme"] == "light"
    assert from_json(to_json(report), Inspection) == report


def test_script_that_never_closes_the_inspector_still_exits(sample_server: Any) -> None:
    """A script that forgets close() on a DocumentInspector exits on its own, cleanly."""
    child = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "from inspector import DocumentInspector\n"
         "di = DocumentInspector(sys.argv[1])\n"
         "print(len(di.get_widgets('gen-20x20')))\n",
         sample_server.url],
        capture_output=True, text=True, timeout=30_000 * MS,
    )
    assert (child.returncode, child.stdout.strip()) == (0, "400")
    assert "Traceback" not in child.stderr
