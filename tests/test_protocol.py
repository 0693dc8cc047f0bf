"""Tests of inspector.protocol: frames and the envelope, as bytes and text, no I/O."""

from __future__ import annotations

import struct

import pytest

from inspector import protocol
from inspector.exceptions import ProtocolError


def server_frame(payload: bytes, opcode: int = protocol.OP_TEXT, fin: bool = True) -> bytes:
    """Build an unmasked frame as a server sends it."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


def test_reader_parses_frames_split_at_every_byte() -> None:
    """Frames fed one byte at a time come out whole and in order."""
    stream = server_frame(b"a" * 200) + server_frame(b"ping", protocol.OP_PING) + server_frame(
        b"b" * 70000
    )
    reader = protocol.FrameReader(None)
    frames = []
    for i in range(len(stream)):
        frames += reader.feed(stream[i : i + 1])
    assert frames == [
        (protocol.OP_TEXT, b"a" * 200),
        (protocol.OP_PING, b"ping"),
        (protocol.OP_TEXT, b"b" * 70000),
    ]


def test_reader_parses_many_frames_in_one_chunk() -> None:
    """Many small frames in one recv() all come out of one feed()."""
    reader = protocol.FrameReader(None)
    chunk = b"".join(server_frame(str(i).encode()) for i in range(1000))
    assert [p for _, p in reader.feed(chunk)] == [str(i).encode() for i in range(1000)]


def test_reader_assembles_fragments_around_control_frames() -> None:
    """A fragmented message is joined; a ping between fragments comes out on its own."""
    reader = protocol.FrameReader(None)
    stream = (
        server_frame(b"he", protocol.OP_TEXT, fin=False)
        + server_frame(b"x", protocol.OP_PING)
        + server_frame(b"ll", protocol.OP_CONTINUATION, fin=False)
        + server_frame(b"o", protocol.OP_CONTINUATION)
    )
    assert reader.feed(stream) == [(protocol.OP_PING, b"x"), (protocol.OP_TEXT, b"hello")]


def test_oversized_frame_refused_from_its_header_alone() -> None:
    """A frame announcing more than max_message_size fails before any payload is fed."""
    reader = protocol.FrameReader(1000)
    header = struct.pack("!BBQ", 0x81, 127, 10 * 2**20)
    with pytest.raises(protocol.FrameViolation) as caught:
        reader.feed(header)
    assert caught.value.close_code == protocol.CLOSE_MESSAGE_TOO_BIG
    assert "max_message_size=1000" in str(caught.value)


def test_oversized_fragmented_message_refused_by_running_total() -> None:
    """Fragments each under the limit fail once their running total passes it."""
    reader = protocol.FrameReader(1000)
    assert reader.feed(server_frame(b"a" * 600, protocol.OP_TEXT, fin=False)) == []
    with pytest.raises(protocol.FrameViolation) as caught:
        reader.feed(server_frame(b"a" * 600, protocol.OP_CONTINUATION, fin=False)[:4])
    assert caught.value.close_code == protocol.CLOSE_MESSAGE_TOO_BIG


@pytest.mark.parametrize(
    "frame, reason",
    [
        (b"\xc1\x00", "reserved bits"),
        (b"\x81\x80\x00\x00\x00\x00", "masked"),
        (b"\x83\x00", "opcode"),
        (b"\x80\x00", "continuation"),
        (b"\x09\x00", "control frame"),
    ],
)
def test_reader_refuses_broken_framing(frame: bytes, reason: str) -> None:
    """Reserved bits, masking, unknown opcodes, stray continuations and split pings fail."""
    with pytest.raises(protocol.FrameViolation, match=reason):
        protocol.FrameReader(None).feed(frame)


def test_encode_request_and_client_frame_is_masked() -> None:
    """A request is compact JSON with params {} when omitted; client frames are masked."""
    assert protocol.encode_request(7, "GetDocument", None) == (
        '{"id":7,"method":"GetDocument","params":{}}'
    )
    frame = protocol.encode_frame("hello")
    assert frame[0] == 0x81 and frame[1] & 0x80


def test_encode_request_refuses_nan() -> None:
    """Params that are not JSON (NaN) are refused, not sent."""
    with pytest.raises(ValueError):
        protocol.encode_request(1, "M", {"x": float("nan")})


@pytest.mark.parametrize(
    "text, kind",
    [
        ('{"id": 3, "result": {"a": 1}}', protocol.Reply(3, {"a": 1})),
        (
            '{"id": 4, "error": {"code": 404, "message": "no", "data": {"id": "d"}}}',
            protocol.ErrorReply(4, 404, "no", {"id": "d"}),
        ),
        (
            '{"id": 5, "error": {"code": 500, "message": "x"}}',
            protocol.ErrorReply(5, 500, "x", None),
        ),
        (
            '{"method": "DocumentChanged", "params": {"id": "d"}}',
            protocol.Notification("DocumentChanged", {"id": "d"}),
        ),
    ],
)
def test_parse_message_classifies(text: str, kind: protocol.Incoming) -> None:
    """Replies, error replies and notifications are told apart."""
    assert protocol.parse_message(text) == kind


@pytest.mark.parametrize(
    "text, reason",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ('{"id": 1, "result": NaN}', "NaN"),
        ('{"id": 1, "result": Infinity}', "Infinity"),
        ("[" * 100000 + "]" * 100000, "nesting too deep"),
        ('{"id": "7", "result": 1}', "not an integer"),
        ('{"id": 7}', "neither a result nor an error"),
        ('{"id": 7, "error": {"code": "x", "message": "m"}}', "integer code"),
        ('{"params": {}}', "neither an id nor a method"),
    ],
)
def test_parse_message_refuses_junk(text: str, reason: str) -> None:
    """Each kind of junk raises ProtocolError saying why, without quoting the payload."""
    with pytest.raises(ProtocolError, match=reason):
        protocol.parse_message(text)


def test_parse_close() -> None:
    """A close payload gives its code and reason; an empty one gives no code."""
    assert protocol.parse_close(struct.pack("!H", 1001) + b"idle") == (1001, "idle")
    assert protocol.parse_close(b"") == (None, "")


@pytest.mark.parametrize("size", [0, 1, 3, 4, 125, 126, 65535, 65536, 100003])
def test_client_frames_unmask_to_the_payload(size: int) -> None:
    """Every length class masks and unmasks back to the payload, checked by websocket-client."""
    from websocket import ABNF

    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    frame = protocol.encode_frame(payload, protocol.OP_BINARY)
    header = 2 + (2 if 126 <= size < 65536 else 8 if size >= 65536 else 0)
    key = frame[header : header + 4]
    assert ABNF.mask(key, frame[header + 4 :]) == payload
    assert len(protocol.mask_keys(3)) == 3 and len(set(protocol.mask_keys(50))) == 50
