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
from typing import Dict, Iterator, List

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def accept_key(request: bytes) -> str:
    """The Sec-WebSocket-Accept value that answers the handshake ``request``."""
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
                + accept_key(request).encode()
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


class Proxy:
    """A TCP proxy on loopback that can go silent, as a half-open connection does.

    While frozen it forwards nothing in either direction and closes nothing, so neither end
    sees an error: only a missing pong can tell.
    """

    def __init__(self, upstream_port: int) -> None:
        import selectors

        self.upstream_port = upstream_port
        self.frozen = threading.Event()
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.peers: Dict[socket.socket, socket.socket] = {}
        self.thread = threading.Thread(target=self._run, name="proxy", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import selectors

        while not self.stop.is_set():
            if self.frozen.is_set():
                # Leave the bytes in the kernel: nothing crosses. (Selecting now would only
                # report the same readable sockets again and again.)
                self.stop.wait(0.05)
                continue
            for key, _ in self.selector.select(0.05):
                sock = key.fileobj
                if sock is self.listener:
                    client, _ = self.listener.accept()
                    upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                    for one, other in ((client, upstream), (upstream, client)):
                        one.setblocking(False)
                        self.peers[one] = other
                        self.selector.register(one, selectors.EVENT_READ)
                    continue
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                other = self.peers.get(sock)
                if not data or other is None:
                    self._drop(sock)
                    continue
                try:
                    other.setblocking(True)
                    other.sendall(data)
                    other.setblocking(False)
                except OSError:
                    self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self.peers.pop(sock, None)
        for one in (sock, other):
            if one is None:
                continue
            self.peers.pop(one, None)
            try:
                self.selector.unregister(one)
            except (KeyError, ValueError):
                pass
            one.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in list(self.peers):
            sock.close()
        self.listener.close()
        self.selector.close()


@contextmanager
def proxy_to(upstream_port: int) -> Iterator[Proxy]:
    """Run a Proxy to ``upstream_port`` for the block."""
    proxy = Proxy(upstream_port)
    try:
        yield proxy
    finally:
        proxy.close()
