"""A scripted server on raw sockets, for tests of what a hostile or broken server may do.

:class:`HostileServer` accepts connections on a free loopback port, one after another, on one
thread. For each it reads the HTTP request, answers the WebSocket handshake (unless told not
to), and hands a :class:`Peer` to the test's ``script``, which then does whatever the test
needs: send frames no polite server would, read what the client sends back. The context
manager stops the thread and closes every socket.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, Tuple

from raw_servers import accept_key
from support import MS

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def server_frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """An unmasked frame, as a server sends it."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        return struct.pack("!BB", first, length) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


class Peer:
    """The server's end of one connection, for a script to drive."""

    def __init__(self, sock: socket.socket, request: bytes) -> None:
        self.sock = sock
        self.request = request  # the client's HTTP request, headers and all

    def header(self, name: str) -> Optional[str]:
        """The value of a header of the client's request, or None."""
        for line in self.request.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def accept_upgrade(self) -> None:
        """Answer the handshake with 101 (what HostileServer does unless told not to)."""
        self.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(self.request).encode() + b"\r\n\r\n"
        )

    def send_frame(self, payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> None:
        self.sock.sendall(server_frame(payload, opcode, fin))

    def send_json(self, message: Any) -> None:
        self.send_frame(json.dumps(message).encode())

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("the client closed the connection")
            data += chunk
        return data

    def read_frame(self) -> Tuple[int, bytes]:
        """The next frame the client sent, unmasked: (opcode, payload)."""
        first, second = self._exactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._exactly(8))
        key = self._exactly(4)
        payload = self._exactly(length)
        mask = int.from_bytes((key * (length // 4 + 1))[:length], "little")
        return first & 0x0F, (int.from_bytes(payload, "little") ^ mask).to_bytes(length, "little")

    def read_request(self) -> Any:
        """The next request the client sent (control frames skipped), decoded."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == OP_TEXT:
                return json.loads(payload)
            if opcode == OP_CLOSE:
                raise ConnectionError("the client sent a close frame")

    def read_close_code(self) -> Optional[int]:
        """Read until the client's close frame; return its code (None: no code)."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def echo_close(self) -> None:
        """Wait for the client's close frame and answer it, as a polite server does."""
        code = self.read_close_code()
        self.send_frame(b"" if code is None else struct.pack("!H", code), OP_CLOSE)

    def drain(self) -> None:
        """Read and drop everything until the client closes the TCP connection."""
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass


Script = Callable[[Peer], None]


class HostileServer:
    """A loopback listener whose connections are each handled by ``script``.

    Attributes:
        url: ``ws://127.0.0.1:PORT``.
        peers: Every connection accepted so far.
        errors: Exceptions a script raised other than the connection ending (a test checks
            it is empty when the script's own assertions matter).
        done: Set each time a script returns.
    """

    def __init__(self, script: Script, handshake: bool = True) -> None:
        self.script = script
        self.handshake = handshake
        self.peers: List[Peer] = []
        self.errors: List[BaseException] = []
        self.done = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(50 * MS)
        self.port = self._listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="hostile-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(10_000 * MS)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("the client closed during the handshake")
                    request += chunk
                peer = Peer(sock, request)
                self.peers.append(peer)
                if self.handshake:
                    peer.accept_upgrade()
                self.script(peer)
            except (OSError, ConnectionError):
                pass  # the client went away: for these servers, often the point
            except BaseException as exc:  # reported to the test through .errors
                self.errors.append(exc)
            finally:
                self.done.set()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for peer in self.peers:
            try:
                peer.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(10_000 * MS)
        for peer in self.peers:
            peer.sock.close()


@contextmanager
def hostile_server(script: Script, handshake: bool = True) -> Iterator[HostileServer]:
    """Run a HostileServer for the block."""
    server = HostileServer(script, handshake)
    try:
        yield server
    finally:
        server.close()
