"""Tests of inspector.handshake: opening against servers that misbehave before the upgrade."""

from __future__ import annotations

import traceback
import tracemalloc
from typing import Callable

import pytest
from hostile_peers import Peer, hostile_server
from support import MS

from inspector import Connection
from inspector.exceptions import ConnectionFailed
from inspector.handshake import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MAX_HEADER_LINE,
    ResponseBounds,
)

TOKEN = "tok-5f3a9c1e7d"
COOKIE_SECRET = "cookie-secret"


# --- the bounds, as a pure core --------------------------------------------------------------


def test_bounds_accept_an_ordinary_response_fed_a_byte_at_a_time() -> None:
    """A normal response passes, however it is cut, and its status is read."""
    bounds = ResponseBounds("h:1")
    response = b"HTTP/1.1 503 Busy\r\nContent-Length: 5\r\n\r\nbusy."
    for index in range(len(response)):
        bounds.feed(response[index : index + 1])
    assert bounds.status == 503


def test_bounds_refuse_a_long_line() -> None:
    """One line over MAX_HEADER_LINE bytes fails, even with no newline yet."""
    bounds = ResponseBounds("h:1")
    bounds.feed(b"HTTP/1.1 101 OK\r\nX: ")
    with pytest.raises(ConnectionFailed, match=f"line over {MAX_HEADER_LINE} bytes"):
        bounds.feed(b"a" * MAX_HEADER_LINE)


def test_bounds_refuse_too_many_header_bytes() -> None:
    """Short lines that add up to more than MAX_HEADER_BYTES fail."""
    bounds = ResponseBounds("h:1")
    bounds.feed(b"HTTP/1.1 101 OK\r\n")
    with pytest.raises(ConnectionFailed, match=f"headers over {MAX_HEADER_BYTES} bytes"):
        for _ in range(MAX_HEADER_BYTES // 10 + 1):
            bounds.feed(b"X-A: 1234\r\n")


def test_bounds_refuse_a_long_body_keeping_the_status() -> None:
    """A refusal's body past MAX_BODY_BYTES fails with the refusal's status."""
    bounds = ResponseBounds("h:1")
    bounds.feed(b"HTTP/1.1 503 Busy\r\n\r\n" + b"x" * MAX_BODY_BYTES)
    with pytest.raises(ConnectionFailed, match="HTTP 503") as caught:
        bounds.feed(b"x")
    assert caught.value.status == 503


# --- against servers of our own --------------------------------------------------------------


def endless_header_line(peer: Peer) -> None:
    """Send a status line, then one header line that never ends."""
    peer.send(b"HTTP/1.1 101 Switching Protocols\r\nX-Endless: ")
    chunk = b"a" * 65536
    for _ in range(2000):  # 128 MiB at most: the client must give up long before
        peer.send(chunk)


def test_endless_header_line_fails_fast_in_bounded_memory() -> None:
    """An endless header line fails at MAX_HEADER_LINE bytes, holding well under 2 MiB."""
    with hostile_server(endless_header_line, handshake=False) as server:
        tracemalloc.start()
        try:
            with pytest.raises(ConnectionFailed, match="line over") as caught:
                Connection(server.url, connect_timeout=30_000 * MS)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert caught.value.status is None
    assert peak < 2 * 2**20, f"{peak} bytes held"


def test_endless_headers_fail_at_the_header_bound() -> None:
    """Endless short header lines fail at MAX_HEADER_BYTES."""

    def many_headers(peer: Peer) -> None:
        peer.send(b"HTTP/1.1 101 Switching Protocols\r\n")
        for index in range(100_000):
            peer.send(b"X-%d: 1\r\n" % index)

    with hostile_server(many_headers, handshake=False) as server:
        with pytest.raises(ConnectionFailed, match="headers over"):
            Connection(server.url, connect_timeout=30_000 * MS)


def test_refusal_with_an_endless_body_keeps_its_status() -> None:
    """A 503 whose body never ends is reported as a 503 once the body bound is passed."""

    def endless_body(peer: Peer) -> None:
        peer.send(b"HTTP/1.1 503 Busy\r\nContent-Length: 1000000000\r\n\r\n")
        for _ in range(2000):
            peer.send(b"b" * 65536)

    with hostile_server(endless_body, handshake=False) as server:
        with pytest.raises(ConnectionFailed, match="HTTP 503") as caught:
            Connection(server.url, connect_timeout=30_000 * MS)
    assert caught.value.status == 503


def reflecting_refusal(status: int) -> Callable[[Peer], None]:
    """A refusal that echoes the Authorization header in its reason, a header and its body."""

    def refuse(peer: Peer) -> None:
        echoed = (peer.header("Authorization") or "").encode()
        body = b"you sent:\r\n" + peer.request
        peer.send(
            b"HTTP/1.1 %d %s\r\nX-Echo: %s\r\nContent-Length: %d\r\n\r\n"
            % (status, echoed, echoed, len(body)) + body
        )

    return refuse


@pytest.mark.parametrize("status", [400, 401, 403, 429, 503])
def test_reflected_token_reaches_no_message_cause_or_traceback(status: int) -> None:
    """A refusal reflecting the token leaves it out of str, repr, the chain and the traceback."""
    with hostile_server(reflecting_refusal(status), handshake=False) as server:
        with pytest.raises(ConnectionFailed) as caught:
            Connection(server.url, token=TOKEN, headers={"Cookie": f"s={COOKIE_SECRET}"},
                       connect_timeout=10_000 * MS)
    error = caught.value
    assert error.status == status
    shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    cause = error.__cause__
    everything = [str(error), repr(error), shown, repr(vars(cause)) if cause else "",
                  repr(error.__context__)]
    assert not any(TOKEN in text or COOKIE_SECRET in text for text in everything)
    assert error.__context__ is None or error.__suppress_context__


def test_refusal_reason_is_printable_and_short() -> None:
    """A reason phrase with escape sequences and 8 KB of text is escaped and cut, cause too."""

    def refuse(peer: Peer) -> None:
        peer.send(b"HTTP/1.1 503 \x1b[2J" + b"z" * 8000 + b"\r\nContent-Length: 0\r\n\r\n")

    with hostile_server(refuse, handshake=False) as server:
        with pytest.raises(ConnectionFailed) as caught:
            Connection(server.url, connect_timeout=10_000 * MS)
    cause = str(caught.value.__cause__)
    assert "\x1b" not in str(caught.value) and "\x1b" not in cause
    assert "\\x1b[2J" in cause and len(cause) < 400 and len(str(caught.value)) < 400


CALLER_HEADERS = {
    "X-Api-Key": "k-123",
    "Cookie": "session=abc",
    "Private-Token": "p-1",
    "X-Team": "finance",
}


def test_redirect_to_another_origin_sends_no_credential_header() -> None:
    """Across origins only non-credential headers follow: X-Team yes; token, key, cookie no."""
    with hostile_server(lambda peer: peer.echo_close()) as target:

        def redirect(peer: Peer) -> None:
            peer.send(b"HTTP/1.1 302 Found\r\nLocation: %s/api\r\nContent-Length: 0\r\n\r\n"
                      % target.url.encode())

        with hostile_server(redirect, handshake=False) as origin:
            Connection(origin.url, token=TOKEN, headers=CALLER_HEADERS,
                       connect_timeout=10_000 * MS).close()
        assert origin.peers[0].header("X-Api-Key") == "k-123"
        arrived = target.peers[0]
        assert arrived.header("X-Team") == "finance"
        for name in ("Authorization", "X-Api-Key", "Cookie", "Private-Token"):
            assert arrived.header(name) is None, name


def test_redirect_within_the_origin_keeps_every_header() -> None:
    """A redirect to another path of the same origin sends every header again."""

    def redirect_once(peer: Peer) -> None:
        if len(server.peers) == 1:
            peer.send(b"HTTP/1.1 307 Temporary\r\nLocation: /elsewhere\r\n"
                      b"Content-Length: 0\r\n\r\n")
        else:
            peer.accept_upgrade()
            peer.echo_close()

    with hostile_server(redirect_once, handshake=False) as server:
        Connection(server.url, token=TOKEN, headers=CALLER_HEADERS,
                   connect_timeout=10_000 * MS).close()
    second = server.peers[1]
    assert second.request.startswith(b"GET /elsewhere ")
    assert second.header("Authorization") == f"Bearer {TOKEN}"
    assert second.header("X-Api-Key") == "k-123" and second.header("Cookie") == "session=abc"
