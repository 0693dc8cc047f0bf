"""A whole Connection against servers that misbehave on purpose (issue 10), end to end.

The servers are raw sockets (tests/hostile_peers.py). Units of the same rules are tested in
test_protocol.py and test_handshake.py; here each rule is shown to hold where it matters, in
a live connection, with memory measured by tracemalloc where memory is the point.
"""

from __future__ import annotations

import gc
import json
import os
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from typing import Callable, List, Optional

import pytest
from hostile_peers import (
    OP_CLOSE,
    OP_CONTINUATION,
    OP_TEXT,
    Peer,
    hostile_server,
    server_frame,
)
from support import MS, wait_until

from inspector import Connection
from inspector.connection import MAX_QUEUED_NOTIFICATIONS
from inspector.exceptions import (
    ConnectionLost,
    InspectorError,
    InvalidArgument,
    ProtocolError,
    RequestTimeout,
    ServerError,
)

MiB = 2**20
TOKEN = "tok-5f3a9c1e7d"


def flood_of_fragments(fragment: bytes, frames: int) -> Callable[[Peer], None]:
    """Answer the first request with one text fragment then ``frames`` continuations."""

    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_frame(b'{"id":1,"result":', OP_TEXT, fin=False)
        per_chunk = max(1, 65536 // (len(fragment) + 2))  # 64 KiB: the server's memory is
        chunk = server_frame(fragment, OP_CONTINUATION, fin=False) * per_chunk  # traced too
        for _ in range(frames // per_chunk):
            peer.send(chunk)
        peer.send_frame(b"1}", OP_CONTINUATION)
        peer.drain()

    return script


@pytest.mark.parametrize("fragment", [b"", b"ab"], ids=["empty", "two-byte"])
def test_fragment_flood_is_refused_within_max_message_size(fragment: bytes) -> None:
    """Empty or two-byte fragments are refused before the memory they hold reaches the limit.

    Before issue 10, two-byte fragments held ~21 bytes per payload byte (+478 MB at the
    default limit) and empty ones were never refused. Now the growth stays under the limit.
    """
    limit = MiB
    with hostile_server(flood_of_fragments(fragment, 2_000_000)) as server:
        with Connection(server.url, max_message_size=limit, ping_interval=None) as conn:
            tracemalloc.start()
            try:
                with pytest.raises(ProtocolError, match="max_message_size"):
                    conn.call("GetDocument", {"id": "doc-1"}, timeout=30_000 * MS)
                _, peak = tracemalloc.get_traced_memory()
                held, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < limit, f"peak {peak} bytes"
    assert held < limit // 4, f"{held} bytes still held after the error"  # 64 KiB: the server


def test_memory_of_a_refused_message_is_freed_while_the_connection_lives() -> None:
    """After the refusal nothing of the message is held, though the Connection is alive."""
    limit = 4 * MiB
    with hostile_server(flood_of_fragments(b"x" * 1000, 10_000_000)) as server:
        conn = Connection(server.url, max_message_size=limit, ping_interval=None)
        tracemalloc.start()
        try:
            with pytest.raises(ProtocolError, match="max_message_size"):
                conn.call("GetDocument", {"id": "doc-1"}, timeout=30_000 * MS)
            peak = tracemalloc.get_traced_memory()[1]
            # What the package's own code still holds: other threads of this process (a
            # session's Dask cluster, say) allocate meanwhile, and are not the point.
            ours = tracemalloc.Filter(True, os.path.join("*", "inspector", "*"))
            held = sum(stat.size for stat in
                       tracemalloc.take_snapshot().filter_traces([ours]).statistics("filename"))
        finally:
            tracemalloc.stop()
            conn.close()
    assert peak > limit // 2  # the attack did make it hold something
    assert held < 256 * 1024, f"{held} bytes still held"


def test_text_that_is_not_utf8_fails_the_connection_with_1007() -> None:
    """A reply that is not UTF-8 fails the call at once and the client closes with 1007."""
    codes: List[Optional[int]] = []

    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_frame(b'{"id":1,"result":"\xff\xfe"}')
        codes.append(peer.read_close_code())

    with hostile_server(script) as server:
        with Connection(server.url, ping_interval=None) as conn:
            with pytest.raises(ProtocolError, match="UTF-8"):
                conn.call("GetDocument", {"id": "doc-1"}, timeout=10_000 * MS)
        server.done.wait(10_000 * MS)
    assert codes == [1007]


def closing_with(code: int, codes: List[Optional[int]]) -> Callable[[Peer], None]:
    """Close at the first request with ``code``; record the code the client answers with."""

    def script(peer: Peer) -> None:
        peer.read_request()
        peer.send_frame(struct.pack("!H", code) + b"bye", OP_CLOSE)
        codes.append(peer.read_close_code())

    return script


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 2000, 5000])
def test_close_code_a_peer_may_not_send_is_answered_with_1002(code: int) -> None:
    """RFC 6455 7.4: a reserved or local-only close code is a protocol error, 1002."""
    codes: List[Optional[int]] = []
    with hostile_server(closing_with(code, codes)) as server:
        with Connection(server.url, ping_interval=None) as conn:
            with pytest.raises(ProtocolError, match=str(code)):
                conn.call("GetDocument", {"id": "doc-1"}, timeout=10_000 * MS)
        server.done.wait(10_000 * MS)
    assert codes == [1002]


@pytest.mark.parametrize("code", [1000, 1001, 1011, 4000])
def test_valid_close_code_is_echoed(code: int) -> None:
    """A code a peer may send is echoed, as RFC 6455 5.5.1 suggests."""
    codes: List[Optional[int]] = []
    with hostile_server(closing_with(code, codes)) as server:
        with Connection(server.url, ping_interval=None) as conn:
            with pytest.raises(Exception, match=f"code {code}"):
                conn.call("GetDocument", {"id": "doc-1"}, timeout=10_000 * MS)
        server.done.wait(10_000 * MS)
    assert codes == [code]


def test_huge_error_message_and_id_make_a_short_escaped_message() -> None:
    """A 12 MiB error message with escapes, for an 8 MiB id, gives a message under 1 KB."""
    message = "\x1b[2J\x1b[31m" + "m" * (12 * MiB)

    def script(peer: Peer) -> None:
        request = peer.read_request()
        peer.send_json({"id": request["id"], "error": {"code": 500, "message": message}})
        peer.echo_close()

    document_id = "\x1b]0;title\x07" + "d" * (8 * MiB)
    with hostile_server(script) as server:
        with Connection(server.url, ping_interval=None) as conn:
            with pytest.raises(ServerError) as caught:
                conn.call("GetDocument", {"id": document_id}, timeout=30_000 * MS)
    text = str(caught.value)
    assert len(text) < 1000 and "\x1b" not in text and "\x07" not in text
    assert caught.value.message == message  # the attribute keeps it whole


@pytest.mark.parametrize("status", [400, 401, 503])
def test_command_line_never_shows_a_reflected_token(status: int) -> None:
    """The command line's stderr holds no token when a refusal reflects it."""

    def refuse(peer: Peer) -> None:
        echoed = (peer.header("Authorization") or "").encode()
        body = b"you sent: " + peer.request
        peer.send(b"HTTP/1.1 %d %s\r\nX-Echo: %s\r\nContent-Length: %d\r\n\r\n"
                  % (status, echoed, echoed, len(body)) + body)

    with hostile_server(refuse, handshake=False) as server:
        child = subprocess.run(
            [sys.executable, "-m", "inspector", "inspect", "doc-1", "--url", server.url,
             "--timeout", str(10_000 * MS)],
            env={**os.environ, "INSPECTOR_TOKEN": TOKEN},
            capture_output=True, text=True, timeout=60_000 * MS,
        )
    assert child.returncode in (1, 2)
    assert TOKEN not in child.stderr and TOKEN not in child.stdout
    assert str(status) in child.stderr and "Traceback" not in child.stderr


def test_one_hostile_reply_does_not_harm_other_connections() -> None:
    """Protocol failures stay on their connection: a polite one beside it carries on."""

    def polite(peer: Peer) -> None:
        request = peer.read_request()
        peer.send_json({"id": request["id"], "result": {"ok": True}})
        peer.echo_close()

    with hostile_server(flood_of_fragments(b"", 2_000_000)) as bad, hostile_server(
        polite
    ) as good:
        with Connection(bad.url, max_message_size=MiB, ping_interval=None) as hostile_conn:
            with Connection(good.url, ping_interval=None) as polite_conn:
                with pytest.raises(ProtocolError):
                    hostile_conn.call("GetDocument", {"id": "x"}, timeout=30_000 * MS)
                assert polite_conn.call("GetDocument", {"id": "y"}) == {"ok": True}
    assert json.dumps({"ok": True})


# --- the connection's half: floods, junk replies, arguments, exit (issue 10 phase 2) ---------


def test_ping_flood_from_a_server_that_never_reads_holds_no_pongs() -> None:
    """50 MB of pings, none of our pongs read: pongs are coalesced, memory stays flat.

    Before issue 10 every pong was buffered: +123 MB after 2.4 s, one for one with the flood.
    """
    ping = server_frame(b"p" * 125, 0x9)

    def script(peer: Peer) -> None:
        peer.read_request()
        chunk = ping * 500
        for _ in range(50_000_000 // len(chunk)):
            peer.send(chunk)
        peer.send_json({"id": 1, "result": "done"})
        peer.drain()

    with hostile_server(script) as server:
        with Connection(server.url, ping_interval=None, close_timeout=1_000 * MS) as conn:
            tracemalloc.start()
            try:
                assert conn.call("GetDocument", {"id": "doc-1"}, timeout=60_000 * MS) == "done"
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < MiB, f"peak {peak} bytes"


def test_server_that_reads_nothing_is_a_dead_peer() -> None:
    """Requests the server never reads: the connection is lost after ping_timeout, not held."""
    server_done = threading.Event()

    def script(peer: Peer) -> None:
        peer.read_request()
        server_done.wait(30_000 * MS)  # reads nothing more

    big = "x" * MiB
    error: Optional[BaseException] = None
    with hostile_server(script) as server:
        try:
            with Connection(server.url, ping_interval=None, ping_timeout=500 * MS,
                            max_in_flight=None, close_timeout=500 * MS) as conn:
                started = time.monotonic()
                futures = []
                # Until the kernel's buffers are full and the stall has lasted ping_timeout
                # (which may come while requests are still being made, on a loaded machine).
                while error is None and time.monotonic() - started < 20_000 * MS:
                    try:
                        futures.append(conn.request("GetDocument", {"id": big},
                                                    timeout=30_000 * MS))
                    except InspectorError as exc:
                        error = exc
                    if error is None and len(futures) >= 64:
                        error = futures[-1].exception(30_000 * MS)
                elapsed = time.monotonic() - started
        finally:
            server_done.set()  # before the server is stopped, which waits for the script
    assert isinstance(error, ConnectionLost), error
    assert "read nothing for ping_timeout" in str(error)
    assert elapsed < 20_000 * MS


def notification_flood(count: int, size: int = 0) -> Callable[[Peer], None]:
    """Send ``count`` numbered notifications, then answer the first request."""

    def script(peer: Peer) -> None:
        request = peer.read_request()
        padding = "p" * size
        chunk: List[bytes] = []
        for number in range(count):
            text = json.dumps({"method": "DocumentChanged",
                               "params": {"id": f"doc-{number}", "pad": padding}})
            chunk.append(server_frame(text.encode()))
            if len(chunk) == 1000:
                peer.send(b"".join(chunk))
                chunk.clear()
        peer.send(b"".join(chunk))
        peer.send_json({"id": request["id"], "result": "sent"})
        peer.echo_close()

    return script


def test_notification_flood_to_a_stuck_subscriber_drops_the_oldest() -> None:
    """A stuck subscriber: at most 10,000 wait, the oldest are dropped and counted.

    Before issue 10, 10^5 notifications a second queued without bound (+218 MB in 5 s).
    """
    count = 100_000
    release = threading.Event()
    received: List[str] = []

    def subscriber(method: str, params: dict) -> None:
        release.wait(30_000 * MS)
        received.append(params["id"])

    with hostile_server(notification_flood(count)) as server:
        with Connection(server.url, ping_interval=None) as conn:
            conn.subscribe(subscriber)
            tracemalloc.start()
            try:
                assert conn.call("GetDocument", {"id": "x"}, timeout=60_000 * MS) == "sent"
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            release.set()
            dropped = conn.stats.notifications_dropped
            wait_until(lambda: len(received) == count - dropped)
    # One was being delivered (the subscriber held it) when the rest arrived.
    assert dropped == count - 1 - MAX_QUEUED_NOTIFICATIONS
    assert received[0] == "doc-0" and received[1] == f"doc-{count - MAX_QUEUED_NOTIFICATIONS}"
    assert received[-1] == f"doc-{count - 1}"
    assert peak < 16 * MiB, f"peak {peak} bytes"


def test_queued_notifications_are_bounded_by_max_message_size_in_bytes() -> None:
    """Large notifications: what waits is bounded by max_message_size bytes as sent."""
    release = threading.Event()
    with hostile_server(notification_flood(2000, size=10_000)) as server:
        with Connection(server.url, ping_interval=None, max_message_size=MiB) as conn:
            conn.subscribe(lambda method, params: release.wait(30_000 * MS))
            assert conn.call("GetDocument", {"id": "x"}, timeout=60_000 * MS) == "sent"
            waiting = conn._session._notifier.queued
            release.set()
    assert 50 <= waiting <= MiB // 10_000
    assert conn.stats.notifications_dropped == 2000 - 1 - waiting


JUNK_REPLIES = {
    "no code": {"error": {"message": "m"}},
    "code that is a string": {"error": {"code": "500", "message": "m"}},
    "code that is a boolean": {"error": {"code": True, "message": "m"}},
    "error is a string": {"error": "boom"},
    "both a result and an error": {"result": 1, "error": {"code": 1, "message": "m"}},
    "neither a result nor an error": {"outcome": 1},
}


@pytest.mark.parametrize("reason", list(JUNK_REPLIES))
def test_junk_reply_fails_its_request_at_once_and_only_it(reason: str) -> None:
    """A junk reply for a pending id fails that call at once; the others are answered."""

    def script(peer: Peer) -> None:
        first, second = peer.read_request(), peer.read_request()
        peer.send_json({"id": first["id"], **JUNK_REPLIES[reason]})
        peer.send_json({"id": second["id"], "result": "fine"})
        peer.echo_close()

    with hostile_server(script) as server:
        with Connection(server.url, ping_interval=None) as conn:
            started = time.monotonic()
            junk = conn.request("GetDocument", {"id": "doc-1"}, timeout=30_000 * MS)
            fine = conn.request("GetDocument", {"id": "doc-2"}, timeout=30_000 * MS)
            with pytest.raises(ProtocolError, match=reason) as caught:
                junk.result(30_000 * MS)
            assert time.monotonic() - started < 5_000 * MS
            assert "GetDocument 'doc-1'" in str(caught.value)
            assert fine.result(30_000 * MS) == "fine"
            assert conn.stats.bad_replies == 1 and conn.is_open


def test_reply_holding_a_number_beyond_a_float_fails_naming_the_field() -> None:
    """``1e400`` in a reply fails that call with a ProtocolError naming the field."""

    def script(peer: Peer) -> None:
        request = peer.read_request()
        peer.send(server_frame(
            b'{"id":%d,"result":{"id":"w1","fontSize":1e400}}' % request["id"]
        ))
        peer.echo_close()

    with hostile_server(script) as server:
        with Connection(server.url, ping_interval=None) as conn:
            with pytest.raises(ProtocolError, match=r"'result\.fontSize' is 1e400"):
                conn.call("GetWidgetProperties", {"id": "w1"}, timeout=30_000 * MS)


def document_server(widget_text: bytes) -> Callable[[Peer], None]:
    """A one-document server whose only widget's reply is ``widget_text`` (raw JSON)."""

    def script(peer: Peer) -> None:
        while True:
            opcode, payload = peer.read_frame()
            if opcode == OP_CLOSE:
                peer.send_frame(payload[:2], OP_CLOSE)
                return
            if opcode != OP_TEXT:
                continue
            request = json.loads(payload)
            method, request_id = request["method"], request["id"]
            if method == "GetDocument":
                peer.send_json({"id": request_id, "result": {
                    "id": "doc-1", "type": "biDashboard", "name": "d",
                    "widgetContainerIds": ["doc-1/c1"]}})
            elif method == "GetWidgetContainer":
                peer.send_json({"id": request_id, "result": {
                    "id": "doc-1/c1", "widgetIds": ["doc-1/c1/w1"]}})
            else:
                peer.send(server_frame(b'{"id":%d,"result":%s}' % (request_id, widget_text)))

    return script


def test_command_line_never_writes_infinity() -> None:
    """A widget with fontSize 1e400: the command line fails the document, prints no Infinity.

    Before issue 10 it printed ``"fontSize": Infinity`` and exited 0.
    """
    widget = b'{"id":"doc-1/c1/w1","type":"chart","fontSize":1e400}'
    with hostile_server(document_server(widget)) as server:
        child = subprocess.run(
            [sys.executable, "-m", "inspector", "inspect", "doc-1", "--url", server.url,
             "--timeout", str(30_000 * MS)],
            capture_output=True, text=True, timeout=60_000 * MS,
        )
    assert "Infinity" not in child.stdout
    assert child.returncode == 1, child.stderr
    assert "fontSize" in child.stderr and "Traceback" not in child.stderr
    if child.stdout.strip():
        json.loads(child.stdout)


@pytest.mark.parametrize(
    "name, value",
    [("request_timeout", float("nan")), ("request_timeout", "5"), ("request_timeout", -1),
     ("connect_timeout", 0), ("close_timeout", "1"), ("ping_interval", -1.0),
     ("ping_timeout", float("nan")), ("max_message_size", 0), ("max_message_size", -1),
     ("max_message_size", 1.5), ("max_in_flight", 0), ("max_in_flight", True)],
)
def test_bad_connection_arguments_are_refused_naming_them(name: str, value: object) -> None:
    """Each public number is checked before anything is opened, InvalidArgument naming it."""
    with hostile_server(lambda peer: peer.drain()) as server:
        with pytest.raises(InvalidArgument, match=name):
            Connection(server.url, **{name: value})  # type: ignore[arg-type]
        assert server.peers == []


@pytest.mark.parametrize("value", [float("nan"), "5", -1.0, 0, True])
def test_bad_call_timeouts_are_refused_and_the_connection_carries_on(value: object) -> None:
    """timeout=nan/"5"/-1/0 raise InvalidArgument; nothing is sent; the connection works."""
    def script(peer: Peer) -> None:
        request = peer.read_request()
        peer.send_json({"id": request["id"], "result": request["params"]["id"]})
        peer.echo_close()

    with hostile_server(script) as server:
        with Connection(server.url, ping_interval=None) as conn:
            with pytest.raises(InvalidArgument, match="timeout"):
                conn.call("GetDocument", {"id": "a"}, timeout=value)  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument, match="timeout"):
                conn.request("GetDocument", {"id": "a"}, timeout=value)  # type: ignore[arg-type]
            assert conn.pending == 0
            assert conn.call("GetDocument", {"id": "b"}, timeout=10_000 * MS) == "b"


@pytest.mark.parametrize("value", [float("inf"), 1e300])
def test_infinite_timeout_means_no_limit_and_keeps_the_io_thread(value: float) -> None:
    """timeout=inf or 1e300 is no limit: the call works and so does every call after it.

    Before issue 10 it raised OverflowError and, without pings, killed the I/O thread.
    """

    def script(peer: Peer) -> None:
        for _ in range(2):
            request = peer.read_request()
            peer.send_json({"id": request["id"], "result": request["params"]["id"]})
        peer.echo_close()

    with hostile_server(script) as server:
        with Connection(server.url, ping_interval=None) as conn:
            assert conn.call("GetDocument", {"id": "a"}, timeout=value) == "a"
            assert conn.call("GetDocument", {"id": "b"}, timeout=10_000 * MS) == "b"


def test_timeout_message_with_a_huge_id_is_short() -> None:
    """A RequestTimeout for an 8 MiB document id has a message under 1 KB."""
    with hostile_server(lambda peer: peer.echo_close()) as server:
        with Connection(server.url, ping_interval=None) as conn:
            with pytest.raises(RequestTimeout) as caught:
                conn.call("GetDocument", {"id": "\x1b" + "d" * (8 * MiB)}, timeout=200 * MS)
    assert len(str(caught.value)) < 1000 and "\x1b" not in str(caught.value)


@pytest.mark.parametrize("ending", ["", "del conn\n"], ids=["exit", "del"])
def test_exit_is_not_held_by_a_server_that_never_answers_the_close(ending: str) -> None:
    """With close_timeout=30 s, a process whose server is silent still ends within seconds.

    Before issue 10 exit and del waited the whole close_timeout (5 s by default).
    """
    with hostile_server(lambda peer: peer.drain()) as server:
        script = (
            "import inspector\n"
            f"conn = inspector.Connection({server.url!r}, ping_interval=None, "
            "close_timeout=30)\n" + ending
        )
        started = time.monotonic()
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=60_000 * MS)
        elapsed = time.monotonic() - started
    assert child.returncode == 0, child.stderr
    assert elapsed < 10_000 * MS


def test_dropping_a_connection_does_not_wait_for_the_server() -> None:
    """``del conn`` with a silent server returns at once; the close goes on in the background."""
    with hostile_server(lambda peer: peer.drain()) as server:
        conn = Connection(server.url, ping_interval=None, close_timeout=30)
        started = time.monotonic()
        del conn
        gc.collect()
        elapsed = time.monotonic() - started
    assert elapsed < 1_000 * MS
