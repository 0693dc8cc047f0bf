"""Tests of what a REPL user sees: short reprs and docstrings that help() shows."""

from __future__ import annotations

import pydoc

import pytest

import inspector
from inspector import (
    DataSource,
    Document,
    DocumentInspector,
    Inspection,
    Position,
    Widget,
    WidgetContainer,
)
from inspector.redaction import REDACTED
from inspector.server import SampleServer
from inspector.sources import build_report

MAX_REPR = 120  # a repr fits on one terminal line, or nearly


def sample_inspection() -> Inspection:
    """A document with one container of two widgets, long fields included."""
    source = DataSource(
        "database",
        connection="postgresql://report_user:s3cr3t@warehouse.internal:5432/sales",
        sql="SELECT region, SUM(amount) FROM orders WHERE "
        + " OR ".join(f"region = 'r{i}'" for i in range(50)) + " GROUP BY region",
        extra={"refresh": "nightly" * 50},
    )
    widgets = tuple(
        Widget(f"doc-1/c1/w{i}", "chart", container_id="doc-1/c1", title="Revenue by region",
               palette=("#1f77b4",) * 30, font_size=12, data_sources=(source,) * 5,
               extra={"notes": "x" * 1000})
        for i in (1, 2)
    )
    container = WidgetContainer("doc-1/c1", "grid", Position(1, 0, 0, 6, 4),
                                tuple(w.id for w in widgets))
    document = Document("doc-1", "biDashboard", name="Sales overview", owner="finance",
                        widget_container_ids=("doc-1/c1",), extra={"theme": "light" * 100})
    return Inspection(document, (container,), widgets)


def test_every_model_repr_is_short_and_names_the_object() -> None:
    """Each model's repr is one short line with its id (or, without one, what tells it apart)."""
    report = sample_inspection()
    container, widget = report.containers[0], report.widgets[0]
    assert repr(report) == (
        "Inspection(document='doc-1', type='biDashboard', containers=1, widgets=2)"
    )
    for obj, must_contain in [
        (report, "'doc-1'"),
        (report.document, "'doc-1'"),
        (container, "'doc-1/c1'"),
        (widget, "'doc-1/c1/w1'"),
        (widget.data_sources[0], "warehouse.internal"),
        (container.position, "page=1"),
    ]:
        text = repr(obj)
        assert len(text) <= MAX_REPR and "\n" not in text, text
        assert must_contain in text, text
    assert "s3cr3t" not in repr(widget.data_sources[0])
    assert REDACTED in repr(widget.data_sources[0])


def test_report_reprs_are_short() -> None:
    """The data-source report's objects have short reprs too."""
    report = build_report([sample_inspection()])
    source = report.sources[0]
    assert repr(report) == "SourcesReport(documents=1, sources=1)"
    assert repr(source) == (
        f"Source(kind='database', location='postgresql://report_user:{REDACTED}@"
        "warehouse.internal:5432/sales', statements=1, widgets=2)"
    )
    assert repr(source.statements[0]) == (
        "Statement('SELECT region, SUM(amount) FROM order...', tables=['orders'], widgets=2)"
    )


def test_inspector_repr_shows_url_and_state(sample_server: SampleServer) -> None:
    """A DocumentInspector shows where it connects and whether it is open, never a token."""
    di = DocumentInspector(sample_server.url)
    try:
        assert repr(di) == f"<DocumentInspector {sample_server.url} open>"
    finally:
        di.close()
    assert repr(di).endswith(" closed>")


@pytest.mark.parametrize(
    ("obj", "phrase"),
    [
        (DocumentInspector, "inspect_many"),
        (DocumentInspector.inspect_many, "in the order given"),
        (Inspection, "The whole inspection of one document"),
        (Widget, "data_sources"),
        (inspector.to_json, "JSON text"),
    ],
)
def test_help_shows_the_docstrings(obj: object, phrase: str) -> None:
    """help() (pydoc) renders a docstring that explains the object."""
    assert phrase in pydoc.render_doc(obj, renderer=pydoc.plaintext)
