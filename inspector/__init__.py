"""Inspect documents (BI dashboards, slide decks) through a JSON-over-WebSocket documents API."""

from inspector.client import DocumentInspector
from inspector.connection import Connection
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    ProtocolError,
    RequestTimeout,
    ServerError,
)
from inspector.models import DataSource, Document, Inspection, Position, Widget, WidgetContainer
from inspector.serialization import from_json, to_json

__version__ = "0.1.0"

__all__ = [
    "ClientClosed",
    "Connection",
    "ConnectionFailed",
    "ConnectionLost",
    "DataSource",
    "Document",
    "DocumentInspector",
    "Inspection",
    "InspectorError",
    "Position",
    "ProtocolError",
    "RequestTimeout",
    "ServerError",
    "Widget",
    "WidgetContainer",
    "from_json",
    "to_json",
]
