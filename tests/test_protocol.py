"""Tests of inspector.protocol: frames and the envelope, as bytes and text, no I/O."""

from __future__ import annotations

import os
import struct
import threading
from typing import List

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
    """Frames fed one byte at a time come out whole and in order, text decoded."""
    stream = server_frame(b"a" * 200) + server_frame(b"ping", protocol.OP_PING) + server_frame(
        b"b" * 70000
    )
    reader = protocol.FrameReader(None)
    frames = []
    for i in range(len(stream)):
        frames += reader.feed(stream[i : i + 1])
    assert frames == [
        (protocol.OP_TEXT, "a" * 200),
        (protocol.OP_PING, b"ping"),
        (protocol.OP_TEXT, "b" * 70000),
    ]


def test_reader_parses_many_frames_in_one_chunk() -> None:
    """Many small frames in one recv() all come out of one feed()."""
    reader = protocol.FrameReader(None)
    chunk = b"".join(server_frame(str(i).encode()) for i in range(1000))
    assert [p for _, p in reader.feed(chunk)] == [str(i) for i in range(1000)]


def test_reader_assembles_fragments_around_control_frames() -> None:
    """A fragmented message is joined; a ping between fragments comes out on its own."""
    reader = protocol.FrameReader(None)
    stream = (
        server_frame(b"he", protocol.OP_TEXT, fin=False)
        + server_frame(b"x", protocol.OP_PING)
        + server_frame(b"ll", protocol.OP_CONTINUATION, fin=False)
        + server_frame(b"o", protocol.OP_CONTINUATION)
    )
    assert reader.feed(stream) == [(protocol.OP_PING, b"x"), (protocol.OP_TEXT, "hello")]


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
        ('{"params": {}}', "neither an id nor a method"),
        ('{"id": true, "result": 1}', "not an integer"),
        ('{"method": "M", "params": {"x": 1e400}}', "'params.x' is 1e400"),
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


# --- issue 10: what a hostile server may send ----------------------------------------------


def test_empty_fragments_are_refused_like_an_oversized_message() -> None:
    """Zero-length continuation frames count FRAGMENT_COST each, so an endless run fails."""
    limit = 1000
    reader = protocol.FrameReader(limit)
    reader.feed(server_frame(b"{", protocol.OP_TEXT, fin=False))
    empty = server_frame(b"", protocol.OP_CONTINUATION, fin=False)
    allowed = (limit - 1 - protocol.FRAGMENT_COST) // protocol.FRAGMENT_COST
    assert reader.feed(empty * allowed) == []
    with pytest.raises(protocol.FrameViolation, match="per fragment") as caught:
        reader.feed(empty * 2)
    assert caught.value.close_code == protocol.CLOSE_MESSAGE_TOO_BIG


def test_fragmented_message_within_the_limit_is_whole() -> None:
    """A message cut into many small fragments still comes out whole when within the limit."""
    reader = protocol.FrameReader(10_000)
    text = b'{"id":1,"result":"' + b"x" * 400 + b'"}'
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    stream = server_frame(pieces[0], protocol.OP_TEXT, fin=False)
    stream += b"".join(server_frame(p, protocol.OP_CONTINUATION, fin=False) for p in pieces[1:-1])
    stream += server_frame(pieces[-1], protocol.OP_CONTINUATION)
    assert reader.feed(stream) == [(protocol.OP_TEXT, text.decode())]


def test_reader_releases_everything_after_a_violation() -> None:
    """After a violation the reader holds nothing and refuses any further bytes."""
    reader = protocol.FrameReader(100_000)
    reader.feed(server_frame(b"a" * 50_000, protocol.OP_TEXT, fin=False) + b"\x00\x02ab")
    with pytest.raises(protocol.FrameViolation):
        reader.feed(b"\xc1\x00")  # reserved bits, mid-stream
    assert len(reader._message) == 0 and reader._chunks == []
    with pytest.raises(protocol.FrameViolation, match="reserved bits"):
        reader.feed(server_frame(b"{}"))


@pytest.mark.parametrize("fragmented", [False, True])
def test_text_that_is_not_utf8_closes_with_1007(fragmented: bool) -> None:
    """A text message that is not UTF-8 fails the stream with close code 1007."""
    payload = b'{"id":1,"result":"\xff\xfe"}'
    if fragmented:
        stream = server_frame(payload[:19], protocol.OP_TEXT, fin=False) + server_frame(
            payload[19:], protocol.OP_CONTINUATION
        )
    else:
        stream = server_frame(payload)
    with pytest.raises(protocol.FrameViolation, match="UTF-8") as caught:
        protocol.FrameReader(None).feed(stream)
    assert caught.value.close_code == protocol.CLOSE_INVALID_DATA


def test_binary_messages_are_not_checked_as_utf8() -> None:
    """Only text frames must be UTF-8."""
    assert protocol.FrameReader(None).feed(server_frame(b"\xff", protocol.OP_BINARY)) == [
        (protocol.OP_BINARY, b"\xff")
    ]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_close_codes_a_peer_may_not_send_are_a_protocol_error(code: int) -> None:
    """RFC 6455 7.4: reserved and local-only codes are answered with 1002."""
    with pytest.raises(protocol.FrameViolation, match=str(code)) as caught:
        protocol.parse_close(struct.pack("!H", code))
    assert caught.value.close_code == protocol.CLOSE_PROTOCOL_ERROR


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4999])
def test_close_codes_a_peer_may_send_are_accepted(code: int) -> None:
    """Registered codes and the 3000-4999 range come back as sent."""
    assert protocol.parse_close(struct.pack("!H", code) + b"why") == (code, "why")


def test_close_frame_of_one_byte_or_bad_reason_is_refused() -> None:
    """A one-byte payload is 1002; a reason that is not UTF-8 is 1007."""
    with pytest.raises(protocol.FrameViolation) as caught:
        protocol.parse_close(b"\x03")
    assert caught.value.close_code == protocol.CLOSE_PROTOCOL_ERROR
    with pytest.raises(protocol.FrameViolation) as caught:
        protocol.parse_close(struct.pack("!H", 1000) + b"\xff")
    assert caught.value.close_code == protocol.CLOSE_INVALID_DATA


def test_close_reason_is_made_printable() -> None:
    """Escape sequences in a close reason come back escaped, not raw."""
    code, reason = protocol.parse_close(struct.pack("!H", 1001) + b"\x1b[2Jgone")
    assert (code, reason) == (1001, "\\x1b[2Jgone")


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"id": 7}', "neither a result nor an error"),
        ('{"id": 7, "error": null}', "neither a result nor an error"),
        ('{"id": 7, "error": {"message": "m"}}', "no code"),
        ('{"id": 7, "error": {"code": "500", "message": "m"}}', "code that is a string"),
        ('{"id": 7, "error": {"code": true, "message": "m"}}', "code that is a boolean"),
        ('{"id": 7, "error": {"code": 5.0, "message": "m"}}', "code that is a number"),
        ('{"id": 7, "error": {"code": 500}}', "no message"),
        ('{"id": 7, "error": {"code": 500, "message": 3}}', "message that is an integer"),
        ('{"id": 7, "error": "boom"}', "error is a string"),
        ('{"id": 7, "result": 1, "error": {"code": 1, "message": "m"}}', "both"),
        ('{"id": 7, "result": {"w": [{"fontSize": 1e400}]}}', r"'result\.w\[0\]\.fontSize'"),
        ('{"id": 7, "result": -1e400}', "'result' is -1e400"),
    ],
)
def test_junk_reply_with_an_id_is_a_bad_reply_for_that_id(text: str, reason: str) -> None:
    """A reply with an integer id but a junk shape raises BadReply carrying the id."""
    with pytest.raises(protocol.BadReply, match=reason) as caught:
        protocol.parse_message(text)
    assert caught.value.request_id == 7
    assert isinstance(caught.value, ProtocolError)


def test_result_beside_a_null_error_is_a_reply() -> None:
    """``"error": null`` beside a result is no error (JSON-RPC 1.0 servers send it)."""
    assert protocol.parse_message('{"id": 2, "result": 1, "error": null}') == protocol.Reply(2, 1)


def test_small_and_ordinary_floats_pass() -> None:
    """Underflow to zero and ordinary floats are fine; only infinities are refused."""
    assert protocol.parse_message('{"id": 1, "result": [1e-400, 2.5, -0.0]}') == (
        protocol.Reply(1, [0.0, 2.5, -0.0])
    )


def test_decode_json_names_the_path_of_a_non_finite_number() -> None:
    """decode_json raises NonFiniteNumber with the path; NaN and Infinity stay refused."""
    with pytest.raises(protocol.NonFiniteNumber) as caught:
        protocol.decode_json('{"a": {"b": [0, 1E999]}}')
    assert caught.value.path == "a.b[1]" and caught.value.literal == "1E999"
    with pytest.raises(ValueError, match="NaN"):
        protocol.decode_json("NaN")


def test_bad_reply_pickles() -> None:
    """BadReply survives pickling with its id and reason."""
    import pickle

    copy = pickle.loads(pickle.dumps(protocol.BadReply(3, "why")))
    assert (copy.request_id, copy.reason, str(copy)) == (3, "why", "reply 3 is malformed: why")


def test_mask_keys_are_handed_out_once_across_threads() -> None:
    """Keys taken from the pool by many threads at once are 4 random bytes each and never
    the same slice twice (random 32-bit keys repeat by chance about once in 10^5 draws)."""
    taken: List[List[bytes]] = []

    def take() -> None:
        keys = []
        for _ in range(500):
            keys.extend(protocol.mask_keys(3))
        taken.append(keys)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    keys = [key for keys in taken for key in keys]
    assert len(keys) == 8 * 1500 and {len(key) for key in keys} == {4}
    assert len(keys) - len(set(keys)) <= 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_mask_keys_of_its_own() -> None:
    """A child does not hand out the keys its parent's pool holds next."""
    protocol.mask_keys(1)  # the pool is full, and the child would inherit it
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next keys to the parent, then leave at once
        try:
            os.write(write_end, b"".join(protocol.mask_keys(100)))
        finally:
            os._exit(0)
    os.close(write_end)
    child = b""
    while len(child) < 400:
        chunk = os.read(read_end, 400)
        if not chunk:
            break
        child += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    ours = b"".join(protocol.mask_keys(100))
    assert len(child) == 400 and child != ours
