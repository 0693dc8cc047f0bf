"""What crosses a process boundary (a Dask worker's results, a task's errors) pickles whole."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from typing import Any, Dict, List

import attrs
import pytest

import inspector
from inspector import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    DataSource,
    Document,
    Inspection,
    InspectorError,
    InvalidArgument,
    Position,
    ProtocolError,
    RequestTimeout,
    ServerError,
    Widget,
    WidgetContainer,
)
from inspector.contrib.dask import BatchFailed, InspectorSettings, Recorded, WriteTo
from inspector.inventory.planner import DeletionPlan, StaleListing
from inspector.inventory.scan import Failure
from inspector.protocol import CLOSE_MESSAGE_TOO_BIG, BadReply, FrameViolation
from inspector.sources import Source, SourcesReport, Statement, build_report

SOURCE = DataSource(
    kind="database",
    connection="postgresql://report:s3cr3t@warehouse:5432/sales",
    sql="SELECT email FROM customers",
    extra={"refreshMinutes": 15, "tags": ["pii", {"nested": None}]},
)
WIDGET = Widget(
    id="w-1", type="chart", container_id="c-1", title="Revenue", palette=("#1f77b4", "#ff7f0e"),
    font_size=12.5, data_sources=(SOURCE, DataSource(kind="spreadsheet", url="https://x/y",
                                                     range="A1:D40")),
    extra={"zIndex": 3},
)
CONTAINER = WidgetContainer(
    id="c-1", layout="grid", position=Position(page=1, x=0.5, y=1.0, width=3.0, height=2.0,
                                               extra={"rotation": 90}),
    widget_ids=("w-1",), extra={"background": "#fff"},
)
DOCUMENT = Document(id="doc-1", type="biDashboard", name="Sales", owner="finance",
                    widget_container_ids=("c-1",), extra={"createdAt": "2024-01-01"})
INSPECTION = Inspection(document=DOCUMENT, containers=(CONTAINER,), widgets=(WIDGET,))


def _models() -> List[Any]:
    statement = Statement(sql="SELECT 1", tables=("t",), writes=(), error=None, widgets=("w",))
    return [
        SOURCE, WIDGET, CONTAINER, CONTAINER.position, DOCUMENT, INSPECTION,
        Inspection(document=Document(id="ds-1", type="dataset")),
        statement, Source(kind="database", connection="db", statements=(statement,)),
        SourcesReport(documents=("doc-1",), sources=()),
        build_report([INSPECTION]),
        InspectorSettings(("ws://a:1", "ws://b:2"), token_env="DOCS_TOKEN", connection_cap=3),
        Failure("doc-9", "ServerError: GetDocument 'doc-9': error 404: no such document"),
        DeletionPlan(listed_before=10, missing=5),
        WriteTo(run_id=3, database="postgresql+psycopg://inventory:***@db/inventory"),
        Recorded("failed", "ServerError: no such document"), Recorded("new"),
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_model_pickles_to_an_equal_value(model: Any) -> None:
    """A model comes back from pickle equal, of the same type, with the same extras."""
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(model, protocol=protocol))
        assert type(again) is type(model)
        assert again == model
        assert repr(again) == repr(model)
        if hasattr(model, "extra"):
            assert again.extra == model.extra


def test_every_public_model_is_covered() -> None:
    """Every attrs class that models, sources or the Dask settings export is tested above."""
    covered = {type(m) for m in _models()}
    modules = ["inspector.models", "inspector.sources", "inspector.contrib.dask.settings",
               "inspector.contrib.dask.writing",
               "inspector.inventory.scan", "inspector.inventory.planner"]
    exported = {
        value
        for name in modules
        for value in vars(importlib.import_module(name)).values()
        if inspect.isclass(value) and attrs.has(value) and value.__module__.startswith(name)
    }
    assert exported - covered == set()


# One example per error class, with every attribute set; classes that take a message alone
# are made by _example() if they are not named here.
_EXAMPLES: Dict[type, BaseException] = {
    ConnectionFailed: ConnectionFailed("handshake refused: 429", 429),
    ServerError: ServerError(404, "no such document", {"hint": ["x"]}, "GetDocument",
                             {"id": "doc-9"}),
    FrameViolation: FrameViolation("message too big", CLOSE_MESSAGE_TOO_BIG),
    BadReply: BadReply(7, "the error has no integer code"),
    StaleListing: StaleListing(DeletionPlan(listed_before=10, missing=5), 0.2),
}
_EXAMPLES[StaleListing].run_id = 7  # type: ignore[attr-defined]


def _error_classes() -> List[type]:
    """Every public exception class defined anywhere in the package, found by importing it.

    Private ones (``_WrongShape``, the sample server's ``_RequestError``) never leave the
    module that raises them.
    """
    found = set()
    for module_info in pkgutil.walk_packages(inspector.__path__, "inspector."):
        if module_info.name == "inspector.__main__" or ".migrations" in module_info.name:
            continue  # run when imported: the command line, alembic's migration scripts
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            # type(value), not isinstance(): Django's lazy settings object raises on access.
            if (issubclass(type(value), type) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__ and not name.startswith("_")):
                found.add(value)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


def _example(cls: type) -> BaseException:
    example = _EXAMPLES.get(cls)
    return example if example is not None else cls(f"{cls.__name__}: something went wrong")


def test_error_classes_are_found() -> None:
    """The search finds the package's errors, wherever they are defined."""
    found = set(_error_classes())
    assert {InspectorError, ConnectionFailed, ConnectionLost, RequestTimeout, ServerError,
            ProtocolError, ClientClosed, InvalidArgument, FrameViolation, BatchFailed} <= found


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_error_pickles_to_an_equal_value(cls: type) -> None:
    """An error comes back from pickle with its type, message and every attribute."""
    error = _example(cls)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(error, protocol=protocol))
        assert type(again) is cls
        assert str(again) == str(error)
        assert again.args == error.args
        assert vars(again) == vars(error)


def test_error_attributes_survive_pickling() -> None:
    """The attributes a caller branches on are the ones it had."""
    failed = pickle.loads(pickle.dumps(ConnectionFailed("refused", 401)))
    assert (failed.status, failed.final) == (401, True)
    server = pickle.loads(pickle.dumps(_EXAMPLES[ServerError]))
    assert (server.code, server.message, server.data, server.method, server.params) == (
        404, "no such document", {"hint": ["x"]}, "GetDocument", {"id": "doc-9"})
    assert not server.retryable
    assert pickle.loads(pickle.dumps(_EXAMPLES[FrameViolation])).close_code == 1009
    stale = pickle.loads(pickle.dumps(_EXAMPLES[StaleListing]))
    assert (stale.plan, stale.threshold, stale.run_id) == (DeletionPlan(10, 5), 0.2, 7)


def test_an_error_pickles_inside_a_batch_outcome() -> None:
    """A batch's outcomes, inspections and errors mixed, come back as they went."""
    outcomes = [("doc-1", INSPECTION), ("doc-9", _EXAMPLES[ServerError]),
                ("doc-3", RequestTimeout("doc-3: no reply in 1.0 s"))]
    again = pickle.loads(pickle.dumps(outcomes))
    assert again[0] == outcomes[0]
    assert [(i, type(e), str(e)) for i, e in again[1:]] == [
        (i, type(e), str(e)) for i, e in outcomes[1:]]


@pytest.mark.parametrize("model", [SOURCE, WIDGET, CONTAINER, CONTAINER.position, DOCUMENT,
                                   INSPECTION, DataSource(kind="database")],
                         ids=lambda m: type(m).__name__)
def test_a_model_pickles_as_its_field_values(model: Any) -> None:
    """A model pickles as its class and its values in field order, not as attrs' state dict
    of attribute names: a Dask worker pickles tens of thousands a second, and the client
    loads them (each name in the pickle would mean a dict built and walked per object)."""
    # Each name as the pickle would hold it: a short string (opcode SHORT_BINUNICODE).
    names = [b"\x8c" + bytes([len(field.name)]) + field.name.encode()
             for field in attrs.fields(type(model)) if field.name not in ("id", "type", "kind")]
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    assert [name for name in names if name in data] == []
    again = pickle.loads(data)
    assert again == model and getattr(again, "extra", None) == getattr(model, "extra", None)


def test_models_copy_and_deepcopy_through_the_same_form() -> None:
    """copy and deepcopy, which use the same reduction, give equal models with their extras."""
    import copy

    assert copy.copy(INSPECTION) == INSPECTION
    deep = copy.deepcopy(WIDGET)
    assert deep == WIDGET and deep.extra == WIDGET.extra and deep.extra is not WIDGET.extra
