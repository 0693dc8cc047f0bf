"""Inspect documents (BI dashboards, slide decks) through a JSON-over-WebSocket documents API."""

import logging

from inspector.client import DocumentInspector, InspectorStats
from inspector.connection import Connection
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    InvalidArgument,
    ProtocolError,
    RequestTimeout,
    ServerError,
)
from inspector.models import DataSource, Document, Inspection, Position, Widget, WidgetContainer
from inspector.serialization import from_json, to_json

__version__ = "0.1.0"

# A library logs, the application decides where to: without a handler of its own the package's
# warnings would go to logging's "last resort" stderr handler.
logging.getLogger("inspector").addHandler(logging.NullHandler())

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
    "InspectorStats",
    "InvalidArgument",
    "Position",
    "ProtocolError",
    "RequestTimeout",
    "ServerError",
    "Widget",
    "WidgetContainer",
    "from_json",
    "to_json",
]
