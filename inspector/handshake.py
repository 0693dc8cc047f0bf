"""Opening a connection: TCP, TLS and the WebSocket handshake within one deadline.

websocket-client performs the HTTP upgrade on a socket this module connects, so that one
deadline covers all three steps; redirects are followed here, never by websocket-client (it
would forward every header, the token included, to wherever it is sent).

What a server can do to us before the connection is open is bounded here:

* Memory: websocket-client reads the response headers a byte at a time into a list with no
  limit (an endless header line cost 41 bytes of memory per byte sent), and reads a refusal's
  body whatever its ``Content-Length``. It reads through :class:`_BoundedSocket`, which fails
  the handshake past :data:`MAX_HEADER_LINE` bytes in one line, :data:`MAX_HEADER_BYTES` of
  headers or :data:`MAX_BODY_BYTES` of body.
* Secrets: a redirect to another origin (scheme, host or port) carries none of the caller's
  credential headers (:func:`inspector.redaction.is_credential_header`: Authorization,
  Cookie, X-Api-Key, any name with ``auth``, ``token``, ``key``, ``session``, ...); the other
  headers the caller gave are kept. A refusal's body is never shown, and every piece of server
  text that does reach a message or the chained cause (reason phrase, response headers,
  websocket-client's own messages) has the caller's credential values redacted and goes
  through :func:`inspector.display.printable`.
"""

from __future__ import annotations

import http
import logging
import socket
import ssl
import threading
import time
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urljoin, urlsplit

import websocket

from inspector.display import printable
from inspector.exceptions import ConnectionFailed, InspectorError
from inspector.redaction import (
    credential_values,
    is_credential_header,
    redact_url,
    redact_values,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_LINE",
    "ResponseBounds",
    "handshake_headers",
    "open_socket",
    "shutdown_quietly",
]

logger = logging.getLogger("inspector")

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 3

#: The longest line of a handshake response, status line or header, in bytes.
MAX_HEADER_LINE = 8192
#: The most bytes of handshake response headers, status line included.
MAX_HEADER_BYTES = 65536
#: The most bytes of a refused handshake's body that are read (and then dropped).
MAX_BODY_BYTES = 65536


class ResponseBounds:
    """Counts a handshake response's bytes as they are read; refuses one that is too large.

    A pure core: :meth:`feed` takes the bytes read, in any pieces, and raises
    :class:`~inspector.exceptions.ConnectionFailed` once a bound is passed.
    """

    def __init__(self, where: str) -> None:
        self._where = where
        self._line_length = 0
        self._header_bytes = 0
        self._status_line = bytearray()  # the first line, kept to report its status
        self._first_line_done = False
        self._body_bytes: Optional[int] = None  # None until the blank line ends the headers

    def feed(self, data: bytes) -> None:
        """Count ``data``, the next bytes of the response.

        Raises:
            ConnectionFailed: a line, the headers or the body passed its bound.
        """
        while data:
            if self._body_bytes is not None:
                self._body_bytes += len(data)
                if self._body_bytes > MAX_BODY_BYTES:
                    status = self.status
                    raise ConnectionFailed(
                        f"{self._where} refused the handshake: HTTP {status} (its body, over "
                        f"{MAX_BODY_BYTES} bytes, was not read)",
                        status,
                    )
                return
            newline = data.find(b"\n")
            piece, data = (data, b"") if newline < 0 else (data[: newline + 1], data[newline + 1:])
            self._header_bytes += len(piece)
            self._line_length += len(piece)
            if not self._first_line_done:
                self._status_line += piece[: MAX_HEADER_LINE - len(self._status_line)]
            if self._line_length > MAX_HEADER_LINE:
                raise ConnectionFailed(
                    f"{self._where} sent a handshake response line over {MAX_HEADER_LINE} bytes"
                )
            if self._header_bytes > MAX_HEADER_BYTES:
                raise ConnectionFailed(
                    f"{self._where} sent handshake response headers over {MAX_HEADER_BYTES} "
                    "bytes"
                )
            if newline >= 0:
                if self._first_line_done and self._line_length <= 2:  # "\r\n": headers end
                    self._body_bytes = 0
                self._first_line_done = True
                self._line_length = 0

    @property
    def status(self) -> Optional[int]:
        """The status of the response's first line, once it was read and holds one."""
        parts = bytes(self._status_line).split(None, 2)
        if len(parts) >= 2 and parts[1].isdigit() and len(parts[1]) == 3:
            return int(parts[1])
        return None


class _BoundedSocket:
    """The socket as websocket-client sees it during the handshake: every read is counted."""

    def __init__(self, sock: Union[socket.socket, ssl.SSLSocket], bounds: ResponseBounds) -> None:
        self._sock = sock
        self._bounds = bounds

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        self._bounds.feed(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


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

    Redirects are followed with every header within the same origin; to another origin the
    credential headers are left out (see the module's docstring), so a redirect never carries
    the token, a cookie or an API key elsewhere.
    """
    original_url = url
    secrets = credential_values(header_lines)
    for _ in range(_MAX_REDIRECTS + 1):
        lines = header_lines
        if not _same_origin(original_url, url):
            lines = [h for h in header_lines if not is_credential_header(h.partition(":")[0])]
        location = _open_once(url, lines, ssl_context, deadline, secrets)
        if isinstance(location, str):
            url = urljoin(url.replace("ws", "http", 1), location)
            url = url.replace("http", "ws", 1)
            logger.info("handshake redirected to %s", printable(redact_url(url)))
            continue
        return location
    raise ConnectionFailed(f"more than {_MAX_REDIRECTS} redirects opening the connection")


def _open_once(
    url: str,
    header_lines: List[str],
    ssl_context: Optional[ssl.SSLContext],
    deadline: Optional[float],
    secrets: Sequence[str] = (),
) -> Union[socket.socket, ssl.SSLSocket, str]:
    """Open one connection; return its socket, or the Location of a redirect.

    ``secrets`` are the caller's credential values, redacted from any server text kept.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectionFailed(
            f"not a ws:// or wss:// URL: {printable(redact_url(url), quote=True)}"
        )
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
    # Raised after the except block, not in it, so that the original error (which may hold
    # the server's refusal body) is not kept as the new error's __context__.
    failure: Optional[Tuple[BaseException, BaseException]] = None
    try:
        sock.settimeout(left)
        if parts.scheme == "wss":
            context = ssl_context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
        ws = websocket.WebSocket(skip_utf8_validation=True)
        try:
            ws.connect(  # type: ignore[no-untyped-call]
                url, socket=_BoundedSocket(sock, ResponseBounds(where)), header=header_lines,
                redirect_limit=0, timeout=left,
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
        cause = _without_secrets(exc, secrets)
        if expired.is_set():
            failure = (
                ConnectionFailed(f"could not connect to {where} within connect_timeout"), cause
            )
        else:
            failure = (_translate_open_error(cause, where), cause)
    finally:
        if watchdog is not None:
            watchdog.cancel()
            watchdog.join()
    if failure is not None:
        error, cause = failure
        if error is cause:
            raise error  # ours already, or KeyboardInterrupt and friends
        raise error from cause
    if expired.is_set():
        sock.close()
        raise ConnectionFailed(f"could not connect to {where} within connect_timeout")
    sock.setblocking(False)
    return sock


def _without_secrets(exc: BaseException, secrets: Sequence[str]) -> BaseException:
    """``exc``, or for websocket-client's errors, which quote the server, a clean copy.

    The copy keeps the type and the status but none of the refusal's body; its message,
    reason phrase and header values are shown through :func:`printable` with ``secrets``
    redacted. The original is dropped with its traceback, so the server's text lives nowhere.
    """
    if not isinstance(exc, websocket.WebSocketException):
        return exc

    def clean(text: object) -> str:
        return printable(redact_values(str(text), secrets))

    if isinstance(exc, websocket.WebSocketBadStatusException):
        reason = clean(exc.status_message) if exc.status_message else None
        headers = {
            clean(name): clean(value) for name, value in (exc.resp_headers or {}).items()
        } if isinstance(exc.resp_headers, dict) else None
        return websocket.WebSocketBadStatusException(
            f"Handshake status {exc.status_code} {reason or ''}".rstrip(),
            exc.status_code,
            reason,
            headers,
            None,
        )
    try:
        return type(exc)(clean(exc))
    except Exception:
        return websocket.WebSocketException(clean(exc))


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
