"""Tests for inspector.serialization: wire JSON (camelCase) <-> the attrs models."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import cattrs
import pytest

import inspector
from inspector import serialization
from inspector.exceptions import InvalidArgument, ProtocolError
from inspector.models import DataSource, Document, Inspection, Position, Widget, WidgetContainer
from inspector.serialization import from_json, from_wire, to_json, to_wire

# Wire objects in canonical form (no null for a named field, every sequence present), as in
# docs/protocol.md, each with one field this client does not know.
DOCUMENT_WIRE: Dict[str, Any] = {
    "id": "doc-1",
    "type": "biDashboard",
    "name": "Sales overview",
    "owner": "finance",
    "widgetContainerIds": ["doc-1/c1", "doc-1/c2"],
    "createdAt": "2024-05-01T10:00:00Z",
}
POSITION_WIRE: Dict[str, Any] = {
    "page": 1,
    "x": 0,
    "y": 0.5,
    "width": 6,
    "height": 4,
    "zIndex": 3,
}
CONTAINER_WIRE: Dict[str, Any] = {
    "id": "doc-1/c1",
    "layout": "grid",
    "position": POSITION_WIRE,
    "widgetIds": ["doc-1/c1/w1", "doc-1/c1/w2"],
    "background": {"colour": "#fff"},
}
DATABASE_WIRE: Dict[str, Any] = {
    "kind": "database",
    "connection": "postgresql://warehouse.internal:5432/sales",
    "sql": "SELECT region, SUM(amount) FROM orders GROUP BY region",
    "timeoutSeconds": 30,
}
SPREADSHEET_WIRE: Dict[str, Any] = {
    "kind": "spreadsheet",
    "url": "https://sheets.example.com/d/8f2a",
    "range": "A1:D40",
}
WIDGET_WIRE: Dict[str, Any] = {
    "id": "doc-1/c1/w1",
    "type": "chart",
    "containerId": "doc-1/c1",
    "title": "Revenue by region",
    "palette": ["#1f77b4", "#ff7f0e"],
    "fontSize": 12,
    "dataSources": [DATABASE_WIRE, SPREADSHEET_WIRE],
    "refresh": {"everySeconds": 300, "onOpen": True},
}
LABEL_WIRE: Dict[str, Any] = {
    "id": "doc-1/c1/w2",
    "type": "label",
    "palette": [],
    "dataSources": [],
}
INSPECTION_WIRE: Dict[str, Any] = {
    "document": DOCUMENT_WIRE,
    "containers": [CONTAINER_WIRE],
    "widgets": [WIDGET_WIRE, LABEL_WIRE],
}

CANONICAL: List[Tuple[type, Dict[str, Any]]] = [
    (Document, DOCUMENT_WIRE),
    (Position, POSITION_WIRE),
    (WidgetContainer, CONTAINER_WIRE),
    (DataSource, DATABASE_WIRE),
    (DataSource, SPREADSHEET_WIRE),
    (Widget, WIDGET_WIRE),
    (Widget, LABEL_WIRE),
    (Inspection, INSPECTION_WIRE),
]


def _ids(case: Tuple[type, Dict[str, Any]]) -> str:
    return f"{case[0].__name__}-{case[1].get('id', case[1].get('kind', ''))}"


def _expected_widget() -> Widget:
    return Widget(
        id="doc-1/c1/w1",
        type="chart",
        container_id="doc-1/c1",
        title="Revenue by region",
        palette=("#1f77b4", "#ff7f0e"),
        font_size=12,
        data_sources=(
            DataSource(
                kind="database",
                connection="postgresql://warehouse.internal:5432/sales",
                sql="SELECT region, SUM(amount) FROM orders GROUP BY region",
                extra={"timeoutSeconds": 30},
            ),
            DataSource(kind="spreadsheet", url="https://sheets.example.com/d/8f2a", range="A1:D40"),
        ),
        extra={"refresh": {"everySeconds": 300, "onOpen": True}},
    )


# camelCase


def test_document_camel_case_both_ways() -> None:
    """A Document's snake_case attributes come from and go to camelCase wire keys."""
    document = from_wire(DOCUMENT_WIRE, Document)
    assert document == Document(
        id="doc-1",
        type="biDashboard",
        name="Sales overview",
        owner="finance",
        widget_container_ids=("doc-1/c1", "doc-1/c2"),
        extra={"createdAt": "2024-05-01T10:00:00Z"},
    )
    assert to_wire(document) == DOCUMENT_WIRE


def test_container_and_position_camel_case_both_ways() -> None:
    """A WidgetContainer and its Position map widgetIds and every position key."""
    container = from_wire(CONTAINER_WIRE, WidgetContainer)
    assert container == WidgetContainer(
        id="doc-1/c1",
        layout="grid",
        position=Position(page=1, x=0, y=0.5, width=6, height=4, extra={"zIndex": 3}),
        widget_ids=("doc-1/c1/w1", "doc-1/c1/w2"),
        extra={"background": {"colour": "#fff"}},
    )
    assert to_wire(container) == CONTAINER_WIRE


def test_widget_and_data_sources_camel_case_both_ways() -> None:
    """A Widget maps containerId, fontSize and dataSources, and its DataSources their keys."""
    widget = from_wire(WIDGET_WIRE, Widget)
    assert widget == _expected_widget()
    assert to_wire(widget) == WIDGET_WIRE


def test_inspection_camel_case_both_ways() -> None:
    """An Inspection holds camelCase objects at every level."""
    inspection = from_wire(INSPECTION_WIRE, Inspection)
    assert inspection.document.widget_container_ids == ("doc-1/c1", "doc-1/c2")
    assert inspection.widgets[0] == _expected_widget()
    assert to_wire(inspection) == INSPECTION_WIRE


def test_to_wire_keeps_attribute_order() -> None:
    """Named fields are written in the class's order, the extras after them."""
    assert list(to_wire(from_wire(WIDGET_WIRE, Widget))) == list(WIDGET_WIRE)


def test_to_wire_of_a_list_of_models() -> None:
    """A list or tuple of models becomes a list of wire objects."""
    widgets = (from_wire(WIDGET_WIRE, Widget), from_wire(LABEL_WIRE, Widget))
    assert to_wire(list(widgets)) == [WIDGET_WIRE, LABEL_WIRE]
    assert json.loads(to_json(widgets)) == [WIDGET_WIRE, LABEL_WIRE]


def test_package_reexports_json_functions() -> None:
    """inspector.to_json and inspector.from_json are the serialization functions."""
    assert inspector.to_json is to_json
    assert inspector.from_json is from_json


# Unknown fields


def test_unknown_top_level_field_kept_and_written_back() -> None:
    """A key the model does not name lands in extra, untouched, and to_json writes it back."""
    widget = from_wire(WIDGET_WIRE, Widget)
    assert widget.extra == {"refresh": {"everySeconds": 300, "onOpen": True}}
    assert json.loads(to_json(widget))["refresh"] == {"everySeconds": 300, "onOpen": True}


def test_unknown_nested_fields_kept_where_they_were() -> None:
    """Unknown keys inside a data source or a position stay in that object."""
    widget = from_wire(WIDGET_WIRE, Widget)
    container = from_wire(CONTAINER_WIRE, WidgetContainer)
    assert widget.data_sources[0].extra == {"timeoutSeconds": 30}
    assert widget.data_sources[1].extra == {}
    assert container.position is not None
    assert container.position.extra == {"zIndex": 3}
    assert json.loads(to_json(widget))["dataSources"][0]["timeoutSeconds"] == 30
    assert json.loads(to_json(container))["position"]["zIndex"] == 3


def test_unknown_null_field_kept() -> None:
    """An unknown key whose value is null is kept as None and written back as null."""
    wire = {**SPREADSHEET_WIRE, "sheetName": None}
    source = from_wire(wire, DataSource)
    assert source.extra == {"sheetName": None}
    assert to_wire(source) == wire


def test_named_field_wins_over_a_hand_built_extra() -> None:
    """An extra spelled like a named field's wire key does not replace that field."""
    source = DataSource(kind="database", extra={"kind": "spreadsheet", "owner": "x"})
    assert to_wire(source) == {"kind": "database", "owner": "x"}


# Older servers and absent fields


def test_legacy_single_widget_id() -> None:
    """An older server's single widgetId becomes a one-element widget_ids, not an extra."""
    container = from_wire({"id": "doc-1/c1", "widgetId": "doc-1/c1/w1"}, WidgetContainer)
    assert container.widget_ids == ("doc-1/c1/w1",)
    assert container.extra == {}
    assert to_wire(container) == {"id": "doc-1/c1", "widgetIds": ["doc-1/c1/w1"]}


def test_legacy_widget_id_beside_widget_ids_is_an_extra() -> None:
    """When widgetIds is present, the list wins and a widgetId beside it is kept as unknown."""
    wire = {"id": "doc-1/c1", "widgetIds": ["a", "b"], "widgetId": "a"}
    container = from_wire(wire, WidgetContainer)
    assert container.widget_ids == ("a", "b")
    assert container.extra == {"widgetId": "a"}
    assert to_wire(container) == wire


def test_absent_optional_fields_take_defaults() -> None:
    """Absent optional fields are None and absent sequences empty tuples."""
    document = from_wire({"id": "ds-1", "type": "dataset"}, Document)
    assert document == Document(id="ds-1", type="dataset")
    assert document.widget_container_ids == ()
    widget = from_wire({"id": "w", "type": "label"}, Widget)
    assert widget.data_sources == ()
    assert widget.palette == ()
    assert (widget.title, widget.font_size, widget.container_id) == (None, None, None)
    container = from_wire({"id": "c"}, WidgetContainer)
    assert (container.position, container.widget_ids) == (None, ())


def test_null_optional_fields_are_none_and_not_written() -> None:
    """A null optional field structures to None, and None is never written back."""
    wire = {"id": "w", "type": "chart", "title": None, "fontSize": None, "containerId": None}
    widget = from_wire(wire, Widget)
    assert (widget.title, widget.font_size, widget.container_id) == (None, None, None)
    assert to_wire(widget) == {"id": "w", "type": "chart", "palette": [], "dataSources": []}


def test_absent_sequences_are_written_as_empty_lists() -> None:
    """The canonical form always carries sequence fields, [] when empty."""
    document = from_wire({"id": "f-1", "type": "folder"}, Document)
    assert to_wire(document) == {"id": "f-1", "type": "folder", "widgetContainerIds": []}


# Numbers


def test_integer_font_size_stays_integer() -> None:
    """fontSize 12 structures to the int 12 and is written back as 12, not 12.0."""
    widget = from_wire({"id": "w", "type": "chart", "fontSize": 12}, Widget)
    assert widget.font_size == 12
    assert type(widget.font_size) is int
    assert '"fontSize": 12,' in to_json(widget)
    assert type(from_json(to_json(widget), Widget).font_size) is int


def test_float_font_size_stays_float() -> None:
    """fontSize 10.5 stays a float."""
    widget = from_wire({"id": "w", "type": "chart", "fontSize": 10.5}, Widget)
    assert widget.font_size == 10.5
    assert from_json(to_json(widget), Widget) == widget


# Strict shapes and error messages

WRONG_SHAPES: List[Tuple[type, str, Any, str]] = [
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "title": ["Revenue"]},
        "GetWidgetProperties 'doc-1/c1/w1': field 'title': expected a string, got list",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "palette": "#1f77b4"},
        "GetWidgetProperties 'doc-1/c1/w1': field 'palette': expected a list, got str",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "dataSources": {"kind": "database"}},
        "GetWidgetProperties 'doc-1/c1/w1': field 'dataSources': expected a list, got dict",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "fontSize": True},
        "GetWidgetProperties 'doc-1/c1/w1': field 'fontSize': expected a number, got bool",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "fontSize": "12"},
        "GetWidgetProperties 'doc-1/c1/w1': field 'fontSize': expected a number, got str",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "dataSources": [DATABASE_WIRE, {"url": "https://x"}]},
        "GetWidgetProperties 'doc-1/c1/w1': field 'dataSources[1].kind': required field missing",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "dataSources": [["database"]]},
        "GetWidgetProperties 'doc-1/c1/w1': field 'dataSources[0]': expected an object, got list",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {**WIDGET_WIRE, "dataSources": [{**DATABASE_WIRE, "sql": 42}]},
        "GetWidgetProperties 'doc-1/c1/w1': field 'dataSources[0].sql': expected a string, got int",
    ),
    (
        Widget,
        "GetWidgetProperties",
        {"type": "chart"},
        "GetWidgetProperties: field 'id': required field missing",
    ),
    (
        WidgetContainer,
        "GetWidgetContainer",
        {**CONTAINER_WIRE, "widgetIds": "doc-1/c1/w1"},
        "GetWidgetContainer 'doc-1/c1': field 'widgetIds': expected a list, got str",
    ),
    (
        WidgetContainer,
        "GetWidgetContainer",
        {"id": "doc-1/c1", "widgetId": ["doc-1/c1/w1"]},
        "GetWidgetContainer 'doc-1/c1': field 'widgetId': expected a string, got list",
    ),
    (
        WidgetContainer,
        "GetWidgetContainer",
        {**CONTAINER_WIRE, "position": [1, 0, 0]},
        "GetWidgetContainer 'doc-1/c1': field 'position': expected an object, got list",
    ),
    (
        WidgetContainer,
        "GetWidgetContainer",
        {**CONTAINER_WIRE, "position": {"page": True}},
        "GetWidgetContainer 'doc-1/c1': field 'position.page': expected an integer, got bool",
    ),
    (
        WidgetContainer,
        "GetWidgetContainer",
        {**CONTAINER_WIRE, "position": {"page": 1.0}},
        "GetWidgetContainer 'doc-1/c1': field 'position.page': expected an integer, got float",
    ),
    (
        Document,
        "GetDocument",
        {**DOCUMENT_WIRE, "widgetContainerIds": ["doc-1/c1", None]},
        "GetDocument 'doc-1': field 'widgetContainerIds[1]': expected a string, got null",
    ),
    (
        Document,
        "GetDocument",
        {**DOCUMENT_WIRE, "widgetContainerIds": None},
        "GetDocument 'doc-1': field 'widgetContainerIds': expected a list, got null",
    ),
    (
        Document,
        "GetDocument",
        ["doc-1"],
        "GetDocument: expected an object, got list",
    ),
    (
        Document,
        "GetDocument",
        "doc-1",
        "GetDocument: expected an object, got str",
    ),
    (
        Inspection,
        "inspect",
        {**INSPECTION_WIRE, "widgets": [WIDGET_WIRE, {"id": "w9"}]},
        "inspect: field 'widgets[1].type': required field missing",
    ),
]


@pytest.mark.parametrize(
    ("cls", "method", "wire", "message"),
    WRONG_SHAPES,
    ids=[case[3].split(": ", 1)[-1] for case in WRONG_SHAPES],
)
def test_wrong_shape_names_method_id_and_wire_field(
    cls: type, method: str, wire: Any, message: str
) -> None:
    """A wrong shape is a ProtocolError naming the method, the object id and the wire path."""
    with pytest.raises(ProtocolError) as excinfo:
        from_wire(wire, cls, method=method)
    assert str(excinfo.value) == message


def test_wrong_shape_chains_the_cattrs_error() -> None:
    """The detailed cattrs error is the ProtocolError's cause."""
    with pytest.raises(ProtocolError) as excinfo:
        from_wire({**WIDGET_WIRE, "title": 1}, Widget, method="GetWidgetProperties")
    assert isinstance(excinfo.value.__cause__, cattrs.ClassValidationError)
    assert isinstance(excinfo.value, inspector.InspectorError)


def test_wrong_shape_without_method_names_the_class() -> None:
    """Without a method the message starts with the class name."""
    with pytest.raises(ProtocolError, match=r"^Widget 'w': field 'type': required field missing"):
        from_wire({"id": "w"}, Widget)


def test_several_wrong_fields_are_counted() -> None:
    """The message names the first failing field and counts the others."""
    wire = {"id": "doc-1/c1", "layout": 3, "widgetIds": "x"}
    with pytest.raises(ProtocolError) as excinfo:
        from_wire(wire, WidgetContainer, method="GetWidgetContainer")
    assert str(excinfo.value) == (
        "GetWidgetContainer 'doc-1/c1': field 'layout': expected a string, got int (and 1 more)"
    )


# JSON text


def test_from_json_invalid_json_is_a_protocol_error() -> None:
    """Text that is not JSON raises ProtocolError, chained to the JSON error."""
    with pytest.raises(ProtocolError, match="^Widget: invalid JSON") as excinfo:
        from_json('{"id": "w", "type": ', Widget)
    assert isinstance(excinfo.value.__cause__, json.JSONDecodeError)


def test_from_json_wrong_shape_is_a_protocol_error() -> None:
    """Valid JSON of the wrong shape raises ProtocolError too."""
    with pytest.raises(ProtocolError, match="^Document: expected an object, got list$"):
        from_json('["doc-1"]', Document)


@pytest.mark.parametrize(
    "text, field",
    [
        ('{"id": "w", "type": "chart", "fontSize": 1e400}', "'fontSize'"),
        ('{"id": "w", "type": "chart", "dataSources": [{"kind": "k", "n": -1e999}]}',
         r"'dataSources\[0\]\.n'"),
        ('{"id": "w", "type": "chart", "fontSize": NaN}', "NaN"),
        ('{"id": "w", "type": "chart", "fontSize": -Infinity}', "Infinity"),
    ],
)
def test_from_json_refuses_numbers_json_cannot_hold(text: str, field: str) -> None:
    """1e400 (infinity once parsed), NaN and Infinity are refused, naming the field."""
    with pytest.raises(ProtocolError, match=field):
        from_json(text, Widget)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_from_wire_refuses_non_finite_floats(value: float) -> None:
    """A non-finite float given as data is refused by the float fields, naming them."""
    with pytest.raises(ProtocolError, match="field 'fontSize': expected a finite number"):
        from_wire({"id": "w", "type": "chart", "fontSize": value}, Widget)
    with pytest.raises(ProtocolError, match="field 'position.x'"):
        from_wire({"id": "c", "position": {"x": value}}, WidgetContainer)


def test_to_json_never_writes_invalid_json() -> None:
    """A hand-built model holding infinity raises InvalidArgument instead of writing it."""
    widget = Widget(id="w", type="chart", extra={"ratio": float("inf")})
    with pytest.raises(InvalidArgument, match="NaN or an infinity"):
        to_json(widget)


def test_to_json_indent() -> None:
    """indent is passed on to json.dumps."""
    document = from_wire(DOCUMENT_WIRE, Document)
    assert to_json(document, indent=2) == json.dumps(DOCUMENT_WIRE, indent=2)
    assert to_json(document) == json.dumps(DOCUMENT_WIRE)


# Round trips


@pytest.mark.parametrize("case", CANONICAL, ids=[_ids(case) for case in CANONICAL])
def test_canonical_wire_round_trip(case: Tuple[type, Dict[str, Any]]) -> None:
    """to_wire(from_wire(d, cls)) == d for a wire object in canonical form."""
    cls, wire = case
    assert to_wire(from_wire(wire, cls)) == wire


MODELS: List[Any] = [
    DataSource(kind="database"),
    DataSource(
        kind="x", connection="c", sql="s", url="u", range="r", extra={"a": [1, {"b": None}]}
    ),
    Position(),
    Position(page=2, x=1.5, y=2, width=0, height=-1.0, extra={"unit": "cm"}),
    Document(id="ds-1", type="dataset"),
    Document(id="d", type="slide", name="é ☃", owner="o", widget_container_ids=("c1",)),
    WidgetContainer(id="c"),
    WidgetContainer(id="c", layout="free", position=Position(page=1), widget_ids=("w1", "w2")),
    Widget(id="w", type="label"),
    _expected_widget(),
    Inspection(document=Document(id="d", type="folder")),
    Inspection(
        document=Document(id="doc-1", type="biDashboard", widget_container_ids=("doc-1/c1",)),
        containers=(WidgetContainer(id="doc-1/c1", widget_ids=("doc-1/c1/w1",)),),
        widgets=(_expected_widget(), Widget(id="doc-1/c1/w2", type="image", font_size=9.5)),
    ),
]


@pytest.mark.parametrize("model", MODELS, ids=[type(m).__name__ for m in MODELS])
def test_model_json_round_trip(model: Any) -> None:
    """from_json(to_json(x), type(x)) == x for every model, extras included."""
    again = from_json(to_json(model), type(model))
    assert again == model
    assert to_wire(again) == to_wire(model)


def test_round_trip_of_structured_inspection() -> None:
    """A full Inspection built from wire objects survives JSON text and back."""
    inspection = from_wire(INSPECTION_WIRE, Inspection)
    assert from_json(to_json(inspection), Inspection) == inspection
    assert from_json(to_json(inspection, indent=2), Inspection) == inspection


# from_wire(..., **fields)


def test_fields_set_attributes_not_on_the_wire() -> None:
    """fields= sets container_id, which the server never sends."""
    wire = {key: value for key, value in WIDGET_WIRE.items() if key != "containerId"}
    widget = from_wire(wire, Widget, method="GetWidgetProperties", container_id="doc-1/c1")
    assert widget == _expected_widget()
    assert "containerId" not in wire


def test_fields_win_over_the_wire() -> None:
    """A field given to from_wire replaces what the wire says."""
    widget = from_wire(WIDGET_WIRE, Widget, container_id="doc-1/c9")
    assert widget.container_id == "doc-1/c9"
    assert widget.extra == _expected_widget().extra


def test_fields_must_name_attributes() -> None:
    """An unknown attribute name in fields is the caller's TypeError."""
    with pytest.raises(TypeError, match="Widget has no field 'containerId'"):
        from_wire(WIDGET_WIRE, Widget, containerId="doc-1/c1")


# Threads and caching


def test_hooks_are_fetched_once_per_model() -> None:
    """Every model's fast structure hook is cached at import."""
    for cls in (DataSource, Position, Document, WidgetContainer, Widget, Inspection):
        assert cls in serialization._structure_hooks


def test_concurrent_use_from_threads() -> None:
    """Many threads may structure, fail and unstructure at once with the same results."""
    bad = {**WIDGET_WIRE, "dataSources": [{"url": "x"}]}

    def work(index: int) -> Tuple[Widget, str, Any]:
        widget = from_wire(WIDGET_WIRE, Widget, container_id="doc-1/c1")
        try:
            from_wire(bad, Widget, method="GetWidgetProperties")
        except ProtocolError as exc:
            message = str(exc)
        return widget, message, to_wire(widget)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(400)))
    assert all(widget == _expected_widget() for widget, _, _ in results)
    assert {message for _, message, _ in results} == {
        "GetWidgetProperties 'doc-1/c1/w1': field 'dataSources[0].kind': required field missing"
    }
    assert all(wire == WIDGET_WIRE for _, _, wire in results)
