"""What the documents API describes, as immutable attrs classes.

Attribute names are snake_case; the camelCase wire names and all validation live in
:mod:`inspector.serialization`, at the edge. Every class that the server sends keeps the fields
it does not name in ``extra`` (wire names, wire values), so that a server that grew a field
loses nothing on the way through: a compliance tool must not drop data it was given.

Sequences are tuples so that a model, once built, cannot change under a reader.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Dict, Optional, Tuple, Type, TypeVar

import attrs

from inspector.redaction import redact

__all__ = ["DataSource", "Document", "Inspection", "Position", "Widget", "WidgetContainer"]


M = TypeVar("M")


def _extra_field() -> Any:
    # Extras take part in equality (two objects that differ there are different data) but not
    # in the hash: a dict cannot be hashed, and equal objects still hash equal without it.
    return attrs.field(factory=dict, hash=False, repr=False, kw_only=True)


@attrs.frozen
class DataSource:
    """One source of data behind a widget: a database query or a spreadsheet range.

    Attributes:
        kind: ``database``, ``spreadsheet`` or any other kind the server names.
        connection: The database connection string, for ``database`` sources.
        sql: The SQL statement run on that connection.
        url: The spreadsheet (or other resource) link.
        range: The spreadsheet range read, e.g. ``A1:D40``.
        extra: Wire fields this class does not name, kept as sent.
    """

    kind: str
    connection: Optional[str] = None
    sql: Optional[str] = None
    url: Optional[str] = None
    range: Optional[str] = None
    extra: Dict[str, Any] = _extra_field()

    def __repr__(self) -> str:
        # Where it reads, not the SQL; and never a password, which a repr would put in logs.
        where = "".join(
            f", {name}={redact(value)!r}"
            for name, value in (("connection", self.connection), ("url", self.url))
            if value is not None
        )
        return f"DataSource(kind={self.kind!r}{where})"


@attrs.frozen
class Position:
    """Where a widget container sits on its page."""

    page: Optional[int] = None
    x: Optional[float] = None
    y: Optional[float] = None
    width: Optional[float] = None
    height: Optional[float] = None
    extra: Dict[str, Any] = _extra_field()


@attrs.frozen
class Document:
    """A document: a BI dashboard, a slide deck, or a type without widgets (dataset, folder).

    Attributes:
        id: The document id.
        type: ``biDashboard``, ``slide``, ``dataset``, ``folder``, ...
        name: The document's display name.
        owner: The owning team or user, when the server says.
        widget_container_ids: The containers in document order (empty for types without any).
        extra: Wire fields this class does not name, kept as sent.
    """

    id: str
    type: str
    name: Optional[str] = None
    owner: Optional[str] = None
    widget_container_ids: Tuple[str, ...] = ()
    extra: Dict[str, Any] = _extra_field()

    def __repr__(self) -> str:
        return (
            f"Document(id={self.id!r}, type={self.type!r}, name={self.name!r}, "
            f"containers={len(self.widget_container_ids)})"
        )


@attrs.frozen
class WidgetContainer:
    """A container of widgets on a document's page.

    Attributes:
        id: The container id.
        layout: The layout name (``grid``, ``free``, ...).
        position: Where the container sits.
        widget_ids: The widgets it lists, in order (an older server's single ``widgetId``
            becomes a one-element tuple).
        extra: Wire fields this class does not name, kept as sent.
    """

    id: str
    layout: Optional[str] = None
    position: Optional[Position] = None
    widget_ids: Tuple[str, ...] = ()
    extra: Dict[str, Any] = _extra_field()

    def __repr__(self) -> str:
        return (
            f"WidgetContainer(id={self.id!r}, layout={self.layout!r}, "
            f"widgets={len(self.widget_ids)})"
        )


@attrs.frozen
class Widget:
    """One widget and its properties, above all its data sources.

    Attributes:
        id: The widget id.
        type: ``chart``, ``table``, ``label``, ``image``, ... (an open set).
        container_id: The first container, in document order, that lists this widget.
        title: The widget's title, if it has one.
        palette: Its colours, e.g. ``("#1f77b4", "#ff7f0e")``.
        font_size: Its font size, if set.
        data_sources: What feeds it (empty for a label or an image).
        extra: Wire fields this class does not name, kept as sent.
    """

    id: str
    type: str
    container_id: Optional[str] = None
    title: Optional[str] = None
    palette: Tuple[str, ...] = ()
    font_size: Optional[float] = None
    data_sources: Tuple[DataSource, ...] = ()
    extra: Dict[str, Any] = _extra_field()

    def __repr__(self) -> str:
        return (
            f"Widget(id={self.id!r}, type={self.type!r}, title={self.title!r}, "
            f"data_sources={len(self.data_sources)})"
        )


@attrs.frozen
class Inspection:
    """The whole inspection of one document.

    Attributes:
        document: The document itself.
        containers: Its widget containers, in document order.
        widgets: Every widget once, in document order (containers in order, widgets in each
            container's order).
    """

    document: Document
    containers: Tuple[WidgetContainer, ...] = ()
    widgets: Tuple[Widget, ...] = ()

    def __repr__(self) -> str:
        return (
            f"Inspection(document={self.document.id!r}, type={self.document.type!r}, "
            f"containers={len(self.containers)}, widgets={len(self.widgets)})"
        )


# --- pickling --------------------------------------------------------------------------------
# Results cross process boundaries by the ten thousand (a Dask worker returns every inspection
# it makes). attrs pickles a slotted class through its __getstate__ and __setstate__, a dict
# built and a loop run in Python for every object: measured, 0.06 ms to pickle one small
# document's inspection and as much to load it, a third of what inspecting it costs. Reduced to
# the class and its field values in order, an object pickles with one C-level getter call and
# loads with one call of its own __init__.


def _with_extra(cls: Type[M], values: Tuple[Any, ...], extra: Dict[str, Any]) -> M:
    """Rebuild a pickled model that had extras (``extra`` is keyword-only)."""
    return cls(*values, extra=extra)  # type: ignore[call-arg]


def _install_reduce(cls: Type[Any]) -> None:
    names = [field.name for field in attrs.fields(cls) if field.name != "extra"]
    values: Callable[[Any], Tuple[Any, ...]] = operator.attrgetter(*names)  # a tuple: >1 name
    keeps_extra = "extra" in attrs.fields_dict(cls)

    def __reduce__(self: Any) -> Tuple[Any, ...]:
        if keeps_extra and self.extra:
            return (_with_extra, (cls, values(self), self.extra))
        return (cls, values(self))

    cls.__reduce__ = __reduce__  # type: ignore[assignment]


for _model in (DataSource, Position, Document, WidgetContainer, Widget, Inspection):
    _install_reduce(_model)
del _model
