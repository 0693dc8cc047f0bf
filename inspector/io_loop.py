"""The I/O thread of one connection: the sole owner of its socket.

The thread waits in ``select`` on the socket and on a wake-up socketpair, so nothing ever
blocks in ``recv()``. Each turn it takes the frames callers queued, reads what arrived and
hands each text message to the connection's router, answers pings, sends its own pings and
watches the deadlines, then writes everything the turn produced in one ``send``. With
``wss://`` one owner is what makes the socket safe: OpenSSL does not support a read and a
write of one SSL object from two threads.

Everything about requests (which are pending, what a reply settles, when one times out) is the
router's: this module moves bytes, and knows the WebSocket frames only through
:mod:`inspector.protocol`.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from typing import Deque, List, Optional, Protocol, Tuple, Union

from inspector import protocol
from inspector.deferral import deferring
from inspector.exceptions import ClientClosed, ConnectionLost, InspectorError, ProtocolError
from inspector.handshake import shutdown_quietly
from inspector.redaction import redact_url

__all__ = ["IOLoop", "Router"]

logger = logging.getLogger("inspector")

Socket = Union[socket.socket, ssl.SSLSocket]

_READ_SIZE = 65536
_READ_BUDGET = 1 << 20  # bytes read per loop turn before writes and deadlines get a look
# A pong waits while more than this is queued to be sent: a server that floods pings and does
# not read gets the answer to its latest ping only (RFC 6455 5.5.3 allows that), never a
# growing backlog of pongs.
_PONG_ROOM = 64 * 1024


class Router(Protocol):
    """What the I/O thread needs from the connection it serves."""

    def route(self, text: str) -> int:
        """Take one text message; return 1 if it answered a pending request."""

    def routed(self) -> None:
        """A batch of replies was routed (slots came free)."""

    def watch(self, request_id: int) -> None:
        """The request's frame is being written: start its deadline."""

    def next_deadline(self) -> Optional[float]:
        """The earliest deadline of a pending request."""

    def expire(self, now: float) -> None:
        """Fail every pending request whose deadline has passed."""

    def closing(self) -> bool:
        """Whether the client has begun to close (a server's close frame then answers ours)."""

    def ended(self, failure: InspectorError) -> None:
        """The connection is over: fail everything that waits on it with ``failure``."""


class IOLoop:
    """The thread that owns the socket.

    Args:
        url: The endpoint, for thread names and messages (redacted).
        sock: The connected, non-blocking socket after the handshake.
        router: The connection the messages go to.
        max_message_size: The largest incoming message; None: no limit.
        ping_interval: Seconds between keepalive pings; None: none.
        ping_timeout: Seconds to wait for a pong, or for the server to read anything, before
            the connection counts as lost; None: no limit.
        close_timeout: Seconds to wait for the answer to our close frame; None: no limit.
        stats: Where the frames written (``requests``) and ignored (``junk``) are counted.
    """

    def __init__(
        self,
        url: str,
        sock: Socket,
        router: Router,
        *,
        max_message_size: Optional[int],
        ping_interval: Optional[float],
        ping_timeout: Optional[float],
        close_timeout: Optional[float],
        stats: _Counters,
    ) -> None:
        self.url = url
        self._sock = sock
        self._router = router
        self._reader = protocol.FrameReader(max_message_size)
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._stats = stats
        # Outgoing frames, a batch at a time: the frames, and the id of the request each
        # carries (None for a control frame). Two lists a batch rather than a pair a frame:
        # thousands of queued pairs were as many objects for the cyclic garbage collector.
        self._outgoing: Deque[Tuple[List[bytes], List[Optional[int]]]] = deque()
        # Whether a wake-up byte is on its way: callers write one only when it is not.
        self._wake_pending = False
        self._wake_receive, self._wake_send = socket.socketpair()
        self._wake_receive.setblocking(False)
        self._wake_send.setblocking(False)
        self._unanswered_ping: Optional[bytes] = None  # the latest ping's payload
        self._thread = threading.Thread(
            target=self._run, name=f"inspector-io {redact_url(url)}", daemon=True
        )
        self._thread.start()  # last: everything it reads is in place

    # -- from any thread --

    @property
    def in_thread(self) -> bool:
        """Whether the caller is the I/O thread."""
        return threading.current_thread() is self._thread

    @property
    def alive(self) -> bool:
        """Whether the thread still runs."""
        return self._thread.is_alive()

    def send(self, frames: List[bytes], request_ids: List[Optional[int]]) -> None:
        """Queue frames, each with the id of the request it carries, and wake the thread.

        The lists become the thread's: the caller makes new ones for its next batch.
        """
        self._outgoing.append((frames, request_ids))
        self._wake()

    def send_close(self) -> None:
        """Queue our close frame; the thread waits ``close_timeout`` for the answer."""
        self.send([protocol.encode_close(protocol.CLOSE_NORMAL)], [None])

    def join(self, timeout: Optional[float]) -> None:
        """Wait for the thread; past ``timeout``, shut the socket down and wait a moment."""
        if self.in_thread:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            shutdown_quietly(self._sock)  # last resort: wake any blocked call
            self._thread.join(1.0)

    def _wake(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_send.send(b"\0")
            except (BlockingIOError, OSError):
                pass  # the pair is full (a wake is pending anyway) or closed (we are done)

    # -- the thread --

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        sock = self._sock
        selector.register(self._wake_receive, selectors.EVENT_READ)
        selector.register(sock, selectors.EVENT_READ)
        out = bytearray()
        writing = False
        close_sent_at: Optional[float] = None
        ping_due = self._next_ping_time()
        pong_due: Optional[float] = None
        stalled_since: Optional[float] = None  # since when bytes wait and none could be written
        ping_timeout = self._ping_timeout
        try:
            while True:
                now = time.monotonic()
                wait = self._wait_time(now, close_sent_at, ping_due, pong_due)
                if stalled_since is not None and ping_timeout is not None:
                    wait = min(
                        wait if wait is not None else ping_timeout,
                        max(0.0, stalled_since + ping_timeout - now),
                    )
                if isinstance(sock, ssl.SSLSocket) and sock.pending():
                    wait = 0.0  # decrypted bytes are waiting that select cannot see
                readable = woken = False
                for key, mask in selector.select(wait):
                    if key.fileobj is sock:
                        readable = readable or bool(mask & selectors.EVENT_READ)
                    else:
                        woken = True
                # Take what callers queued: frames to write, deadlines to watch. The wake-up
                # bytes are drained first and the flag cleared after: a caller that queues
                # from here on sees the flag down and writes a byte that wakes the next turn.
                # (Cleared first, a byte written between the two would be drained here while
                # the flag stayed up, and no caller would ever write one again.)
                if woken:
                    self._drain_wake_ups()
                self._wake_pending = False
                if self._outgoing and self._take_outgoing(out):
                    close_sent_at = close_sent_at or time.monotonic()
                if readable or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                    closed_by_server, pong_seen = self._read(sock, out)
                    if pong_seen:
                        pong_due = None
                    if closed_by_server is not None:
                        if out:
                            self._write(sock, out)  # the echo of the server's close frame
                        self._router.ended(closed_by_server)
                        return
                now = time.monotonic()
                self._router.expire(now)
                if (
                    close_sent_at is not None
                    and self._close_timeout is not None
                    and now - close_sent_at >= self._close_timeout
                ):
                    return  # the server did not answer our close frame in time
                if pong_due is not None and now >= pong_due:
                    raise ConnectionLost(
                        f"no pong within ping_timeout={ping_timeout}s: "
                        "the connection is half-open or the server is stuck"
                    )
                if ping_due is not None and now >= ping_due:
                    out += protocol.encode_frame(b"inspector", protocol.OP_PING)
                    if pong_due is None and ping_timeout is not None:
                        pong_due = now + ping_timeout
                    ping_due = self._next_ping_time()
                if self._unanswered_ping is not None and len(out) < _PONG_ROOM:
                    out += protocol.encode_frame(self._unanswered_ping, protocol.OP_PONG)
                    self._unanswered_ping = None
                # Write everything this turn produced in one send; what the socket cannot
                # take now waits for it to become writable.
                if out:
                    written = self._write(sock, out)
                    del out[:written]
                    if written or stalled_since is None:
                        stalled_since = now
                    elif ping_timeout is not None and now - stalled_since >= ping_timeout:
                        # A peer that reads nothing for that long is as dead as one that
                        # answers no ping.
                        raise ConnectionLost(
                            f"the server read nothing for ping_timeout={ping_timeout}s "
                            f"({len(out)} bytes waiting to be sent): it is stuck or gone"
                        )
                else:
                    stalled_since = None
                if bool(out) != writing:
                    writing = bool(out)
                    mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
                    selector.modify(sock, mask)
        except protocol.FrameViolation as exc:
            logger.warning("closing %s: %s", redact_url(self.url), exc)
            self._router.ended(ProtocolError(str(exc)))
            _send_quietly(sock, protocol.encode_close(exc.close_code))
        except BaseException as exc:  # the thread must record why it stopped, whatever it was
            if isinstance(exc, ConnectionLost):
                failure: InspectorError = exc
            else:
                failure = ConnectionLost(
                    f"connection to {redact_url(self.url)} lost: {_describe_loss(exc)}"
                )
                failure.__cause__ = exc
            if not self._router.closing():
                logger.warning("%s", failure)
            self._router.ended(failure)
        finally:
            self._router.ended(ClientClosed("the connection is closed"))
            selector.close()
            sock.close()
            self._wake_receive.close()
            self._wake_send.close()

    def _drain_wake_ups(self) -> None:
        try:
            while self._wake_receive.recv(4096):
                pass
        except OSError:
            pass  # drained (BlockingIOError) or closed

    def _take_outgoing(self, out: bytearray) -> bool:
        """Move queued frames into ``out``; return whether a close frame was among them.

        A method of its own, so that no request lingers in a local variable of the loop
        while it waits: a Future kept alive there keeps alive whatever its callbacks refer
        to, and an inspector dropped without close() would never be collected.
        """
        outgoing = self._outgoing
        watch = self._router.watch
        close_queued = False
        requests = 0
        while outgoing:
            frames, request_ids = outgoing.popleft()
            for frame, request_id in zip(frames, request_ids):
                out += frame
                if request_id is not None:
                    requests += 1
                    watch(request_id)
                elif frame[0] & 0x0F == protocol.OP_CLOSE:
                    close_queued = True
        self._stats.requests += requests
        return close_queued

    def _next_ping_time(self) -> Optional[float]:
        return time.monotonic() + self._ping_interval if self._ping_interval else None

    def _wait_time(
        self,
        now: float,
        close_sent_at: Optional[float],
        ping_due: Optional[float],
        pong_due: Optional[float],
    ) -> Optional[float]:
        moments = [m for m in (ping_due, pong_due) if m is not None]
        earliest = self._router.next_deadline()
        if earliest is not None:
            moments.append(earliest)
        if close_sent_at is not None and self._close_timeout is not None:
            moments.append(close_sent_at + self._close_timeout)
        if not moments:
            return None
        return max(0.0, min(moments) - now)

    @staticmethod
    def _write(sock: Socket, data: bytearray) -> int:
        try:
            return sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0

    def _read(
        self, sock: Socket, out: bytearray
    ) -> Tuple[Optional[InspectorError], bool]:
        """Read what is ready, route it; return (why the server closed, whether a pong came)."""
        with deferring():  # what routing the replies sets off runs once they all are
            return self._read_routing(sock, out)

    def _read_routing(
        self, sock: Socket, out: bytearray
    ) -> Tuple[Optional[InspectorError], bool]:
        budget = _READ_BUDGET
        pong_seen = False
        answered = 0
        route = self._router.route
        while budget > 0:
            try:
                data = sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not data:
                raise ConnectionLost(
                    f"connection to {redact_url(self.url)} lost: the server closed the TCP "
                    "connection"
                )
            budget -= len(data)
            for opcode, payload in self._reader.feed(data):
                if isinstance(payload, str):  # a text message, decoded by the reader
                    answered += route(payload)
                elif opcode == protocol.OP_PING:
                    self._unanswered_ping = payload  # answered before the next write
                elif opcode == protocol.OP_PONG:
                    pong_seen = True
                elif opcode == protocol.OP_CLOSE:
                    code, reason = protocol.parse_close(payload)
                    if not self._router.closing():
                        out += protocol.encode_close(code or protocol.CLOSE_NORMAL)
                        return ConnectionLost(
                            f"the server closed the connection (code {code}"
                            + (f": {reason}" if reason else "")
                            + ")"
                        ), pong_seen
                    return ClientClosed("the connection was closed by the client"), pong_seen
                else:
                    self._stats.junk += 1
                    logger.warning("ignored a binary frame of %d bytes", len(payload))
            if len(data) < _READ_SIZE and not (
                isinstance(sock, ssl.SSLSocket) and sock.pending()
            ):
                break  # the socket is drained; skip the recv that would only say so
        if answered:
            self._router.routed()  # once per batch of replies, not once per reply
        return None, pong_seen


class _Counters(Protocol):
    requests: int
    junk: int


def _send_quietly(sock: Socket, frame: bytes) -> None:
    try:
        sock.send(frame)
    except OSError:
        pass  # best effort: the connection is being abandoned anyway


def _describe_loss(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
