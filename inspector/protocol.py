"""The documents API's envelope and the WebSocket frames that carry it, with no I/O.

Everything here turns bytes into values and values into bytes; the socket, the thread and the
futures live in :mod:`inspector.connection`. Keeping the wire logic free of I/O is what lets the
reader thread stay a thin loop, and lets this module be tested with plain byte strings.

Outgoing frames are packed here rather than by websocket-client's ``ABNF``: building an ``ABNF``
object per frame cost 5.6 us a request, measured, more than the JSON encoding, and even its
``ABNF.mask`` alone costs 1.5 us for a 70-byte request (it converts both operands to arrays),
against 0.5 us for the one XOR of two integers below. Large inspections send tens of
thousands of frames, so this is on the critical path. Incoming frames are parsed here because
websocket-client's reader cannot do two things this client needs: refuse an oversized message
from its announced length before the payload is held in memory, and parse frames out of a
buffer filled by a non-blocking socket that one thread owns (see connection.py for why that
thread owns the socket).
"""

from __future__ import annotations

import json
import os
import struct
import threading
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from inspector.display import printable
from inspector.exceptions import ProtocolError

__all__ = [
    "BadReply",
    "CLOSE_INVALID_DATA",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL_ERROR",
    "ErrorReply",
    "FRAGMENT_COST",
    "NonFiniteNumber",
    "FrameReader",
    "FrameViolation",
    "Incoming",
    "Notification",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Reply",
    "decode_json",
    "encode_close",
    "encode_frame",
    "encode_request",
    "mask_keys",
    "parse_close",
    "parse_message",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_DATA_OPCODES = (OP_CONTINUATION, OP_TEXT, OP_BINARY)
_CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_MESSAGE_TOO_BIG = 1009

# The close codes a peer may send (RFC 6455 section 7.4 and the IANA registry): 1004 is
# reserved, 1005, 1006 and 1015 only report locally what happened and never go on the wire,
# 1016-2999 are reserved for the protocol itself, 3000-4999 belong to libraries and
# applications. Anything else received is answered with 1002.
_RECEIVABLE_CLOSE_CODES = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))

#: What each fragment of a fragmented message counts towards ``max_message_size`` beyond its
#: payload: at least its own header, so an endless run of empty fragments is refused like an
#: oversized message instead of being read for ever. A message sent in one frame, as servers
#: do, is not affected.
FRAGMENT_COST = 16


class FrameViolation(ProtocolError):
    """The server broke the WebSocket framing; the connection must close with ``close_code``."""

    def __init__(self, message: str, close_code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.close_code = close_code

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (str(self), self.close_code), self.__dict__)


# --- frames -------------------------------------------------------------------------------

Frame = Tuple[int, Union[str, bytes]]
"""A whole message (fragments joined) or a control frame: (opcode, payload).

The payload of a text message is its text, a ``str``, decoded once here, straight from the
receive buffer; every other payload is ``bytes``.
"""


class FrameReader:
    """Parse server frames from a byte stream, assembling fragmented messages.

    ``feed()`` takes whatever the socket gave and returns every message and control frame now
    complete. Memory is bounded by ``max_message_size``:

    * A data frame whose announced length would take the message past ``max_message_size``
      raises :class:`FrameViolation` (close code 1009) from its header alone, before any of its
      payload is kept.
    * The fragments of a message are appended to one buffer as they come, so what a message
      holds while it arrives is its payload, however it is cut; each fragment also counts
      :data:`FRAGMENT_COST` bytes towards the limit, so a message cannot be spun out of
      endlessly many empty fragments.
    * Text messages must be UTF-8 (RFC 6455 section 8.1): one that is not raises
      :class:`FrameViolation` with close code 1007.
    * After a violation everything held is dropped at once; the reader is then spent, and any
      further ``feed()`` raises the same violation again.
    """

    def __init__(self, max_message_size: Optional[int]) -> None:
        self._max_message_size = max_message_size
        # Bytes received but not yet parsed, kept as a list of chunks with a byte count so that
        # a large frame arriving in many pieces is joined once, not once per piece.
        self._chunks: List[bytes] = []
        self._buffered = 0
        self._needed = 2  # bytes the next parse step needs before it is worth trying
        # The fragmented message being assembled: its payload so far, what it counts towards
        # the limit (payload plus FRAGMENT_COST per fragment), and its opcode.
        self._message = bytearray()
        self._message_cost = 0
        self._fragment_opcode: Optional[int] = None
        self._violation: Optional[FrameViolation] = None

    def feed(self, data: bytes) -> List[Frame]:
        """Take received bytes; return the messages and control frames they complete.

        Raises:
            FrameViolation: the stream broke RFC 6455 or a message is too large; everything the
                reader held is released.
        """
        if self._violation is not None:
            raise self._violation
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered < self._needed:
            return []
        buffer = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        frames: List[Frame] = []
        try:
            position = self._parse(buffer, frames)
        except FrameViolation as violation:
            self._release(violation)
            raise
        rest = buffer[position:] if position else buffer
        self._chunks = [rest] if rest else []
        self._buffered = len(rest)
        return frames

    def _release(self, violation: FrameViolation) -> None:
        """Drop everything held: the stream cannot be parsed past a violation."""
        self._violation = violation
        self._chunks = []
        self._buffered = 0
        self._message = bytearray()
        self._message_cost = 0

    def _parse(self, buffer: bytes, frames: List[Frame]) -> int:
        """Parse whole frames from ``buffer`` into ``frames``; return the bytes consumed."""
        position = 0
        end = len(buffer)
        while True:
            if end - position < 2:
                self._needed = 2
                return position
            first, second = buffer[position], buffer[position + 1]
            opcode = first & 0x0F
            length = second & 0x7F
            header = 2
            if length == 126:
                header = 4
                if end - position < header:
                    self._needed = header
                    return position
                (length,) = struct.unpack_from("!H", buffer, position + 2)
            elif length == 127:
                header = 10
                if end - position < header:
                    self._needed = header
                    return position
                (length,) = struct.unpack_from("!Q", buffer, position + 2)
            self._check_header(first, second, opcode, length)
            if end - position < header + length:
                self._needed = header + length
                return position
            start = position + header
            position = start + length
            if opcode in _CONTROL_OPCODES:
                frames.append((opcode, buffer[start:position]))
            elif first & 0x80:  # FIN
                if self._fragment_opcode is None:
                    if opcode == OP_TEXT:
                        # Decoded from a view: no copy of the payload beside the buffer.
                        frames.append((opcode, _decode_text(memoryview(buffer)[start:position])))
                    else:
                        frames.append((opcode, buffer[start:position]))
                else:
                    self._message += memoryview(buffer)[start:position]
                    message, self._message = self._message, bytearray()
                    opcode = self._fragment_opcode
                    self._message_cost = 0
                    self._fragment_opcode = None
                    frames.append(
                        (opcode, _decode_text(message) if opcode == OP_TEXT else bytes(message))
                    )
            else:
                if self._fragment_opcode is None:
                    self._fragment_opcode = opcode
                self._message += memoryview(buffer)[start:position]
                self._message_cost += length + FRAGMENT_COST

    def _check_header(self, first: int, second: int, opcode: int, length: int) -> None:
        if first & 0x70:
            raise FrameViolation("reserved bits set in a frame (no extension was negotiated)")
        if second & 0x80:
            raise FrameViolation("the server sent a masked frame")
        if opcode in _CONTROL_OPCODES:
            if not first & 0x80 or length > 125:
                raise FrameViolation("a control frame was fragmented or longer than 125 bytes")
            return
        if opcode not in _DATA_OPCODES:
            raise FrameViolation(f"unknown frame opcode {opcode:#x}")
        if opcode == OP_CONTINUATION and self._fragment_opcode is None:
            raise FrameViolation("a continuation frame with no message to continue")
        if opcode != OP_CONTINUATION and self._fragment_opcode is not None:
            raise FrameViolation("a new message began before the fragmented one ended")
        limit = self._max_message_size
        if limit is not None and self._message_cost + length > limit:
            fragments = "" if self._fragment_opcode is None else (
                f" (counting {FRAGMENT_COST} bytes per fragment)"
            )
            raise FrameViolation(
                f"incoming message of at least {self._message_cost + length} bytes"
                f"{fragments} exceeds max_message_size={limit}",
                close_code=CLOSE_MESSAGE_TOO_BIG,
            )


def _decode_text(payload: Union[memoryview, bytearray]) -> str:
    try:
        return str(payload, "utf-8")
    except UnicodeDecodeError as exc:
        raise FrameViolation(
            f"a text message is not valid UTF-8 (at byte {exc.start})",
            close_code=CLOSE_INVALID_DATA,
        ) from None


_pack_short = struct.Struct("!BB").pack
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


class _MaskKeyPool:
    """Random masking keys, drawn from the OS a thousand at a time.

    Not one call per frame, nor per batch: ``os.urandom`` releases the GIL, and a small
    document's follow-ups come in batches of two or three, so a call per batch let the I/O
    thread and the senders trade the interpreter thousands of times a second (in a Dask
    worker, whose own threads take it too, measured as a tenth of the worker's time). Every
    key still comes from the OS's generator, and is handed out once.
    """

    _POOL_BYTES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _pool and _offset against other senders
        self._pool = b""
        self._offset = 0

    def take(self, count: int) -> List[bytes]:
        size = 4 * count
        with self._lock:
            if self._offset + size > len(self._pool):
                self._pool = os.urandom(max(size, self._POOL_BYTES))
                self._offset = 0
            pool, start = self._pool, self._offset
            self._offset += size
        return [pool[i : i + 4] for i in range(start, start + size, 4)]


_mask_key_pool = _MaskKeyPool()


def _new_pool_after_fork() -> None:
    # A child must not hand out the keys its parent hands out too, nor inherit a held lock.
    global _mask_key_pool
    _mask_key_pool = _MaskKeyPool()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_new_pool_after_fork)


def mask_keys(count: int) -> List[bytes]:
    """Return ``count`` fresh random masking keys (RFC 6455: a fresh random key per frame)."""
    return _mask_key_pool.take(count)


def encode_frame(
    payload: Union[str, bytes], opcode: int = OP_TEXT, key: Optional[bytes] = None
) -> bytes:
    """Return one final, masked client frame (RFC 6455: a fresh random key per frame).

    Args:
        payload: The text or bytes to send.
        opcode: The frame's opcode.
        key: The 4-byte masking key, from :func:`mask_keys`; a fresh one by default.
    """
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    length = len(data)
    first = 0x80 | opcode
    if length < 126:
        header = _pack_short(first, 0x80 | length)
    elif length < 1 << 16:
        header = _pack_medium(first, 0x80 | 126, length)
    else:
        header = _pack_long(first, 0x80 | 127, length)
    if key is None:
        key = os.urandom(4)
    # XOR with the key repeated, as one operation on two integers.
    mask = int.from_bytes((key * ((length >> 2) + 1))[:length], "little")
    return header + key + (int.from_bytes(data, "little") ^ mask).to_bytes(length, "little")


def encode_close(code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
    """Return a masked close frame carrying ``code`` and ``reason``."""
    return encode_frame(struct.pack("!H", code) + reason.encode("utf-8"), OP_CLOSE)


def parse_close(payload: bytes) -> Tuple[Optional[int], str]:
    """Return the code and reason of a close frame's payload (code None when absent).

    The reason comes back fit for a message (see :func:`inspector.display.printable`).

    Raises:
        FrameViolation: the payload is one byte long, or its code is one a peer may not send
            (0, 999, 1004-1006, 1015, 5000, ...): close code 1002, as RFC 6455 section 7.4
            asks; or the reason is not UTF-8: close code 1007.
    """
    if not payload:
        return None, ""
    if len(payload) < 2:
        raise FrameViolation("a close frame with a one-byte payload")
    (code,) = struct.unpack_from("!H", payload)
    if code not in _RECEIVABLE_CLOSE_CODES and not 3000 <= code <= 4999:
        raise FrameViolation(f"the server closed with code {code}, which a peer may not send")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameViolation(
            "the server's close reason is not valid UTF-8", close_code=CLOSE_INVALID_DATA
        ) from None
    return code, printable(reason)


# --- the envelope -------------------------------------------------------------------------


class Reply(NamedTuple):
    """A successful reply: ``{"id": ..., "result": ...}``."""

    id: int
    result: Any


class ErrorReply(NamedTuple):
    """An error reply: ``{"id": ..., "error": {"code", "message", "data"?}}``."""

    id: int
    code: int
    message: str
    data: Any


class Notification(NamedTuple):
    """A message without an id: ``{"method": ..., "params": ...}``."""

    method: str
    params: Any


Incoming = Union[Reply, ErrorReply, Notification]


class BadReply(ProtocolError):
    """A reply whose id is an integer but whose shape is junk.

    Raised by :func:`parse_message` rather than returned, so that a reader that does not know
    it treats it as any other junk message; a connection that does fails the request with this
    id at once (a ProtocolError saying what was wrong) instead of letting it wait out its
    timeout, and carries on.

    Attributes:
        request_id: The id the reply carried.
        reason: What was wrong with it, fit for a message.
    """

    def __init__(self, request_id: int, reason: str) -> None:
        super().__init__(f"reply {request_id} is malformed: {reason}")
        self.request_id = request_id
        self.reason = reason

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.request_id, self.reason), self.__dict__)


class NonFiniteNumber(ValueError):
    """A JSON number beyond a float's range (``1e400``): it would become infinity.

    Infinity is not JSON, and a value the client cannot write back out must not get in.

    Attributes:
        literal: The number as the text spelled it.
        path: Where it is, as ``result.widgets[0].fontSize`` ("" when not yet known).
    """

    def __init__(self, literal: str, path: str = "") -> None:
        where = f"field {printable(path, quote=True)}" if path else "a number"
        super().__init__(f"{where} is {printable(literal, 40)}, beyond the range of a float")
        self.literal = literal
        self.path = path

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.literal, self.path), self.__dict__)

_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_request(request_id: int, method: str, params: Optional[Mapping[str, Any]]) -> str:
    """Return the JSON text of one request; omitted params are sent as ``{}``.

    Raises:
        ValueError, TypeError: params cannot be JSON (the caller translates these).
    """
    # Joined by hand around the encoded parts: the envelope's shape is fixed, and this runs
    # once per request, tens of thousands of times per large inspection. The usual params,
    # one string id, skip the general encoder.
    if type(params) is dict and len(params) == 1 and type(params.get("id")) is str:
        encoded_params = '{"id":' + _encode_string(params["id"]) + "}"
    else:
        encoded_params = _encode_json(params) if params else "{}"
    encoded_method = _encoded_methods.get(method)
    if encoded_method is None:
        encoded_method = _encode_json(method)
        if len(_encoded_methods) < 1024:  # a caller inventing names must not grow it for ever
            _encoded_methods[method] = encoded_method
    return f'{{"id":{int(request_id)},"method":{encoded_method},"params":{encoded_params}}}'


_encode_string = json.encoder.encode_basestring_ascii  # what the encoder uses for a str
_encoded_methods: Dict[str, str] = {}  # method names recur: encode each once


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    # Called by the C scanner for numbers with a fraction or exponent only (integers have
    # their own path), which documents rarely hold: the cost stays off the common case.
    value = float(literal)
    if value - value != 0.0:  # inf - inf is nan; a literal cannot spell nan itself
        raise NonFiniteNumber(literal)
    return value


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_scan_once = _decoder.scan_once  # type: ignore[attr-defined]
# Only to find where a non-finite number is, once one was refused.
_lenient_decoder = json.JSONDecoder(parse_constant=_refuse_constant)


def _decode_json(text: str) -> Any:
    # The C scanner straight away: JSONDecoder.decode() wraps it in two regular-expression
    # matches for surrounding whitespace, which servers do not send. Text that does not scan
    # whole in one go takes the full path, which also words the error.
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return _decoder.decode(text)
    return value if end == len(text) else _decoder.decode(text)


def _locate_non_finite(text: str) -> Tuple[Any, str]:
    """Decode ``text`` letting infinities in; return it and the path of the first one."""
    document = _lenient_decoder.decode(text)
    stack: List[Tuple[str, Any]] = [("", document)]
    while stack:  # depth first, in document order; a loop, as nesting may be deep
        path, value = stack.pop()
        if type(value) is float and value - value != 0.0:
            return document, path
        if type(value) is dict:
            stack.extend(
                (f"{path}.{key}" if path else key, item)
                for key, item in reversed(list(value.items()))
            )
        elif type(value) is list:
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(
                list(enumerate(value))
            ))
    return document, ""


def decode_json(text: str) -> Any:
    """Decode JSON text as the client accepts it: no NaN, no Infinity, no number beyond a float.

    Raises:
        NonFiniteNumber: a number such as ``1e400``; its ``path`` says where.
        ValueError: the text is not JSON (:class:`json.JSONDecodeError`).
        RecursionError: the nesting is too deep for the parser.
    """
    try:
        return _decode_json(text)
    except NonFiniteNumber as exc:
        _, path = _locate_non_finite(text)
        raise NonFiniteNumber(exc.literal, path) from None


_JSON_TYPE_NAMES = {
    dict: "an object", list: "an array", str: "a string", int: "an integer",
    float: "a number", bool: "a boolean", type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def parse_message(text: str) -> Incoming:
    """Classify one incoming text message.

    Raises:
        BadReply: the message has an integer id, so it answers a request, but is junk: no
            result nor error, both, an error that is not an object or lacks an integer code or
            a string message, a number beyond a float's range.
        ProtocolError: the text is not a JSON object of one of the three envelope shapes; the
            message says which way it failed and never quotes the payload.
    """
    try:
        message = _decode_json(text)
    except NonFiniteNumber as exc:
        document, path = _locate_non_finite(text)
        found = NonFiniteNumber(exc.literal, path)
        request_id = document.get("id") if type(document) is dict else None
        if type(request_id) is int:
            raise BadReply(request_id, str(found)) from None
        raise ProtocolError(f"message is not valid JSON ({found})") from None
    except (ValueError, RecursionError) as exc:
        reason = "nesting too deep" if isinstance(exc, RecursionError) else str(exc)
        raise ProtocolError(f"message is not valid JSON ({reason})") from exc
    if type(message) is not dict:
        raise ProtocolError(f"message is JSON {type(message).__name__}, not an object")
    request_id = message.get("id")
    if request_id is None:
        method = message.get("method")
        if type(method) is not str:
            raise ProtocolError("message has neither an id nor a method name")
        return Notification(method, message.get("params"))
    if type(request_id) is not int:
        raise ProtocolError(f"message id is {type(request_id).__name__}, not an integer")
    error = message.get("error")
    if "result" in message:
        if error is not None:
            raise BadReply(request_id, "it has both a result and an error")
        return Reply(request_id, message["result"])
    if error is None:
        raise BadReply(request_id, "it has neither a result nor an error")
    if type(error) is not dict:
        raise BadReply(request_id, f"its error is {_json_type(error)}, not an object")
    code, text_of_error = error.get("code"), error.get("message")
    if type(code) is not int:
        what = "no code" if code is None else f"a code that is {_json_type(code)}"
        raise BadReply(request_id, f"its error has {what}, not an integer code")
    if type(text_of_error) is not str:
        what = "no message" if text_of_error is None else (
            f"a message that is {_json_type(text_of_error)}"
        )
        raise BadReply(request_id, f"its error has {what}, not a string message")
    return ErrorReply(request_id, code, text_of_error, error.get("data"))
