"""What a hostile server gets out of the client, item by item (issue 10), as figures.

    python benchmarks/hostile_checks.py

Each check drives an ordinary :class:`inspector.Connection` (or the command line) against a
raw-socket server of this script's own on loopback and prints one line: the item, what the
server did, and what the client did about it (the time it took, the error, the length of the
message, whether a secret came back). Run it against another checkout of the package with
``PYTHONPATH=/path/to/checkout`` to compare. The memory items are in ``hostile_memory.py``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile_memory import Attacker, frame  # noqa: E402

import inspector  # noqa: E402
from inspector import Connection, InspectorError  # noqa: E402
from inspector.serialization import from_wire  # noqa: E402

TOKEN = "tok-5f3a9c1e7d"


def read_client_frame(conn: socket.socket) -> Tuple[int, bytes]:
    """Read one masked client frame; return (opcode, unmasked payload)."""

    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", exactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", exactly(8))
    key = exactly(4)
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(exactly(length)))
    return first & 0x0F, payload


def reply_with(text: bytes) -> Callable[[socket.socket], None]:
    """A server that answers the first request (id 1) with ``text``, then stays quiet."""

    def attack(conn: socket.socket) -> None:
        conn.sendall(frame(text, 0x1))
        conn.settimeout(30)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    return attack


def timed_call(text: bytes, timeout: float = 3.0) -> Tuple[float, str, Any]:
    """Seconds until call() ended, how it ended, and what it returned."""
    server = Attacker(reply_with(text))
    with Connection(server.url, ping_interval=None) as conn:
        started = time.monotonic()
        try:
            result = conn.call("GetWidgetProperties", {"id": "w1"}, timeout=timeout)
            outcome = "returned"
        except InspectorError as exc:
            result = None
            outcome = f"{type(exc).__name__}: {str(exc)[:100]}"
        return time.monotonic() - started, outcome, result


def check_non_finite() -> None:
    """Item 6: a reply holding 1e400."""
    text = b'{"id":1,"result":{"id":"w1","type":"chart","fontSize":1e400}}'
    seconds, outcome, result = timed_call(text)
    written = ""
    if result is not None:
        widget = from_wire(result, inspector.Widget)
        try:
            written = inspector.to_json(widget)
        except (InspectorError, ValueError) as exc:
            written = f"{type(exc).__name__}"
    print(f"6  fontSize 1e400: {outcome} in {seconds:.2f}s; to_json wrote {written[:70]!r}")


def check_junk_replies() -> None:
    """Item 7: replies that are junk for their id (request_timeout 3 s)."""
    cases = {
        "error without code": b'{"id":1,"error":{"message":"m"}}',
        "string code": b'{"id":1,"error":{"code":"500","message":"m"}}',
        "boolean code": b'{"id":1,"error":{"code":true,"message":"m"}}',
        "error as a string": b'{"id":1,"error":"boom"}',
        "result and error": b'{"id":1,"result":1,"error":{"code":1,"message":"m"}}',
        "invalid UTF-8": b'{"id":1,"result":"\xff\xfe"}',
    }
    for name, text in cases.items():
        seconds, outcome, _ = timed_call(text)
        print(f"7  {name:18}: call() ended after {seconds:.2f}s: {outcome}")


def check_close_codes() -> None:
    """Item 8: what the client answers to a close frame with each code."""
    answers: List[str] = []
    for code in (0, 999, 1000, 1004, 1005, 1006, 1015, 2999, 3000, 5000, 65535):
        echoed: List[Optional[int]] = []

        def attack(
            conn: socket.socket, code: int = code, echoed: List[Optional[int]] = echoed
        ) -> None:
            conn.sendall(frame(struct.pack("!H", code) + b"bye", 0x8))
            conn.settimeout(5)
            opcode, payload = read_client_frame(conn)
            echoed.append(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)

        server = Attacker(attack)
        with Connection(server.url, ping_interval=None) as conn:
            try:
                conn.call("Go", timeout=5)
            except InspectorError:
                pass
            server.done.wait(5)
        answers.append(f"{code}->{echoed[0] if echoed else 'nothing'}")
    print("8  close code received->sent: " + ", ".join(answers))


def check_long_messages() -> None:
    """Item 9: a 12 MiB error message with escape sequences; an 8 MiB document id."""
    message = "\x1b[2J\x1b[31mred " + "x" * (12 * 2**20)
    text = json.dumps({"id": 1, "error": {"code": 500, "message": message}}).encode()
    server = Attacker(reply_with(text))
    with Connection(server.url, ping_interval=None) as conn:
        try:
            conn.call("GetDocument", {"id": "d" * (8 * 2**20)}, timeout=10)
            length, escapes = 0, False
        except InspectorError as exc:
            length, escapes = len(str(exc)), "\x1b" in str(exc)
    print(f"9  12 MiB error message, 8 MiB id: str(exc) is {length} characters, raw ESC in it: "
          f"{escapes}")


def refusing_server(status: int) -> Attacker:
    """A server that refuses the handshake, reflecting the request's headers everywhere."""

    def attack(conn: socket.socket) -> None:
        request = server.request
        authorization = next(
            (line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
             if line.lower().startswith(b"authorization:")), b""
        )
        body = b"you sent: " + request
        conn.sendall(
            b"HTTP/1.1 %d %s\r\nX-Echo: %s\r\nContent-Length: %d\r\n\r\n"
            % (status, authorization, authorization, len(body)) + body
        )

    server = Attacker(attack, handshake=False)
    return server


def check_reflected_token() -> None:
    """Item 10: a refusal that reflects the Authorization header (reason, header, body)."""
    results = []
    for status in (400, 401, 403, 429, 503):
        server = refusing_server(status)
        try:
            Connection(server.url, token=TOKEN, connect_timeout=5)
        except InspectorError as exc:
            chain = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            context = exc.__context__
            everything = chain + repr(getattr(exc.__cause__, "__dict__", "")) + repr(
                getattr(context, "__dict__", "")
            )
            results.append(f"{status}: str {TOKEN in str(exc)}, chain {TOKEN in everything}")
    print("10 token in the error (message; traceback, cause, context): " + "; ".join(results))


def drain(conn: socket.socket) -> None:
    """Read and drop everything, answer nothing."""
    conn.settimeout(60)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def check_redirect_headers() -> None:
    """Item 11: which caller headers reach another origin after a redirect."""
    target = Attacker(drain)

    def redirect(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + target.url.encode() +
                     b"/api\r\nContent-Length: 0\r\n\r\n")

    origin = Attacker(redirect, handshake=False)
    headers = {"X-Api-Key": "k-123", "Cookie": "session=abc", "X-Team": "finance",
               "Private-Token": "p-1"}
    Connection(origin.url, token=TOKEN, headers=headers, connect_timeout=5,
               ping_interval=None).close()
    target.done.wait(5)
    seen = {line.partition(":")[0].strip().lower()
            for line in target.request.decode("latin-1").split("\r\n")}
    forwarded = [h for h in ("authorization", "x-api-key", "cookie", "private-token", "x-team")
                 if h in seen]
    print(f"11 caller headers that reached the other origin: {forwarded}")


def check_bad_arguments() -> None:
    """Item 5: numbers that must be refused where they enter."""
    server = Attacker(reply_with(b'{"id":1,"result":1}'))
    outcomes = []
    with Connection(server.url, ping_interval=None) as conn:
        for value in (math.inf, 1e300, "5", math.nan, -1.0):
            try:
                future = conn.request("Go", timeout=value)
                outcomes.append(f"timeout={value!r}: accepted")
                future.cancel()
            except Exception as exc:  # the point is which type comes out
                outcomes.append(f"timeout={value!r}: {type(exc).__name__}")
    for name, value in (("max_message_size", 0), ("max_message_size", -1),
                        ("max_in_flight", 0), ("request_timeout", math.nan),
                        ("ping_interval", -1.0)):
        server = Attacker(reply_with(b'{"id":1,"result":1}'))
        try:
            Connection(server.url, **{name: value}).close()
            outcomes.append(f"{name}={value!r}: accepted")
        except Exception as exc:
            outcomes.append(f"{name}={value!r}: {type(exc).__name__}")
    print("5  " + "; ".join(outcomes))


def echo_close(conn: socket.socket) -> None:
    """Answer the client's close frame, as a polite server does."""
    conn.settimeout(60)
    try:
        while True:
            opcode, payload = read_client_frame(conn)
            if opcode == 0x8:
                conn.sendall(frame(payload[:2], 0x8))
                return
    except OSError:
        pass


def check_exit_with_silent_server() -> None:
    """Item 12: seconds until a process ends whose connection's server never answers a close."""
    cases = [
        ("exit, polite server (reference)", echo_close, "Connection", ""),
        ("exit", drain, "Connection", ""),
        ("del", drain, "Connection", "del conn\n"),
        ("close()", drain, "Connection", "conn.close()\n"),
        ("exit, DocumentInspector", drain, "DocumentInspector", ""),
    ]
    for name, behaviour, cls, end in cases:
        server = Attacker(behaviour, handshake=True, wait_for_request=False)
        options = ", ping_interval=None" if cls == "Connection" else ""
        script = (
            "import inspector\n"
            f"conn = inspector.{cls}({server.url!r}{options})\n" + end
        )
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", script], timeout=60)
        print(f"12 {name}: the process ended {time.monotonic() - started:.2f}s after it started")


def check_inspector_arguments() -> None:
    """Item 5, the high level: numbers given to DocumentInspector and its calls."""
    from inspector import DocumentInspector

    outcomes = []
    for name, value in (("timeout", "5"), ("timeout", math.nan), ("timeout", math.inf),
                        ("max_message_size", 0), ("max_message_size", -1), ("retries", -1),
                        ("close_timeout", "1")):
        server = Attacker(drain, wait_for_request=False)
        try:
            DocumentInspector(server.url, **{name: value}).close()
            outcomes.append(f"{name}={value!r}: accepted")
        except Exception as exc:
            outcomes.append(f"{name}={value!r}: {type(exc).__name__}")
    server = Attacker(drain, wait_for_request=False)
    with DocumentInspector(server.url) as di:
        for value in ("5", math.nan, -1.0):
            try:
                di.get_widgets("doc-1", timeout=value)
                outcomes.append(f"get_widgets(timeout={value!r}): returned")
            except Exception as exc:
                outcomes.append(f"get_widgets(timeout={value!r}): {type(exc).__name__}")
    print("5  " + "; ".join(outcomes))


def main() -> None:
    for check in (check_non_finite, check_junk_replies, check_close_codes, check_long_messages,
                  check_reflected_token, check_redirect_headers, check_bad_arguments,
                  check_inspector_arguments, check_exit_with_silent_server):
        try:
            check()
        except Exception as exc:  # one check failing must not hide the others
            print(f"{check.__name__}: could not run: {type(exc).__name__}: {exc}")
        sys.stdout.flush()


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # attack threads end abruptly by design
    main()
