"""A whole Connection against servers that misbehave on purpose (issue 10), end to end.

The servers are raw sockets (tests/hostile_peers.py). Units of the same rules are tested in
test_protocol.py and test_handshake.py; here each rule is shown to hold where it matters, in
a live connection, with memory measured by tracemalloc where memory is the point.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
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
from support import MS

from inspector import Connection
from inspector.exceptions import ProtocolError, ServerError

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
            held, peak = tracemalloc.get_traced_memory()
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
