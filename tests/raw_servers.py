"""Misbehaving servers on real sockets, for what the sample server is too polite to do.

Each runs in one thread on a free loopback port and is a context manager that stops and joins
it. They speak just enough HTTP to reach the state a test needs.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from contextlib import contextmanager
from typing import Iterator, List

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _accept_key(request: bytes) -> str:
    for line in request.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            digest = hashlib.sha1((value.strip() + _GUID).encode()).digest()
            return base64.b64encode(digest).decode()
    return ""


class RawServer:
    """A listening socket whose one connection is handled by ``behaviour``."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self.requests: List[bytes] = []
        self.connections: List[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections.append(conn)
            conn.settimeout(0.1)
            try:
                self._handle(conn)
            except OSError:
                pass

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        request = _read_request(conn)
        self.requests.append(request)
        conn.settimeout(0.1)
        if self.behaviour == "trickle":
            # Send a valid response one byte at a time, slower than any deadline allows.
            response = b"HTTP/1.1 101 Switching Protocols\r\n" * 100
            for byte in response:
                if self.stop.wait(0.2):
                    return
                conn.sendall(bytes([byte]))
        elif self.behaviour == "silent":
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + _accept_key(request).encode()
                + b"\r\n\r\n"
            )
            # Read and drop everything, answer nothing, not even a close frame.
            while not self.stop.is_set():
                try:
                    if not conn.recv(65536):
                        return
                except socket.timeout:
                    continue

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(5)
        for conn in self.connections:
            conn.close()


@contextmanager
def raw_server(behaviour: str) -> Iterator[RawServer]:
    """Run a RawServer (``"trickle"`` or ``"silent"``) for the block."""
    server = RawServer(behaviour)
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    """Return a loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
