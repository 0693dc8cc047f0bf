"""Opening a connection: TCP, TLS and the WebSocket handshake within one deadline.

websocket-client performs the HTTP upgrade on a socket this module connects, so that one
deadline covers all three steps; redirects are followed here, never by websocket-client (it
would forward every header, the token included, to wherever it is sent).
"""

from __future__ import annotations

import http
import logging
import socket
import ssl
import threading
import time
from typing import List, Mapping, Optional, Union
from urllib.parse import urljoin, urlsplit

import websocket

from inspector.exceptions import ConnectionFailed, InspectorError
from inspector.redaction import redact_url

__all__ = ["handshake_headers", "open_socket", "shutdown_quietly"]

logger = logging.getLogger("inspector")

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 3


# --- opening ------------------------------------------------------------------------------


def _check_header_value(name: str, value: str, *, secret: bool = False) -> None:
    # A CR or LF would let a value end the header and start another (header injection);
    # NUL is refused by most servers in a way that hides the cause.
    if any(c in value for c in "\r\n\0") or any(c in name for c in "\r\n\0:"):
        what = "the token" if secret else f"header {name!r}"
        raise ConnectionFailed(f"{what} contains CR, LF or NUL; nothing was sent")


def handshake_headers(token: Optional[str], headers: Optional[Mapping[str, str]]) -> List[str]:
    lines = []
    for name, value in (headers or {}).items():
        _check_header_value(name, str(value))
        if name.lower() == "authorization" and token is not None:
            continue  # the token wins; two Authorization headers would be ambiguous
        lines.append(f"{name}: {value}")
    if token is not None:
        _check_header_value("Authorization", token, secret=True)
        lines.append(f"Authorization: Bearer {token}")
    return lines


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    default = {"ws": 80, "wss": 443}
    return (a.scheme, a.hostname, a.port or default.get(a.scheme)) == (
        b.scheme,
        b.hostname,
        b.port or default.get(b.scheme),
    )


def shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected: either way nothing more to wake


def open_socket(
    url: str,
    header_lines: List[str],
    ssl_context: Optional[ssl.SSLContext],
    deadline: Optional[float],
) -> Union[socket.socket, ssl.SSLSocket]:
    """Connect TCP, TLS and the WebSocket handshake within one deadline; return the socket.

    Redirects are followed only within the same origin with the token; to another origin the
    ``Authorization`` header is left out, so a redirect never carries the token elsewhere.
    """
    original_url = url
    for _ in range(_MAX_REDIRECTS + 1):
        lines = header_lines
        if not _same_origin(original_url, url):
            lines = [h for h in header_lines if not h.lower().startswith("authorization:")]
        location = _open_once(url, lines, ssl_context, deadline)
        if isinstance(location, str):
            url = urljoin(url.replace("ws", "http", 1), location)
            url = url.replace("http", "ws", 1)
            logger.info("handshake redirected to %s", redact_url(url))
            continue
        return location
    raise ConnectionFailed(f"more than {_MAX_REDIRECTS} redirects opening the connection")


def _open_once(
    url: str,
    header_lines: List[str],
    ssl_context: Optional[ssl.SSLContext],
    deadline: Optional[float],
) -> Union[socket.socket, ssl.SSLSocket, str]:
    """Open one connection; return its socket, or the Location of a redirect."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectionFailed(f"not a ws:// or wss:// URL: {redact_url(url)!r}")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError as exc:
        raise ConnectionFailed(f"bad port in URL {redact_url(url)!r}") from exc
    where = f"{host}:{port}"

    def remaining() -> Optional[float]:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConnectionFailed(f"could not connect to {where} within connect_timeout")
        return left

    try:
        sock: Union[socket.socket, ssl.SSLSocket] = socket.create_connection(
            (host, port), timeout=remaining()
        )
    except socket.gaierror as exc:
        raise ConnectionFailed(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    except socket.timeout as exc:
        raise ConnectionFailed(f"could not connect to {where} within connect_timeout") from exc
    except OSError as exc:
        raise ConnectionFailed(f"cannot connect to {where}: {exc.strerror or exc}") from exc

    # Writes are already batched here; Nagle's algorithm would only hold a follow-up batch
    # back until the previous one is acknowledged (websocket-client sets the same option on
    # the sockets it makes itself).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # websocket-client's timeout applies to each socket operation, so a server that trickles
    # one byte at a time could hold the handshake open for ever; this watchdog ends it at the
    # one deadline that covers TLS and the handshake together.
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        shutdown_quietly(sock)

    left = remaining()
    watchdog = threading.Timer(left, expire) if left is not None else None
    if watchdog is not None:
        watchdog.daemon = True
        watchdog.name = "inspector-connect-watchdog"
        watchdog.start()
    try:
        sock.settimeout(left)
        if parts.scheme == "wss":
            context = ssl_context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
        ws = websocket.WebSocket(skip_utf8_validation=True)
        try:
            ws.connect(  # type: ignore[no-untyped-call]
                url, socket=sock, header=header_lines, redirect_limit=0, timeout=left
            )
        except websocket.WebSocketException:
            response = ws.handshake_response
            if response is not None and response.status in _REDIRECTS:
                location = (response.headers or {}).get("location")
                if location:
                    sock.close()
                    return str(location)
            raise
    except BaseException as exc:
        sock.close()
        if expired.is_set():
            raise ConnectionFailed(
                f"could not connect to {where} within connect_timeout"
            ) from exc
        raise _translate_open_error(exc, where) from exc
    finally:
        if watchdog is not None:
            watchdog.cancel()
            watchdog.join()
    if expired.is_set():
        sock.close()
        raise ConnectionFailed(f"could not connect to {where} within connect_timeout")
    sock.setblocking(False)
    return sock


def _translate_open_error(exc: BaseException, where: str) -> BaseException:
    if isinstance(exc, InspectorError) or not isinstance(exc, Exception):
        return exc  # ours already, or KeyboardInterrupt and friends: let them through
    if isinstance(exc, websocket.WebSocketBadStatusException):
        status = exc.status_code
        if 200 <= status < 300:
            # A web page, a health check, a reverse proxy's default site: it will never upgrade.
            return ConnectionFailed(
                f"{where}: the server answered plain HTTP, not a WebSocket upgrade "
                f"(HTTP {_status_text(status)}): is the URL the documents API's WebSocket "
                "endpoint?", status, final=True)
        hint = _STATUS_HINTS.get(status, "")
        return ConnectionFailed(
            f"{where} refused the handshake: HTTP {_status_text(status)}{hint}", status
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectionFailed(
            f"certificate not trusted for {where} (certificate verification failed: "
            f"{exc.verify_message}): pass --cafile FILE (ssl_context in Python) with the CA "
            "that signed it", final=True)
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "WRONG_VERSION_NUMBER":
            return ConnectionFailed(
                f"TLS handshake with {where} failed: the server does not speak TLS there "
                "(did you mean ws://?)", final=True)
        if exc.reason == "UNEXPECTED_EOF_WHILE_READING":
            # Also what a server without TLS does on reading a ClientHello as HTTP; it may be
            # a dropped connection too, so this one is tried again.
            return ConnectionFailed(
                f"TLS handshake with {where} failed: the server closed the connection (if it "
                "does not speak TLS, use ws://)")
        return ConnectionFailed(f"TLS handshake with {where} failed: {exc.reason}")
    if isinstance(exc, (socket.timeout, websocket.WebSocketTimeoutException)):
        return ConnectionFailed(f"could not connect to {where} within connect_timeout")
    if isinstance(exc, websocket.WebSocketException):
        return ConnectionFailed(f"WebSocket handshake with {where} failed: {exc}")
    if isinstance(exc, OSError):
        return ConnectionFailed(f"connection to {where} failed: {exc.strerror or exc}")
    return ConnectionFailed(f"connection to {where} failed: {type(exc).__name__}")


# After "HTTP 401 Unauthorized": what the status means for this client.
_STATUS_HINTS = {
    401: ": a token is missing or wrong",
    403: ": the token may not read",
    429: ": too many connections, retry later",
    503: ": the server is overloaded, retry later",
}


def _status_text(status: int) -> str:
    """``401 Unauthorized``: the standard reason phrase, whatever the server wrote."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
