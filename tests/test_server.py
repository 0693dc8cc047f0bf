"""Tests for inspector.server: a real sample server, talked to by a plain websocket-client."""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import itertools
import json
import logging
import math
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import pytest
import trustme
import websocket
from support import MS, wait_until

from inspector import Connection, InvalidArgument
from inspector.sample_catalog import MUTATION_KINDS, listed_generated_id, load_catalog
from inspector.server import (
    JUNK_KINDS,
    Faults,
    Mutation,
    SampleServer,
    add_serve_arguments,
    faults_from_args,
    run_sample_server,
    serve_from_args,
)

JSONObject = Dict[str, Any]

# The examples of PROTOCOL.md, which the catalog must serve exactly.
PROTOCOL_DOCUMENT = {
    "id": "doc-1",
    "type": "biDashboard",
    "name": "Sales overview",
    "owner": "finance",
    "widgetContainerIds": ["doc-1/c1", "doc-1/c2"],
}
PROTOCOL_CONTAINER = {
    "id": "doc-1/c1",
    "layout": "grid",
    "position": {"page": 1, "x": 0, "y": 0, "width": 6, "height": 4},
    "widgetIds": ["doc-1/c1/w1", "doc-1/c1/w2"],
}
PROTOCOL_WIDGET = {
    "id": "doc-1/c1/w1",
    "type": "chart",
    "title": "Revenue by region",
    "palette": ["#1f77b4", "#ff7f0e"],
    "fontSize": 12,
    "dataSources": [
        {
            "kind": "database",
            "connection": "postgresql://warehouse.internal:5432/sales",
            "sql": "SELECT region, SUM(amount) FROM orders GROUP BY region",
        },
        {"kind": "spreadsheet", "url": "https://sheets.example.com/d/8f2a", "range": "A1:D40"},
    ],
}
METHOD_FOR_KIND = {
    "document": "GetDocument",
    "container": "GetWidgetContainer",
    "widget": "GetWidgetProperties",
}
# Whatever a client sees when the server aborts the TCP connection instead of closing it.
CONNECTION_LOST = (websocket.WebSocketConnectionClosedException, OSError)


# Helpers.


def connect(server: SampleServer, timeout: float = 10.0, **options: Any) -> websocket.WebSocket:
    """Open a plain websocket-client connection to the server."""
    return websocket.create_connection(server.url, timeout=timeout, **options)


def send(ws: websocket.WebSocket, request_id: int, method: str, params: Any = None) -> None:
    """Send one request (no params key when params is None)."""
    request: JSONObject = {"id": request_id, "method": method}
    if params is not None:
        request["params"] = params
    ws.send(json.dumps(request))


def recv_json(ws: websocket.WebSocket) -> Any:
    """Receive one text frame and parse it."""
    frame = ws.recv()
    assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
    return json.loads(frame)


def call(ws: websocket.WebSocket, request_id: int, method: str, params: Any = None) -> Any:
    """Send a request and return the next message (the reply, with no faults on)."""
    send(ws, request_id, method, params)
    return recv_json(ws)


def result_of(ws: websocket.WebSocket, method: str, object_id: str) -> JSONObject:
    """Return the result of one Get* request for an object that must exist."""
    reply = call(ws, 1, method, {"id": object_id})
    assert "result" in reply, reply
    result: JSONObject = reply["result"]
    return result


@contextlib.contextmanager
def open_clients(server: SampleServer, count: int) -> Iterator[List[websocket.WebSocket]]:
    """Open connections, wait until the server counts them all open, close them after."""
    clients: List[websocket.WebSocket] = []
    try:
        clients.extend(connect(server) for _ in range(count))
        wait_until(lambda: server.stats.open_connections == count)
        yield clients
    finally:
        for client in clients:
            client.close()


def close_code(ws: websocket.WebSocket) -> int:
    """Read frames until a close frame arrives; close the socket and return the frame's code."""
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            # websocket-client answered the close frame but keeps the socket open (a later
            # close() does nothing): shut it, or the server waits for the TCP close.
            ws.shutdown()  # type: ignore[no-untyped-call]
            return int.from_bytes(data[:2], "big")


def assert_connection_aborted(ws: websocket.WebSocket) -> None:
    """Assert the server dropped the TCP connection without sending a close frame."""
    with pytest.raises(CONNECTION_LOST):
        while True:
            opcode, _ = ws.recv_data(control_frame=True)
            assert opcode != websocket.ABNF.OPCODE_CLOSE, "got a close frame, expected an abort"


def reply_to(ws: websocket.WebSocket, request_id: int) -> JSONObject:
    """Return the next reply to request_id, passing over notifications."""
    while True:
        message = recv_json(ws)
        if message.get("id") == request_id:
            reply: JSONObject = message
            return reply
        assert "method" in message, message


def list_pages(ws: websocket.WebSocket, limit: int) -> List[JSONObject]:
    """Follow nextCursor from the first page; return every page's result."""
    results: List[JSONObject] = []
    params: JSONObject = {"limit": limit}
    for request_id in itertools.count(1):
        send(ws, request_id, "ListDocuments", params)
        result: JSONObject = reply_to(ws, request_id)["result"]
        results.append(result)
        if result.get("nextCursor") is None:
            return results
        params = {"cursor": result["nextCursor"], "limit": limit}
    raise AssertionError("unreachable")


def handshake_status(server: SampleServer, **options: Any) -> int:
    """Attempt a handshake that must be refused; return the HTTP status."""
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(server, **options)
    status: int = refused.value.status_code
    return status


def walk_catalog(
    ws: websocket.WebSocket,
) -> Tuple[List[JSONObject], List[JSONObject], List[JSONObject]]:
    """Fetch every catalog document, container and widget; return the three lists."""
    document_ids = call(ws, 1, "ListDocuments", {})["result"]["documentIds"]
    documents = [result_of(ws, "GetDocument", i) for i in document_ids]
    containers = [
        result_of(ws, "GetWidgetContainer", c)
        for d in documents
        for c in d.get("widgetContainerIds", [])
    ]
    widget_ids = dict.fromkeys(
        w for c in containers for w in c.get("widgetIds", [c.get("widgetId")])
    )
    widgets = [result_of(ws, "GetWidgetProperties", str(w)) for w in widget_ids]
    return documents, containers, widgets


@pytest.fixture
def ws(sample_server: SampleServer) -> Iterator[websocket.WebSocket]:
    """A websocket-client connection to the sample_server fixture, closed after the test."""
    connection = connect(sample_server)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority for TLS tests."""
    return trustme.CA()


def client_tls_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts only the throwaway CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# Methods.


def test_get_document_matches_protocol_example(ws: websocket.WebSocket) -> None:
    """GetDocument doc-1 answers exactly the PROTOCOL.md example."""
    assert call(ws, 7, "GetDocument", {"id": "doc-1"}) == {"id": 7, "result": PROTOCOL_DOCUMENT}


def test_get_widget_container_matches_protocol_example(ws: websocket.WebSocket) -> None:
    """GetWidgetContainer doc-1/c1 answers exactly the PROTOCOL.md example."""
    reply = call(ws, 8, "GetWidgetContainer", {"id": "doc-1/c1"})
    assert reply == {"id": 8, "result": PROTOCOL_CONTAINER}


def test_get_widget_properties_matches_protocol_example(ws: websocket.WebSocket) -> None:
    """GetWidgetProperties doc-1/c1/w1 answers exactly the PROTOCOL.md example."""
    reply = call(ws, 9, "GetWidgetProperties", {"id": "doc-1/c1/w1"})
    assert reply == {"id": 9, "result": PROTOCOL_WIDGET}


def test_list_documents_names_the_catalog(ws: websocket.WebSocket) -> None:
    """ListDocuments names at least 20 catalog documents, doc-1 first, no generated ones."""
    ids = call(ws, 1, "ListDocuments", {})["result"]["documentIds"]
    assert len(ids) >= 20
    assert len(set(ids)) == len(ids)
    assert ids[0] == "doc-1"
    assert not [i for i in ids if i.startswith("gen-")]


def test_list_documents_without_params(ws: websocket.WebSocket) -> None:
    """ListDocuments needs no params key."""
    assert "documentIds" in call(ws, 1, "ListDocuments")["result"]


# The catalog.


def test_catalog_references_all_resolve_with_conventional_ids(ws: websocket.WebSocket) -> None:
    """Every container and widget a catalog document names exists and has a <doc>/cN[/wM] id."""
    documents, containers, widgets = walk_catalog(ws)
    container_ids = {c["id"] for c in containers}
    for document in documents:
        for container_id in document.get("widgetContainerIds", []):
            assert re.fullmatch(re.escape(document["id"]) + r"/c[1-9][0-9]*", container_id)
    for widget in widgets:
        container_id, _, number = widget["id"].rpartition("/")
        assert container_id in container_ids and re.fullmatch(r"w[1-9][0-9]*", number)


def test_catalog_has_a_widget_shared_by_two_containers(ws: websocket.WebSocket) -> None:
    """Some widget is listed by two containers."""
    _, containers, _ = walk_catalog(ws)
    listed = [w for c in containers for w in c.get("widgetIds", [])]
    assert len(listed) > len(set(listed))


def test_catalog_has_an_older_style_container(ws: websocket.WebSocket) -> None:
    """Some container sends a single widgetId and no widgetIds."""
    _, containers, _ = walk_catalog(ws)
    legacy = [c for c in containers if "widgetId" in c]
    assert legacy and all("widgetIds" not in c for c in legacy)


def test_catalog_has_dataset_and_folder_without_widgets(ws: websocket.WebSocket) -> None:
    """Datasets and folders exist, with widgetContainerIds empty or absent (both forms)."""
    documents, _, _ = walk_catalog(ws)
    without = [d for d in documents if d["type"] in ("dataset", "folder")]
    assert {d["type"] for d in without} == {"dataset", "folder"}
    assert all(not d.get("widgetContainerIds") for d in without)
    assert any("widgetContainerIds" not in d for d in without)
    assert any(d.get("widgetContainerIds") == [] for d in without)


def test_catalog_looks_like_a_real_company(ws: websocket.WebSocket) -> None:
    """Dashboards and decks, all widget types, three databases, SQL joins and CTEs, sheets."""
    documents, _, widgets = walk_catalog(ws)
    assert {"biDashboard", "slide"} <= {d["type"] for d in documents}
    assert {"chart", "table", "label", "image"} <= {w["type"] for w in widgets}
    sources = [s for w in widgets for s in w.get("dataSources", [])]
    connections = {s["connection"] for s in sources if s["kind"] == "database"}
    assert {c.split("://")[0] for c in connections} >= {"postgresql", "mysql", "snowflake"}
    assert "postgresql://report_user:s3cr3t@warehouse.internal:5432/sales" in connections
    statements = [s["sql"] for s in sources if s["kind"] == "database"]
    assert any(" JOIN " in sql for sql in statements)
    assert any(sql.startswith("WITH ") for sql in statements)
    assert any(re.search(r"FROM [a-z_]+\.[a-z_]+", sql) for sql in statements)
    assert any(s["kind"] == "spreadsheet" and ":" in s["range"] for s in sources)


def test_catalog_carries_fields_the_protocol_does_not_name(ws: websocket.WebSocket) -> None:
    """Some objects carry extra wire fields (updatedAt, theme) for clients to keep."""
    documents, _, _ = walk_catalog(ws)
    assert any("updatedAt" in d for d in documents)
    assert any("theme" in d for d in documents)


# Errors.


def test_unknown_method_is_400(ws: websocket.WebSocket) -> None:
    """An unknown method gets error 400 carrying the request id."""
    reply = call(ws, 3, "DeleteEverything", {"id": "doc-1"})
    assert reply["id"] == 3
    assert reply["error"]["code"] == 400


@pytest.mark.parametrize(
    "params",
    [None, [], "doc-1", {}, {"id": 1}, {"id": None}, {"name": "doc-1"}],
    ids=["missing", "array", "string", "no-id", "int-id", "null-id", "other-key"],
)
@pytest.mark.parametrize("method", sorted(METHOD_FOR_KIND.values()))
def test_bad_params_are_400(ws: websocket.WebSocket, method: str, params: Any) -> None:
    """Params that are not an object, or lack a string id, get error 400."""
    reply = call(ws, 4, method, params)
    assert reply["id"] == 4
    assert reply["error"]["code"] == 400


def test_list_documents_params_must_be_an_object(ws: websocket.WebSocket) -> None:
    """ListDocuments with params that are not an object gets error 400."""
    assert call(ws, 5, "ListDocuments", [1])["error"]["code"] == 400


@pytest.mark.parametrize(
    ("method", "object_id"),
    [
        ("GetDocument", "doc-404"),
        ("GetDocument", "doc-1/c1"),
        ("GetWidgetContainer", "doc-1/c9"),
        ("GetWidgetContainer", "doc-1"),
        ("GetWidgetProperties", "doc-1/c1/w9"),
        ("GetWidgetProperties", ""),
    ],
)
def test_unknown_object_is_404_with_its_id(
    ws: websocket.WebSocket, method: str, object_id: str
) -> None:
    """An unknown object gets error 404 with data {"id": ...}."""
    reply = call(ws, 6, method, {"id": object_id})
    assert reply["id"] == 6
    assert reply["error"]["code"] == 404
    assert reply["error"]["data"] == {"id": object_id}
    assert reply["error"]["message"]


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '"GetDocument"',
        '{"method": "GetDocument", "params": {"id": "doc-1"}}',
        '{"id": 0, "method": "GetDocument", "params": {"id": "doc-1"}}',
        '{"id": -5, "method": "GetDocument", "params": {"id": "doc-1"}}',
        '{"id": "7", "method": "GetDocument", "params": {"id": "doc-1"}}',
        '{"id": 1.5, "method": "GetDocument", "params": {"id": "doc-1"}}',
        '{"id": true, "method": "GetDocument", "params": {"id": "doc-1"}}',
        "[" * 10_000 + "]" * 10_000,
        b'{"id": 1, "method": "GetDocument", "params": {"id": "doc-1"}}',
    ],
)
def test_unreadable_request_gets_error_with_null_id(
    ws: websocket.WebSocket, frame: Union[str, bytes]
) -> None:
    """A frame that is not an object with a positive integer id gets 400 with id null."""
    if isinstance(frame, bytes):
        ws.send_binary(frame)
    else:
        ws.send(frame)
    reply = recv_json(ws)
    assert reply["id"] is None
    assert reply["error"]["code"] == 400
    # The connection stays usable.
    assert call(ws, 2, "GetDocument", {"id": "doc-1"})["result"]["id"] == "doc-1"


# Generated documents.


def test_generated_document_shape(ws: websocket.WebSocket) -> None:
    """gen-100x50 has 100 containers of 50 widgets each, ids derived from the document id."""
    document = result_of(ws, "GetDocument", "gen-100x50")
    assert document["type"] in ("biDashboard", "slide")
    assert document["widgetContainerIds"] == [f"gen-100x50/c{n}" for n in range(1, 101)]
    container = result_of(ws, "GetWidgetContainer", "gen-100x50/c7")
    assert container["widgetIds"] == [f"gen-100x50/c7/w{n}" for n in range(1, 51)]
    assert set(container["position"]) == {"page", "x", "y", "width", "height"}
    widget = result_of(ws, "GetWidgetProperties", "gen-100x50/c7/w3")
    assert widget["id"] == "gen-100x50/c7/w3"
    assert widget["type"] in ("chart", "table", "label")


def test_generated_widgets_vary(ws: websocket.WebSocket) -> None:
    """Generated widgets vary in type, palette and font size; charts and tables have sources."""
    widgets = [
        result_of(ws, "GetWidgetProperties", f"gen-10x10/c{c}/w{w}")
        for c in range(1, 11)
        for w in range(1, 11)
    ]
    assert {w["type"] for w in widgets} == {"chart", "table", "label"}
    assert len({tuple(w["palette"]) for w in widgets}) > 1
    assert len({w["fontSize"] for w in widgets}) > 1
    for widget in widgets:
        if widget["type"] in ("chart", "table"):
            assert 1 <= len(widget["dataSources"]) <= 2
    kinds = {s["kind"] for w in widgets for s in w.get("dataSources", [])}
    assert kinds == {"database", "spreadsheet"}


def test_generated_properties_are_deterministic() -> None:
    """Two servers give equal objects for the same generated ids."""
    ids = [("GetDocument", "gen-3x4-x9"), ("GetWidgetContainer", "gen-3x4-x9/c2")]
    ids += [("GetWidgetProperties", f"gen-3x4-x9/c2/w{n}") for n in range(1, 5)]
    answers = []
    for _ in range(2):
        with run_sample_server() as server:
            client = connect(server)
            answers.append([result_of(client, method, i) for method, i in ids])
            client.close()
    assert answers[0] == answers[1]


def test_generated_legacy_containers_send_a_single_widget_id(ws: websocket.WebSocket) -> None:
    """gen-<C>x1-legacy containers send "widgetId" and no "widgetIds"."""
    document = result_of(ws, "GetDocument", "gen-3x1-legacy")
    assert document["widgetContainerIds"] == [f"gen-3x1-legacy/c{n}" for n in (1, 2, 3)]
    container = result_of(ws, "GetWidgetContainer", "gen-3x1-legacy/c2")
    assert container["widgetId"] == "gen-3x1-legacy/c2/w1"
    assert "widgetIds" not in container
    assert result_of(ws, "GetWidgetProperties", "gen-3x1-legacy/c2/w1")["id"].endswith("/w1")


def test_generated_tags_make_distinct_documents(ws: websocket.WebSocket) -> None:
    """Tags (after the shape, or after -legacy) give distinct documents of the same shape."""
    tagged = [result_of(ws, "GetDocument", f"gen-5x2-n{n}") for n in range(3)]
    assert len({d["id"] for d in tagged}) == 3
    assert all(len(d["widgetContainerIds"]) == 5 for d in tagged)
    assert tagged[1]["widgetContainerIds"][0] == "gen-5x2-n1/c1"
    legacy = result_of(ws, "GetWidgetContainer", "gen-2x1-legacy-Tag7/c2")
    assert legacy["widgetId"] == "gen-2x1-legacy-Tag7/c2/w1"


@pytest.mark.parametrize(
    ("kind", "object_id"),
    [
        ("document", "gen-0x5"),
        ("document", "gen-5x0"),
        ("document", "gen-05x2"),
        ("document", "gen-5x2-legacy"),
        ("document", "gen-5x2-"),
        ("document", "gen-5x2-bad_tag"),
        ("document", "gen-100001x1"),
        ("document", "gen-5"),
        ("container", "gen-3x2/c4"),
        ("container", "gen-3x2/c0"),
        ("container", "gen-3x2/c01"),
        ("container", "gen-3x2"),
        ("container", "gen-3x2/c1/w1"),
        ("widget", "gen-3x2/c1/w3"),
        ("widget", "gen-3x2/c4/w1"),
        ("widget", "gen-3x2/c1/w0"),
        ("widget", "gen-3x2/c1"),
        ("widget", "gen-3x2-legacy/c1/w1"),
    ],
)
def test_generated_ids_out_of_range_are_404(
    ws: websocket.WebSocket, kind: str, object_id: str
) -> None:
    """Malformed or out-of-range generated ids are unknown objects."""
    reply = call(ws, 1, METHOD_FOR_KIND[kind], {"id": object_id})
    assert reply["error"]["code"] == 404
    assert reply["error"]["data"] == {"id": object_id}


# Paging, generated documents, changes.

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")


def test_list_documents_pages_follow_next_cursor() -> None:
    """Pages of at most limit ids, followed by nextCursor, give the whole listing once."""
    with run_sample_server(generated=30) as server:
        ws = connect(server)
        everything = call(ws, 1, "ListDocuments", {})["result"]
        assert set(everything) == {"documentIds"}  # no nextCursor: everything at once
        ids = everything["documentIds"]
        assert ids[-30:] == [listed_generated_id(n) for n in range(1, 31)]
        results = list_pages(ws, 7)
        ws.close()
    assert [i for result in results for i in result["documentIds"]] == ids
    assert all(1 <= len(result["documentIds"]) <= 7 for result in results)
    assert results[-1]["nextCursor"] is None
    assert all(r["nextCursor"] == r["documentIds"][-1] for r in results[:-1])


def test_list_documents_with_null_params_gives_everything(ws: websocket.WebSocket) -> None:
    """cursor and limit both null is the same as no params: every id, no nextCursor."""
    everything = call(ws, 1, "ListDocuments", {})
    assert call(ws, 1, "ListDocuments", {"cursor": None, "limit": None}) == everything


def test_list_documents_cursor_alone_gives_the_rest(ws: websocket.WebSocket) -> None:
    """A cursor without limit gives every id after it, and a null nextCursor."""
    ids = call(ws, 1, "ListDocuments", {})["result"]["documentIds"]
    rest = call(ws, 2, "ListDocuments", {"cursor": ids[2]})["result"]
    assert rest == {"documentIds": ids[3:], "nextCursor": None}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"cursor": "no-such-doc", "limit": 5}, "cursor"),
        ({"cursor": 3, "limit": 5}, "cursor"),
        ({"cursor": ["doc-1"]}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": -4}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"limit": True}, "limit"),
    ],
)
def test_list_documents_bad_cursor_or_limit_is_400_naming_it(
    ws: websocket.WebSocket, params: JSONObject, named: str
) -> None:
    """An unknown or ill-typed cursor, or a limit that is not an integer >= 1: 400 naming it."""
    error = call(ws, 3, "ListDocuments", params)["error"]
    assert error["code"] == 400
    assert named in error["message"] and error["data"] == {"param": named}
    assert call(ws, 4, "ListDocuments", {"limit": 1})["result"]["documentIds"] == ["doc-1"]


def test_ignore_paging_answers_everything_as_an_older_server(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """With ignore_paging, cursor and limit are ignored (bad ones too): every id, no cursor."""
    everything = call(ws, 1, "ListDocuments", {})["result"]
    sample_server.faults.ignore_paging = True
    assert call(ws, 2, "ListDocuments", {"limit": 2})["result"] == everything
    assert call(ws, 3, "ListDocuments", {"cursor": "bogus", "limit": 0})["result"] == everything
    sample_server.faults.ignore_paging = False
    assert len(call(ws, 4, "ListDocuments", {"limit": 2})["result"]["documentIds"]) == 2


def test_pages_skip_and_repeat_nothing_while_documents_come_and_go() -> None:
    """Through inspector.Connection: documents removed and added between pages lose no other."""
    with run_sample_server(generated=50, seed=4) as server, Connection(server.url) as conn:
        before = conn.call("ListDocuments")["documentIds"]
        seen: List[str] = []
        removed: List[str] = []
        params: JSONObject = {"limit": 9}
        while True:
            page = conn.call("ListDocuments", params)
            seen.extend(page["documentIds"])
            for _ in range(2):
                removed.append(server.mutate(kind="remove_document").document_id)
            server.mutate(kind="add_document")
            if page["nextCursor"] is None:
                break
            params = {"cursor": page["nextCursor"], "limit": 9}
        after = conn.call("ListDocuments")["documentIds"]
    assert len(seen) == len(set(seen))
    assert set(before) - set(removed) <= set(seen)
    assert not set(removed) & set(after)
    assert seen[-1] in after and after.index(seen[-1]) == len(after) - 2


def test_generated_documents_are_listed_and_served_with_updated_at() -> None:
    """generated=N lists N two-by-two documents after the catalog; each has an updatedAt."""
    with run_sample_server(generated=3) as server:
        ws = connect(server)
        ids = call(ws, 1, "ListDocuments", {})["result"]["documentIds"]
        assert ids[-3:] == ["gen-2x2-n0000001", "gen-2x2-n0000002", "gen-2x2-n0000003"]
        document = result_of(ws, "GetDocument", "gen-2x2-n0000002")
        widgets = [
            result_of(ws, "GetWidgetProperties", w)
            for c in document["widgetContainerIds"]
            for w in result_of(ws, "GetWidgetContainer", c)["widgetIds"]
        ]
        unlisted = result_of(ws, "GetDocument", "gen-100x50")
        ws.close()
    assert len(document["widgetContainerIds"]) == 2 and len(widgets) == 4
    assert ISO_UTC.fullmatch(document["updatedAt"]) and ISO_UTC.fullmatch(unlisted["updatedAt"])


def test_catalog_documents_keep_their_shipped_updated_at(ws: websocket.WebSocket) -> None:
    """Catalog documents carry the updatedAt they ship with; doc-1 ships with none."""
    assert result_of(ws, "GetDocument", "doc-2")["updatedAt"] == "2024-09-30T17:04:11Z"
    assert "updatedAt" not in result_of(ws, "GetDocument", "doc-1")


def test_mutate_changes_sql_and_notifies_every_connection(sample_server: SampleServer) -> None:
    """mutate() changes a widget's SQL, bumps updatedAt and tells every open connection."""
    with open_clients(sample_server, 2) as (first, second):
        before = result_of(first, "GetDocument", "doc-2")
        mutation = sample_server.mutate("doc-2", "sql")
        expected = {
            "method": "DocumentChanged",
            "params": {"id": "doc-2", "updatedAt": mutation.updated_at},
        }
        assert recv_json(first) == expected and recv_json(second) == expected
        document = result_of(second, "GetDocument", "doc-2")
        assert mutation.object_id is not None
        widget = result_of(second, "GetWidgetProperties", mutation.object_id)
    assert mutation.kind == "sql" and ISO_UTC.fullmatch(str(mutation.updated_at))
    assert document["updatedAt"] == mutation.updated_at > before["updatedAt"]
    shipped = load_catalog().widget(mutation.object_id)
    assert shipped is not None
    assert [s.get("sql") for s in widget["dataSources"]] != [
        s.get("sql") for s in shipped["dataSources"]
    ]
    assert sample_server.stats.mutations == 1 and sample_server.stats.notifications_sent == 2


def test_mutate_widget_added_and_removed(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """add_widget lists a new widget; remove_widget unlists one; each bumps updatedAt."""
    added = sample_server.mutate("doc-4", "add_widget", notify=False)
    assert added.object_id is not None
    container_id = added.object_id.rsplit("/", 1)[0]
    assert result_of(ws, "GetWidgetContainer", container_id)["widgetIds"][-1] == added.object_id
    assert result_of(ws, "GetWidgetProperties", added.object_id)["dataSources"]
    removed = sample_server.mutate("doc-4", "remove_widget", notify=False)
    assert removed.updated_at is not None and added.updated_at is not None
    assert removed.updated_at > added.updated_at
    containers = [
        result_of(ws, "GetWidgetContainer", c)
        for c in result_of(ws, "GetDocument", "doc-4")["widgetContainerIds"]
    ]
    assert not [c for c in containers if removed.object_id in c.get("widgetIds", [])]


def test_mutate_documents_removed_and_added(sample_server: SampleServer) -> None:
    """remove_document sends DocumentRemoved and 404s; add_document is listed last and served."""
    with open_clients(sample_server, 1) as (ws,):
        removed = sample_server.mutate("doc-3", "remove_document")
        assert recv_json(ws) == {"method": "DocumentRemoved", "params": {"id": "doc-3"}}
        assert call(ws, 1, "GetDocument", {"id": "doc-3"})["error"]["code"] == 404
        assert call(ws, 2, "GetWidgetContainer", {"id": "doc-3/c1"})["error"]["code"] == 404
        added = sample_server.mutate(kind="add_document")
        assert recv_json(ws)["params"] == {"id": added.document_id, "updatedAt": added.updated_at}
        ids = call(ws, 3, "ListDocuments", {})["result"]["documentIds"]
        document = result_of(ws, "GetDocument", added.document_id)
    assert removed == Mutation("remove_document", "doc-3", None)
    assert "doc-3" not in ids and ids[-1] == added.document_id
    assert sample_server.document_ids() == ids
    assert document["updatedAt"] == added.updated_at


def test_mutate_without_notify_sends_nothing(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """notify=False changes the document silently, as if the notification were lost."""
    mutation = sample_server.mutate("doc-5", "sql", notify=False)
    assert call(ws, 1, "GetDocument", {"id": "doc-5"})["result"]["updatedAt"] == (
        mutation.updated_at
    )
    assert sample_server.stats.notifications_sent == 0


@pytest.mark.parametrize(
    ("document_id", "kind"), [("doc-1", "rename"), ("nope", None), ("ds-1", "sql")]
)
def test_mutate_bad_arguments_raise_and_the_server_carries_on(
    sample_server: SampleServer, ws: websocket.WebSocket, document_id: str, kind: Optional[str]
) -> None:
    """An unknown kind or document, or a kind that does not fit, raises InvalidArgument."""
    with pytest.raises(InvalidArgument):
        sample_server.mutate(document_id, kind)
    assert result_of(ws, "GetDocument", "doc-1") == PROTOCOL_DOCUMENT
    assert sample_server.stats.mutations == 0


def test_seeded_servers_make_the_same_random_changes() -> None:
    """Two servers with one seed make the same random changes, in the same order."""
    changes = []
    for _ in range(2):
        with run_sample_server(generated=20, seed=21) as server:
            changes.append([server.mutate() for _ in range(30)])
    assert [(m.kind, m.document_id, m.object_id) for m in changes[0]] == [
        (m.kind, m.document_id, m.object_id) for m in changes[1]
    ]
    assert {m.kind for m in changes[0]} <= set(MUTATION_KINDS)


@pytest.mark.timeout(30)
def test_mutate_every_changes_documents_and_notifies() -> None:
    """mutate_every=S changes a random document every S seconds and notifies connections."""
    with run_sample_server(mutate_every=20 * MS, seed=5) as server:
        ws = connect(server)
        notifications = [recv_json(ws) for _ in range(3)]
        ws.close()
        assert server.stats.mutations >= 3
    for notification in notifications:
        assert notification["method"] in ("DocumentChanged", "DocumentRemoved")
        assert isinstance(notification["params"]["id"], str)
        if notification["method"] == "DocumentChanged":
            assert ISO_UTC.fullmatch(notification["params"]["updatedAt"])


@pytest.mark.parametrize(
    "options",
    [{"generated": -1}, {"generated": 1_000_001}, {"mutate_every": 0.0}, {"seed": "x"}],
)
def test_server_document_options_are_validated(options: JSONObject) -> None:
    """generated, mutate_every and seed out of range raise InvalidArgument naming them."""
    with pytest.raises(InvalidArgument, match=next(iter(options))):
        SampleServer(**options)


def test_stats_count_open_connections_and_the_most_at_once(sample_server: SampleServer) -> None:
    """open_connections counts accepted connections now; max_open_connections the most at once."""
    with open_clients(sample_server, 3) as clients:
        clients.pop().close()
        clients.pop().close()
        wait_until(lambda: sample_server.stats.open_connections == 1)
        extra = connect(sample_server)
        wait_until(lambda: sample_server.stats.open_connections == 2)
        extra.close()
    wait_until(lambda: sample_server.stats.open_connections == 0)
    assert sample_server.stats.max_open_connections == 3


# Faults on demand.


@pytest.mark.timeout(30)
def test_latency_and_jitter_give_out_of_order_replies(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """With latency and jitter, 50 pipelined requests are all answered, not in send order.

    Out of order also shows that a delayed reply does not hold up the requests after it.
    """
    sample_server.faults.latency = 0.01
    sample_server.faults.jitter = 0.3
    for request_id in range(1, 51):
        send(ws, request_id, "GetDocument", {"id": "doc-1"})
    replies = [recv_json(ws) for _ in range(50)]
    received = [r["id"] for r in replies]
    assert sorted(received) == list(range(1, 51))
    assert received != list(range(1, 51))
    assert all(r["result"]["id"] == "doc-1" for r in replies)


def test_silent_every_skips_every_nth_request_per_server(
    sample_server: SampleServer,
) -> None:
    """silent_every=3 leaves requests 3, 6, 9 (counted across connections) unanswered."""
    sample_server.faults.silent_every = 3
    with open_clients(sample_server, 2) as (first, second):
        assert call(first, 1, "GetDocument", {"id": "doc-1"})["id"] == 1  # request 1
        assert call(second, 1, "GetDocument", {"id": "doc-1"})["id"] == 1  # request 2
        for request_id in range(2, 10):  # requests 3 to 10 of the server
            send(first, request_id, "GetDocument", {"id": "doc-1"})
        # No latency: replies come in order, so once id 9 arrived every earlier one has.
        received: List[int] = []
        while not received or received[-1] != 9:
            received.append(recv_json(first)["id"])
        assert received == [3, 4, 6, 7, 9]  # request ids 2, 5, 8 were server requests 3, 6, 9
        assert sample_server.stats.requests_silenced == 3


def test_silent_ids_are_never_answered(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """Requests for an id in silent_ids get no reply; others do."""
    sample_server.faults.silent_ids = frozenset({"doc-2", "doc-1/c1"})
    send(ws, 1, "GetDocument", {"id": "doc-2"})
    send(ws, 2, "GetWidgetContainer", {"id": "doc-1/c1"})
    send(ws, 3, "GetDocument", {"id": "doc-1"})
    assert recv_json(ws)["id"] == 3
    assert sample_server.stats.requests_silenced == 2


def test_drop_after_aborts_each_connection_on_its_nth_request(
    sample_server: SampleServer,
) -> None:
    """drop_after=3 answers two requests, then aborts the TCP connection; per connection."""
    sample_server.faults.drop_after = 3
    for _ in range(2):
        client = connect(sample_server)
        try:
            assert call(client, 1, "GetDocument", {"id": "doc-1"})["id"] == 1
            assert call(client, 2, "ListDocuments", {})["id"] == 2
            send(client, 3, "GetDocument", {"id": "doc-1"})
            assert_connection_aborted(client)
        finally:
            client.close()
    assert sample_server.stats.connections_dropped == 2


def junk_check(kind: str) -> Callable[[int, Union[str, bytes]], None]:
    """Return a check of one junk frame of this kind, given its opcode and payload."""

    def text(opcode: int, data: Union[str, bytes]) -> str:
        assert opcode == websocket.ABNF.OPCODE_TEXT
        return data.decode() if isinstance(data, bytes) else data

    def not_json(opcode: int, data: Union[str, bytes]) -> None:
        with pytest.raises(ValueError):
            json.loads(text(opcode, data))

    def array(opcode: int, data: Union[str, bytes]) -> None:
        assert isinstance(json.loads(text(opcode, data)), list)

    def unknown_id(opcode: int, data: Union[str, bytes]) -> None:
        message = json.loads(text(opcode, data))
        assert message["id"] >= 2**40 and isinstance(message["result"], dict)

    def binary(opcode: int, data: Union[str, bytes]) -> None:
        assert opcode == websocket.ABNF.OPCODE_BINARY

    def nan(opcode: int, data: Union[str, bytes]) -> None:
        message = json.loads(text(opcode, data))  # Python's json accepts NaN; strict ones don't
        assert message["id"] >= 2**40 and math.isnan(message["result"])

    def deep(opcode: int, data: Union[str, bytes]) -> None:
        frame = text(opcode, data)
        assert frame == "[" * 100_000 + "]" * 100_000

    checks = {
        "text": not_json,
        "array": array,
        "unknown_id": unknown_id,
        "binary": binary,
        "nan": nan,
        "deep": deep,
    }
    return checks[kind]


@pytest.mark.parametrize("kind", JUNK_KINDS)
def test_junk_frame_of_each_kind_comes_before_the_reply(
    sample_server: SampleServer, ws: websocket.WebSocket, kind: str
) -> None:
    """junk_every=1 sends one junk frame of the given kind before each reply."""
    sample_server.faults.junk_kinds = (kind,)
    sample_server.faults.junk_every = 1
    send(ws, 1, "GetDocument", {"id": "doc-1"})
    junk_check(kind)(*ws.recv_data())
    assert recv_json(ws) == {"id": 1, "result": PROTOCOL_DOCUMENT}
    assert sample_server.stats.junk_frames_sent == 1


def test_junk_kinds_are_sent_in_turn_before_every_nth_reply(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """junk_every=2 cycles through junk_kinds before replies 2, 4, 6."""
    sample_server.faults.junk_kinds = ("text", "binary")
    sample_server.faults.junk_every = 2
    for request_id in range(1, 7):
        send(ws, request_id, "GetDocument", {"id": "doc-1"})
    frames = [ws.recv_data() for _ in range(9)]
    binary, text = websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT
    junk_at = {1: "text", 4: "binary", 7: "text"}
    for index, (opcode, data) in enumerate(frames):
        if index in junk_at:
            junk_check(junk_at[index])(opcode, data)
        else:
            assert opcode == text and json.loads(data)["result"]["id"] == "doc-1"
    assert [json.loads(d)["id"] for o, d in frames if o != binary and d.startswith(b"{")] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def test_duplicate_every_sends_every_nth_reply_twice(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """duplicate_every=2 sends replies 2 and 4 twice."""
    sample_server.faults.duplicate_every = 2
    for request_id in range(1, 5):
        send(ws, request_id, "GetDocument", {"id": "doc-1"})
    assert [recv_json(ws)["id"] for _ in range(6)] == [1, 2, 2, 3, 4, 4]
    assert sample_server.stats.duplicates_sent == 2


def test_notify_every_sends_document_changed_after_every_nth_reply(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """notify_every=2 follows reply 2 with DocumentChanged for that request's document."""
    sample_server.faults.notify_every = 2
    send(ws, 1, "GetDocument", {"id": "doc-1"})
    send(ws, 2, "GetWidgetProperties", {"id": "doc-2/c1/w1"})
    messages = [recv_json(ws) for _ in range(3)]
    assert [m.get("id") for m in messages[:2]] == [1, 2]
    assert messages[2] == {"method": "DocumentChanged", "params": {"id": "doc-2"}}


def test_error_for_answers_that_id_with_the_code(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """error_for gives an error reply with the chosen code; other ids are answered."""
    sample_server.faults.error_for = {"doc-1": 503, "doc-1/c1": 500}
    reply = call(ws, 1, "GetDocument", {"id": "doc-1"})
    assert reply["error"]["code"] == 503 and reply["error"]["data"] == {"id": "doc-1"}
    assert call(ws, 2, "GetWidgetContainer", {"id": "doc-1/c1"})["error"]["code"] == 500
    assert call(ws, 3, "GetDocument", {"id": "doc-2"})["result"]["id"] == "doc-2"


def test_result_for_replaces_that_ids_result(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """result_for sends the chosen result (any JSON, shape broken on purpose) for that id."""
    sample_server.faults.result_for = {"doc-1": ["not", "an", "object"]}
    assert call(ws, 1, "GetDocument", {"id": "doc-1"})["result"] == ["not", "an", "object"]
    assert call(ws, 2, "GetDocument", {"id": "doc-2"})["result"]["id"] == "doc-2"


def test_faults_changed_while_running_apply_to_the_next_request(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """Assigning a fault from the test thread changes the very next request's reply."""
    assert "result" in call(ws, 1, "GetDocument", {"id": "doc-1"})
    sample_server.faults.error_for["doc-1"] = 500
    assert call(ws, 2, "GetDocument", {"id": "doc-1"})["error"]["code"] == 500
    del sample_server.faults.error_for["doc-1"]
    assert "result" in call(ws, 3, "GetDocument", {"id": "doc-1"})


def test_idle_timeout_closes_with_1001(sample_server: SampleServer) -> None:
    """A connection that sends nothing for idle_timeout is closed with code 1001."""
    sample_server.faults.idle_timeout = 0.3
    client = connect(sample_server)
    try:
        assert call(client, 1, "GetDocument", {"id": "doc-1"})["id"] == 1
        assert close_code(client) == 1001
    finally:
        client.close()
    assert sample_server.stats.idle_closes == 1


@pytest.mark.timeout(30)
def test_max_in_flight_answers_the_excess_with_429(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """With 2 replies pending (latency) on a connection, further requests get 429 at once."""
    sample_server.faults.latency = 2.0
    sample_server.faults.max_in_flight = 2
    for request_id in range(1, 6):
        send(ws, request_id, "GetDocument", {"id": "doc-1"})
    replies = [recv_json(ws) for _ in range(5)]
    busy = [r["id"] for r in replies if r.get("error", {}).get("code") == 429]
    answered = [r["id"] for r in replies if "result" in r]
    assert busy == [3, 4, 5]  # sent at once, before the delayed replies
    assert sorted(answered) == [1, 2]


@pytest.mark.parametrize("status", [401, 403, 429, 503])
def test_refuse_status_refuses_every_handshake(sample_server: SampleServer, status: int) -> None:
    """refuse_status refuses handshakes with that HTTP status until switched off."""
    sample_server.faults.refuse_status = status
    assert handshake_status(sample_server) == status
    assert handshake_status(sample_server) == status
    sample_server.faults.refuse_status = None
    client = connect(sample_server)
    assert call(client, 1, "ListDocuments", {})["id"] == 1
    client.close()
    assert sample_server.stats.handshakes_refused == 2
    assert sample_server.stats.connections_opened == 1


def test_refuse_count_refuses_only_the_next_handshakes(sample_server: SampleServer) -> None:
    """refuse_count=2 refuses two handshakes, then accepts."""
    sample_server.faults.refuse_status = 503
    sample_server.faults.refuse_count = 2
    assert handshake_status(sample_server) == 503
    assert handshake_status(sample_server) == 503
    client = connect(sample_server)
    assert call(client, 1, "GetDocument", {"id": "doc-1"})["id"] == 1
    client.close()
    assert sample_server.faults.refuse_count == 0


def test_redirect_to_answers_302_with_location(sample_server: SampleServer) -> None:
    """redirect_to answers the handshake with 302 and the Location header."""
    sample_server.faults.redirect_to = "ws://127.0.0.1:9/elsewhere"
    connection = http.client.HTTPConnection("127.0.0.1", sample_server.port, timeout=10)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        headers = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        }
        connection.request("GET", "/api", headers=headers)
        response = connection.getresponse()
        assert response.status == 302
        assert response.getheader("Location") == "ws://127.0.0.1:9/elsewhere"
    finally:
        connection.close()
    assert sample_server.stats.handshakes_refused == 1


def test_redirect_is_followed_to_another_server(sample_server: SampleServer) -> None:
    """A client that follows the 302 ends up talking to the server it points at."""
    with run_sample_server(faults=Faults(redirect_to=sample_server.url)) as redirecting:
        client = websocket.create_connection(redirecting.url, timeout=10)
        assert call(client, 1, "GetDocument", {"id": "doc-1"})["id"] == 1
        client.close()
        assert redirecting.stats.connections_opened == 0
    assert sample_server.stats.connections_opened == 1


@pytest.mark.timeout(30)
def test_handshake_delay_holds_the_handshake(sample_server: SampleServer) -> None:
    """handshake_delay makes a short connect timeout expire; a patient client gets in."""
    sample_server.faults.handshake_delay = 1.0
    with pytest.raises(websocket.WebSocketTimeoutException):
        connect(sample_server, timeout=0.1)
    started = time.monotonic()
    client = connect(sample_server, timeout=15)
    elapsed = time.monotonic() - started
    client.close()
    assert elapsed >= 0.9  # a lower bound only: a loaded machine is slower, never faster


# Tokens and TLS.


@pytest.fixture
def token_server() -> Iterator[SampleServer]:
    """A sample server that accepts token "reader" and knows "no-reader" (may not read)."""
    with run_sample_server(tokens={"reader": True, "no-reader": False}) as server:
        yield server


def test_token_missing_is_401(token_server: SampleServer) -> None:
    """No Authorization header is refused with 401."""
    assert handshake_status(token_server) == 401


@pytest.mark.parametrize("header", ["Bearer wrong", "Basic cmVhZGVyOg==", "Bearer", "reader"])
def test_token_wrong_is_401(token_server: SampleServer, header: str) -> None:
    """An unknown token, or a malformed Authorization header, is refused with 401."""
    assert handshake_status(token_server, header={"Authorization": header}) == 401


def test_token_that_may_not_read_is_403(token_server: SampleServer) -> None:
    """A known token that may not read is refused with 403."""
    assert handshake_status(token_server, header={"Authorization": "Bearer no-reader"}) == 403


def test_token_that_may_read_is_accepted(token_server: SampleServer) -> None:
    """A token that may read gets in, and the handshake headers are recorded."""
    client = connect(token_server, header={"Authorization": "Bearer reader"})
    assert call(client, 1, "GetDocument", {"id": "doc-1"})["id"] == 1
    client.close()
    headers = token_server.stats.handshake_headers[-1]
    assert headers["authorization"] == "Bearer reader"
    assert headers["host"] == f"127.0.0.1:{token_server.port}"


def test_tokens_stay_out_of_the_log(
    token_server: SampleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Even at DEBUG, where websockets logs handshake headers, the token is not logged."""
    with caplog.at_level(logging.DEBUG):
        client = connect(token_server, header={"Authorization": "Bearer reader"})
        assert call(client, 1, "GetDocument", {"id": "doc-1"})["id"] == 1
        client.close()
        handshake_status(token_server, header={"Authorization": "Bearer not-a-reader"})
    messages = [record.getMessage() for record in caplog.records]
    # The header is logged, its value is not.
    assert any("authorization" in m.lower() for m in messages)
    assert not any("Bearer reader" in m or "not-a-reader" in m for m in messages)


def test_tls_serves_wss(ca: trustme.CA) -> None:
    """Given an SSLContext the server speaks wss:// with a certificate a client can verify."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    with run_sample_server(ssl_context=server_context) as server:
        assert server.url == f"wss://127.0.0.1:{server.port}"
        client = connect(server, sslopt={"context": client_tls_context(ca)})
        assert call(client, 1, "GetDocument", {"id": "doc-1"})["result"] == PROTOCOL_DOCUMENT
        client.close()


# Server-side actions and the server's life.


def test_notify_reaches_every_open_connection(sample_server: SampleServer) -> None:
    """notify() sends one notification to each open connection."""
    with open_clients(sample_server, 2) as clients:
        assert sample_server.notify("DocumentChanged", {"id": "doc-3"}) == 2
        for client in clients:
            assert recv_json(client) == {"method": "DocumentChanged", "params": {"id": "doc-3"}}


def test_send_raw_sends_text_and_binary_frames(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """send_raw() sends a str as a text frame and bytes as a binary frame, unchanged."""
    wait_until(lambda: sample_server.stats.open_connections == 1)
    assert sample_server.send_raw("{not json") == 1
    assert sample_server.send_raw(b"\x00\x01") == 1
    assert ws.recv_data() == (websocket.ABNF.OPCODE_TEXT, b"{not json")
    assert ws.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"\x00\x01")


def test_drop_connections_aborts_every_connection(sample_server: SampleServer) -> None:
    """drop_connections() aborts every open connection without a close frame."""
    with open_clients(sample_server, 3) as clients:
        assert sample_server.drop_connections() == 3
        for client in clients:
            assert_connection_aborted(client)
        wait_until(lambda: sample_server.stats.open_connections == 0)


def test_stats_count_connections_requests_and_replies(
    sample_server: SampleServer, ws: websocket.WebSocket
) -> None:
    """Stats count connections, requests by method (unknown and invalid apart) and replies."""
    call(ws, 1, "GetDocument", {"id": "doc-1"})
    call(ws, 2, "GetDocument", {"id": "nope"})
    call(ws, 3, "ListDocuments", {})
    call(ws, 4, "Frobnicate", {})
    ws.send("junk")
    recv_json(ws)
    stats = sample_server.stats
    assert stats.connections_opened == 1 and stats.open_connections == 1
    assert stats.requests == 5 and stats.replies_sent == 5
    assert dict(stats.requests_by_method) == {
        "GetDocument": 2,
        "ListDocuments": 1,
        "(unknown)": 1,
        "(invalid)": 1,
    }
    assert stats.handshakes == 1 and stats.handshakes_refused == 0


def test_leaving_the_with_block_closes_connections_with_1001() -> None:
    """Stopping the server closes open connections with 1001 and joins its thread."""
    codes: List[int] = []
    with run_sample_server() as server:
        client = connect(server)
        thread = next(t for t in threading.enumerate() if t.name.startswith("inspector-sample"))
        assert thread.daemon
        reader = threading.Thread(target=lambda: codes.append(close_code(client)))
        reader.start()
    assert not thread.is_alive()
    reader.join(10)
    client.close()
    assert codes == [1001]


@pytest.mark.timeout(25)
def test_stopping_cuts_short_delayed_and_silent_handshakes() -> None:
    """Stopping answers a handshake held by handshake_delay with 503 and drops silent sockets."""
    errors: List[BaseException] = []
    with run_sample_server(faults=Faults(handshake_delay=60.0)) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)

        def patient_client() -> None:
            try:
                connect(server, timeout=30)
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)

        waiting = threading.Thread(target=patient_client)
        waiting.start()
        wait_until(lambda: server.stats.handshakes == 1)
    waiting.join(10)
    try:  # closed by the server rather than left waiting 30 s for a handshake request
        assert silent.recv(1) == b""
    except ConnectionResetError:
        pass
    finally:
        silent.close()
    assert len(errors) == 1
    assert isinstance(errors[0], websocket.WebSocketBadStatusException)
    assert errors[0].status_code == 503


def test_several_servers_run_at_once() -> None:
    """Two servers run side by side on their own ports, threads and faults."""
    with run_sample_server() as first, run_sample_server(faults=Faults(silent_every=1)) as second:
        assert first.port != second.port
        client = connect(first)
        assert call(client, 1, "GetDocument", {"id": "doc-1"})["id"] == 1
        client.close()
        assert second.faults.silent_every == 1 and first.faults.silent_every == 0


def test_port_in_use_fails_start_with_oserror(sample_server: SampleServer) -> None:
    """Starting a server on a port already listened on raises OSError and leaves no thread."""
    with pytest.raises(OSError), run_sample_server(port=sample_server.port):
        pass


def test_calls_after_stop_raise() -> None:
    """notify() on a stopped server raises RuntimeError; stop() may be called again."""
    with run_sample_server() as server:
        pass
    with pytest.raises(RuntimeError):
        server.notify("DocumentChanged", {"id": "doc-1"})
    server.stop()


def test_faults_validate_values() -> None:
    """Faults rejects out-of-range values, at construction and on assignment."""
    with pytest.raises(ValueError):
        Faults(latency=-1.0)
    with pytest.raises(ValueError):
        Faults(junk_kinds=("text", "gibberish"))
    with pytest.raises(ValueError):
        Faults(refuse_status=101)
    faults = Faults()
    with pytest.raises(ValueError):
        faults.silent_every = -2
    faults.silent_ids = {"doc-1"}  # type: ignore[assignment]  # converted on assignment
    assert faults.silent_ids == frozenset({"doc-1"})


# The command line.


def serve_parser() -> argparse.ArgumentParser:
    """A parser with the serve options, as the real command line builds it."""
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser


SERVE_SCRIPT = (
    "import argparse, sys\n"
    "from inspector.server import add_serve_arguments, serve_from_args\n"
    "parser = argparse.ArgumentParser()\n"
    "add_serve_arguments(parser)\n"
    "sys.exit(serve_from_args(parser.parse_args()))\n"
)


def start_serve_process(
    *options: str, env: Optional[Dict[str, str]] = None
) -> Tuple[subprocess.Popen[str], str]:
    """Run serve_from_args in a subprocess; return it and the URL from its listening line."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.fullmatch(r"listening on (wss?://127\.0\.0\.1:(\d+))\n", line)
    if match is None:
        process.kill()
        _, errors = process.communicate()
        pytest.fail(f"unexpected first line {line!r}; stderr: {errors}")
    return process, match.group(1)


def stop_serve_process(process: subprocess.Popen[str], signal_number: int) -> Tuple[int, str]:
    """Send the signal; return the exit status and everything written to stderr."""
    process.send_signal(signal_number)
    try:
        _, errors = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, errors


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_serve_from_args_subprocess_answers_and_exits_cleanly(signal_number: int) -> None:
    """The serve command prints its URL, answers every method and exits 0 on SIGINT/SIGTERM."""
    process, url = start_serve_process()
    try:
        client = websocket.create_connection(url, timeout=10)
        assert call(client, 1, "GetDocument", {"id": "doc-1"})["result"] == PROTOCOL_DOCUMENT
        assert call(client, 2, "GetWidgetContainer", {"id": "doc-1/c1"})["result"]["id"]
        assert call(client, 3, "GetWidgetProperties", {"id": "doc-1/c1/w1"})["result"]["id"]
        assert len(call(client, 4, "ListDocuments", {})["result"]["documentIds"]) >= 20
        client.close()
    finally:
        status, errors = stop_serve_process(process, signal_number)
    assert status == 0
    assert "Traceback" not in errors
    assert process.stdout is not None


@pytest.mark.timeout(60)
def test_serve_from_args_token_tls_and_faults(tmp_path: Path, ca: trustme.CA) -> None:
    """--token-env, --certfile and fault options all take effect in the served process."""
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    process, url = start_serve_process(
        "--certfile", str(pem), "--token-env", "SAMPLE_TOKEN", "--error-for", "doc-2=503",
        env={"SAMPLE_TOKEN": "s3cret-token"},
    )  # fmt: skip
    try:
        assert url.startswith("wss://")
        sslopt = {"context": client_tls_context(ca)}
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url, timeout=10, sslopt=sslopt)
        assert refused.value.status_code == 401
        header = {"Authorization": "Bearer s3cret-token"}
        client = websocket.create_connection(url, timeout=10, sslopt=sslopt, header=header)
        assert call(client, 1, "GetDocument", {"id": "doc-2"})["error"]["code"] == 503
        assert call(client, 2, "GetDocument", {"id": "doc-1"})["result"]["id"] == "doc-1"
        client.close()
    finally:
        status, errors = stop_serve_process(process, signal.SIGINT)
    assert status == 0 and "Traceback" not in errors


def test_serve_options_build_faults() -> None:
    """Every fault option lands on the matching Faults attribute."""
    args = serve_parser().parse_args(
        [
            "--latency", "0.5", "--jitter", "0.25", "--silent-every", "7",
            "--silent-id", "doc-1", "--silent-id", "doc-2/c1", "--drop-after", "9",
            "--junk-every", "3", "--junk-kinds", "text,deep", "--duplicate-every", "4",
            "--notify-every", "5", "--error-for", "doc-3=500", "--error-for", "a=b=404",
            "--idle-timeout", "2.5", "--max-in-flight", "8", "--refuse-status", "503",
            "--refuse-count", "2", "--redirect-to", "ws://elsewhere:1", "--handshake-delay", "1.5",
        ]
    )  # fmt: skip
    assert faults_from_args(args) == Faults(
        latency=0.5,
        jitter=0.25,
        silent_every=7,
        silent_ids=frozenset({"doc-1", "doc-2/c1"}),
        drop_after=9,
        junk_every=3,
        junk_kinds=("text", "deep"),
        duplicate_every=4,
        notify_every=5,
        error_for={"doc-3": 500, "a=b": 404},
        idle_timeout=2.5,
        max_in_flight=8,
        refuse_status=503,
        refuse_count=2,
        redirect_to="ws://elsewhere:1",
        handshake_delay=1.5,
    )
    defaults = serve_parser().parse_args([])
    assert (defaults.host, defaults.port) == ("127.0.0.1", 8765)
    assert faults_from_args(defaults) == Faults()


def test_serve_document_options_parse() -> None:
    """--generated, --mutate-every, --seed and --ignore-paging reach args and Faults."""
    args = serve_parser().parse_args(
        ["--generated", "100000", "--mutate-every", "0.5", "--seed", "3", "--ignore-paging"]
    )
    assert (args.generated, args.mutate_every, args.seed) == (100_000, 0.5, 3)
    assert faults_from_args(args) == Faults(ignore_paging=True)
    defaults = serve_parser().parse_args([])
    assert (defaults.generated, defaults.mutate_every, defaults.seed) == (0, None, None)


def test_serve_help_documents_the_document_options() -> None:
    """serve --help names every option this module adds for changing documents and paging."""
    text = serve_parser().format_help()
    for option in ("--generated", "--mutate-every", "--seed", "--ignore-paging"):
        assert option in text


@pytest.mark.parametrize(
    ("options", "named"),
    [(["--generated", "-1"], "generated"), (["--mutate-every", "0"], "mutate_every")],
)
def test_serve_from_args_with_bad_document_options_exits_2(
    capsys: pytest.CaptureFixture[str], options: List[str], named: str
) -> None:
    """A document option out of range exits 2 with one line naming it, serving nothing."""
    assert serve_from_args(serve_parser().parse_args(["--port", "0", *options])) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and named in captured.err and "Traceback" not in captured.err


@pytest.mark.timeout(60)
def test_serve_from_args_generates_pages_and_mutates() -> None:
    """serve --generated --mutate-every --seed: pages the listing and sends notifications."""
    process, url = start_serve_process("--generated", "5", "--mutate-every", "0.05", "--seed", "1")
    try:
        client = websocket.create_connection(url, timeout=10)
        results = list_pages(client, 10)
        notification = recv_json(client)
        client.close()
    finally:
        status, errors = stop_serve_process(process, signal.SIGTERM)
    ids = [i for result in results for i in result["documentIds"]]
    # Documents may come and go while the pages are read: the generated ones that are there
    # come in order, once each, after the catalog's.
    generated = [i for i in ids if i.startswith("gen-")]
    assert len(ids) == len(set(ids)) >= 20 and len(results) >= 3
    assert generated == sorted(generated) and generated
    assert set(generated) <= {listed_generated_id(n) for n in range(1, 6)}
    assert notification["method"] in ("DocumentChanged", "DocumentRemoved")
    assert status == 0 and "Traceback" not in errors


@pytest.mark.parametrize(
    "options", [["--junk-kinds", "text,bogus"], ["--error-for", "doc-1"], ["--port", "x"]]
)
def test_serve_rejects_malformed_options(options: List[str]) -> None:
    """Malformed option values are argparse errors."""
    with pytest.raises(SystemExit):
        serve_parser().parse_args(options)


def test_serve_from_args_without_the_token_variable_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--token-env naming an unset variable exits 2 with a message, serving nothing."""
    monkeypatch.delenv("INSPECTOR_TEST_NO_SUCH_TOKEN", raising=False)
    args = serve_parser().parse_args(["--port", "0", "--token-env", "INSPECTOR_TEST_NO_SUCH_TOKEN"])
    assert serve_from_args(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "INSPECTOR_TEST_NO_SUCH_TOKEN" in captured.err


def test_serve_from_args_with_out_of_range_fault_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fault value out of range exits 2 with a message."""
    assert serve_from_args(serve_parser().parse_args(["--latency", "-1"])) == 2
    assert "latency" in capsys.readouterr().err
