"""Memory a hostile server can make the client hold: RSS growth under each attack.

    python benchmarks/hostile_memory.py [SCENARIO...]

Each scenario runs in a fresh child process (so that its peak RSS, ``VmHWM``, is its own): a
raw-socket server thread in that process performs the handshake, waits for the client's first
request, then attacks; the client is an ordinary :class:`inspector.Connection`. Printed per
scenario: the bytes the server sent, how the client ended (refused with an error, or still
going when the attack stopped), the peak RSS growth over the RSS measured just before the
attack, and the RSS growth after the attack while the Connection object is still alive.

Scenarios (issue 10's items):

* ``fragments-empty`` (1): one text fragment, then 5 million zero-length continuation frames
  (10 MB on the wire), then the final fragment.
* ``fragments-tiny`` (1): two-byte continuation fragments until refused (or 40 MB sent).
* ``pings`` (2): 125-byte pings, 100 MB of them, while the server never reads.
* ``notifications`` (3): 500,000 notifications to a subscriber that is stuck.
* ``header-line`` (4): a handshake response whose header line never ends (20 MB of it, or
  until the client gives up).
* ``largest-whole`` and ``largest-fragmented``, the reference: what one honest reply of 15 MiB
  costs, sent in one frame or in 4 KiB fragments. Whatever a message is, it costs at most this.

The client's ``max_message_size`` is left at its default, 16 MiB; the bound each scenario must
meet is printed beside it.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MiB = 2**20


def rss_kib(field: str = "VmRSS") -> int:
    """A field of /proc/self/status, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def frame(payload: bytes, opcode: int, fin: bool = True) -> bytes:
    """An unmasked frame as a server sends it."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        return struct.pack("!BB", first, length) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


class Attacker:
    """One connection on loopback: handshake (or not), wait for a request, then ``attack``."""

    def __init__(
        self,
        attack: Callable[[socket.socket], None],
        handshake: bool = True,
        wait_for_request: bool = True,
    ) -> None:
        self.attack = attack
        self.handshake = handshake
        self.wait_for_request = wait_for_request
        self.sent = 0
        self.request = b""  # the client's handshake request
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}"
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            self.request = request
            if self.handshake:
                key = ""
                for line in request.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "sec-websocket-key":
                        digest = hashlib.sha1((value.strip() + _GUID).encode()).digest()
                        key = base64.b64encode(digest).decode()
                conn.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + key.encode() + b"\r\n\r\n"
                )
                if self.wait_for_request:
                    conn.recv(4096)  # the client's first request: the attack begins
            self.attack(conn)
        except OSError:
            pass  # the client gave up on us: that is the point
        finally:
            self.done.set()


def attack_fragments(fragment: bytes, count: int, chunk_frames: int = 100_000) -> Callable[
    [Attacker, socket.socket], None
]:
    def attack(server: Attacker, conn: socket.socket) -> None:
        server.send(conn, frame(b'{"id":1,"result":', 0x1, fin=False))
        one = frame(fragment, 0x0, fin=False)
        chunk = one * chunk_frames
        for _ in range(count // chunk_frames):
            server.send(conn, chunk)
        server.send(conn, frame(b"1}", 0x0))

    return attack


def run_fragments(fragment: bytes, count: int) -> Dict[str, object]:
    from inspector import Connection, InspectorError

    attack = attack_fragments(fragment, count)
    server = Attacker(lambda conn: attack(server, conn))
    conn = Connection(server.url, request_timeout=None, ping_interval=None)
    return measure(conn, server, lambda: conn.call("Go", timeout=120), InspectorError)


def run_largest(fragment_size: int) -> Dict[str, object]:
    from inspector import Connection, InspectorError

    text = b'{"id":1,"result":"' + b"x" * (15 * MiB) + b'"}'

    def attack(conn: socket.socket) -> None:
        if not fragment_size:
            server.send(conn, frame(text, 0x1))
            return
        pieces = [text[i : i + fragment_size] for i in range(0, len(text), fragment_size)]
        server.send(conn, frame(pieces[0], 0x1, fin=False))
        for piece in pieces[1:-1]:
            server.send(conn, frame(piece, 0x0, fin=False))
        server.send(conn, frame(pieces[-1], 0x0))

    server = Attacker(attack)
    conn = Connection(server.url, request_timeout=None, ping_interval=None)
    return measure(conn, server, lambda: len(conn.call("Go", timeout=120)), InspectorError)


def run_pings(total: int) -> Dict[str, object]:
    from inspector import Connection, InspectorError

    def attack(conn: socket.socket) -> None:
        ping = frame(b"p" * 125, 0x9)
        chunk = ping * 8000
        while server.sent < total:
            server.send(conn, chunk)

    server = Attacker(attack)
    conn = Connection(server.url, request_timeout=None, ping_interval=None)

    def wait() -> None:
        future = conn.request("Go")
        server.done.wait(120)
        if future.done() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]

    return measure(conn, server, wait, InspectorError)


def run_notifications(count: int) -> Dict[str, object]:
    from inspector import Connection, InspectorError

    def attack(conn: socket.socket) -> None:
        note = frame(b'{"method":"DocumentChanged","params":{"id":"doc-1"}}', 0x1)
        chunk = note * 10_000
        for _ in range(count // 10_000):
            server.send(conn, chunk)
        server.send(conn, frame(b'{"id":1,"result":1}', 0x1))

    server = Attacker(attack)
    conn = Connection(server.url, request_timeout=None, ping_interval=None)
    release = threading.Event()
    conn.subscribe(lambda method, params: release.wait())
    try:
        return measure(conn, server, lambda: conn.call("Go", timeout=120), InspectorError)
    finally:
        release.set()


def run_header_line(total: int) -> Dict[str, object]:
    from inspector import Connection, InspectorError

    def attack(conn: socket.socket) -> None:
        server.send(conn, b"HTTP/1.1 101 Switching Protocols\r\nX-Endless: ")
        chunk = b"a" * 65536
        while server.sent < total:
            server.send(conn, chunk)

    server = Attacker(attack, handshake=False)
    holder: List[object] = []

    def connect() -> None:
        holder.append(Connection(server.url, connect_timeout=30))

    return measure(None, server, connect, InspectorError)


def measure(
    conn: Optional[object],
    server: Attacker,
    wait: Callable[[], object],
    expected: type,
) -> Dict[str, object]:
    gc.collect()
    before = rss_kib()
    reset_peak()
    started = time.monotonic()
    outcome = "not refused"
    try:
        wait()
    except expected as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
    elapsed = time.monotonic() - started
    peak = rss_kib("VmHWM")
    gc.collect()
    after = rss_kib()
    if conn is not None:
        conn.close()  # type: ignore[attr-defined]
    return {
        "sent_mb": server.sent / 1e6,
        "seconds": elapsed,
        "outcome": outcome,
        "peak_growth_mib": (peak - before) / 1024,
        "held_after_mib": (after - before) / 1024,
    }


SCENARIOS: Dict[str, Tuple[str, Callable[[], Dict[str, object]]]] = {
    "fragments-empty": ("max_message_size", lambda: run_fragments(b"", 5_000_000)),
    "fragments-tiny": ("max_message_size", lambda: run_fragments(b"  ", 20_000_000)),
    "pings": ("outgoing buffer bound", lambda: run_pings(100 * 10**6)),
    "notifications": ("notification queue bound", lambda: run_notifications(500_000)),
    "header-line": ("handshake header bound", lambda: run_header_line(20 * 10**6)),
    "largest-whole": ("reference", lambda: run_largest(0)),
    "largest-fragmented": ("reference", lambda: run_largest(4096)),
}


def main() -> None:
    names = sys.argv[1:] or list(SCENARIOS)
    if len(names) == 2 and names[0] == "--child":
        print(json.dumps(SCENARIOS[names[1]][1]()))
        return
    print(f"{'scenario':18} {'sent MB':>8} {'secs':>6} {'peak +MiB':>10} {'held +MiB':>10}"
          "  outcome")
    for name in names:
        child = subprocess.run(
            [sys.executable, __file__, "--child", name], capture_output=True, text=True,
            timeout=600,
        )
        if child.returncode != 0:
            print(f"{name:18} failed: {child.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{name:18} {result['sent_mb']:8.1f} {result['seconds']:6.1f} "
            f"{result['peak_growth_mib']:10.1f} {result['held_after_mib']:10.1f}  "
            f"{result['outcome']}"
        )


if __name__ == "__main__":
    main()
