"""Tests of inspector.Connection against the sample server and raw sockets, no mocks."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import Future
from typing import Any, Dict, List, Tuple

import pytest
from raw_servers import free_port, raw_server
from support import MS, run_threads, wait_until

from inspector import (
    ClientClosed,
    Connection,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    ProtocolError,
    RequestTimeout,
    ServerError,
)
from inspector.server import Faults, run_sample_server

TOKEN = "tok-9f3e-very-secret"


def generated(tag: str) -> Dict[str, str]:
    """Params for a distinct generated document."""
    return {"id": f"gen-1x1-{tag}"}


# --- 1. routing ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_4000_requests_from_8_threads_each_reach_their_caller(sample_server: Any) -> None:
    """Replies in scrambled order reach the right Future, across 8 threads at once."""
    sample_server.faults.latency = 1 * MS
    sample_server.faults.jitter = 10 * MS
    errors: List[str] = []
    with Connection(sample_server.url, max_in_flight=None) as conn:

        def worker(thread_no: int) -> None:
            futures = [
                (tag, conn.request("GetDocument", generated(tag)))
                for tag in (f"t{thread_no}n{i}" for i in range(500))
            ]
            for tag, future in futures:
                result = future.result(60)
                if result["id"] != f"gen-1x1-{tag}":
                    errors.append(f"{tag} got {result['id']}")

        run_threads(worker, 8)
        assert errors == []
        assert conn.stats.replies == 4000
        assert conn.pending == 0


def test_request_returns_future_and_call_waits(sample_server: Any) -> None:
    """request() gives a concurrent.futures.Future; call() its result; params may be omitted."""
    with Connection(sample_server.url) as conn:
        future = conn.request("GetDocument", {"id": "doc-1"})
        assert isinstance(future, Future)
        assert future.result(10)["name"] == "Sales overview"
        assert conn.call("GetDocument", {"id": "doc-1"}, timeout=5000 * MS)["id"] == "doc-1"
        assert "doc-1" in conn.call("ListDocuments")["documentIds"]


# --- 2. errors ----------------------------------------------------------------------------


def test_error_reply_raises_server_error_with_all_fields(sample_server: Any) -> None:
    """An error reply carries code, message, data, method and params."""
    with Connection(sample_server.url) as conn:
        with pytest.raises(ServerError) as caught:
            conn.call("GetDocument", {"id": "no-such-doc"})
        error = caught.value
        assert (error.code, error.method) == (404, "GetDocument")
        assert error.params == {"id": "no-such-doc"}
        assert error.message and error.data == {"id": "no-such-doc"}
        assert "no-such-doc" in str(error) and isinstance(error, InspectorError)
        assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"


def test_params_that_are_not_json_are_refused(sample_server: Any) -> None:
    """Params json cannot encode raise InspectorError, chained, and nothing is sent."""
    with Connection(sample_server.url) as conn:
        with pytest.raises(InspectorError) as caught:
            conn.request("GetDocument", {"id": object()})
        assert isinstance(caught.value.__cause__, TypeError)
        assert conn.pending == 0
        assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"


# --- 3. notifications ---------------------------------------------------------------------


def test_notifications_reach_subscribers_until_unsubscribed(sample_server: Any) -> None:
    """Messages without an id go to every subscriber; unsubscribe stops delivery."""
    with Connection(sample_server.url) as conn:
        seen: List[Tuple[str, Any]] = []
        arrived = threading.Event()

        def callback(method: str, params: Any) -> None:
            seen.append((method, params))
            arrived.set()

        unsubscribe = conn.subscribe(callback)
        conn.call("ListDocuments")  # the server has registered the connection
        sample_server.notify("DocumentChanged", {"id": "doc-1"})
        assert arrived.wait(10_000 * MS)
        assert seen == [("DocumentChanged", {"id": "doc-1"})]
        unsubscribe()
        sample_server.notify("DocumentChanged", {"id": "doc-2"})
        wait_until(lambda: conn.stats.notifications == 2)
        conn.call("ListDocuments")
        assert seen == [("DocumentChanged", {"id": "doc-1"})]


def test_raising_callback_is_logged_and_others_still_run(
    sample_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises is logged; the next subscriber and the connection carry on."""
    with Connection(sample_server.url) as conn:
        arrived = threading.Event()

        def broken(method: str, params: Any) -> None:
            raise RuntimeError("subscriber bug")

        conn.subscribe(broken)
        conn.subscribe(lambda method, params: arrived.set())
        conn.call("ListDocuments")
        with caplog.at_level(logging.ERROR, logger="inspector"):
            sample_server.notify("DocumentChanged", {"id": "doc-1"})
            assert arrived.wait(10_000 * MS)
        assert any("subscriber bug" in (r.exc_text or "") for r in caplog.records)
        assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"


def test_callback_making_a_blocking_call_gets_its_reply(sample_server: Any) -> None:
    """A notification callback may call() on the same connection: no deadlock."""
    with Connection(sample_server.url) as conn:
        results: List[Any] = []
        done = threading.Event()

        def refetch(method: str, params: Any) -> None:
            results.append(conn.call("GetDocument", {"id": params["id"]}, timeout=10_000 * MS))
            done.set()

        conn.subscribe(refetch)
        conn.call("ListDocuments")
        sample_server.notify("DocumentChanged", {"id": "doc-1"})
        assert done.wait(15_000 * MS)
        assert results[0]["id"] == "doc-1"


def test_blocking_call_from_a_future_callback_is_refused_at_once(sample_server: Any) -> None:
    """call() inside a done-callback (the I/O thread) raises at once instead of deadlocking."""
    with Connection(sample_server.url) as conn:
        outcome: List[BaseException] = []
        done = threading.Event()

        def on_done(_: Future[Any]) -> None:
            try:
                conn.call("GetDocument", {"id": "doc-1"})
            except InspectorError as error:
                outcome.append(error)
            done.set()

        future = conn.request("GetDocument", {"id": "doc-2"})
        future.add_done_callback(on_done)
        assert done.wait(10_000 * MS)
        if threading.current_thread() is threading.main_thread() and not outcome:
            # The reply came before add_done_callback: the callback ran here, and succeeded.
            return
        assert "I/O thread" in str(outcome[0])
        assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"


# --- 4. junk ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "array", "binary", "nan", "deep"])
def test_junk_is_counted_and_the_reader_carries_on(sample_server: Any, kind: str) -> None:
    """Each kind of junk frame is ignored and counted; every reply still arrives."""
    sample_server.faults.junk_every = 1
    sample_server.faults.junk_kinds = (kind,)
    with Connection(sample_server.url) as conn:
        results = [conn.call("GetDocument", generated(f"j{i}")) for i in range(5)]
        assert [r["id"] for r in results] == [f"gen-1x1-j{i}" for i in range(5)]
        assert conn.stats.junk >= 5
        assert conn.stats.unmatched == 0


def test_unknown_duplicate_and_late_replies_are_counted(sample_server: Any) -> None:
    """Replies to unknown ids, second copies and replies after a timeout are ignored."""
    faults = sample_server.faults
    faults.junk_every = 1
    faults.junk_kinds = ("unknown_id",)
    faults.duplicate_every = 1
    with Connection(sample_server.url) as conn:
        assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"
        wait_until(lambda: conn.stats.unmatched >= 2)  # the unknown id and the copy
        faults.junk_every = 0
        faults.duplicate_every = 0
        faults.latency = 0.5
        before = conn.stats.unmatched
        with pytest.raises(RequestTimeout):
            conn.call("GetDocument", {"id": "doc-1"}, timeout=50 * MS)
        wait_until(lambda: conn.stats.unmatched == before + 1)
        faults.latency = 0
        assert conn.call("GetDocument", {"id": "doc-2"})["id"] == "doc-2"


# --- 5. timeouts --------------------------------------------------------------------------


def test_unanswered_request_times_out_and_connection_stays_usable(sample_server: Any) -> None:
    """No reply: RequestTimeout (a TimeoutError) on time, entry removed, connection usable."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    with Connection(sample_server.url) as conn:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            conn.call("GetDocument", {"id": "doc-silent"}, timeout=300 * MS)
        elapsed = time.monotonic() - started
        assert isinstance(caught.value, RequestTimeout)
        assert 300 * MS <= elapsed < 3000 * MS
        assert "doc-silent" in str(caught.value)
        assert conn.pending == 0
        assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"


def test_future_nobody_waits_on_still_times_out(sample_server: Any) -> None:
    """A request()'s Future fails on time by itself; no caller has to poll."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    with Connection(sample_server.url) as conn:
        failed = threading.Event()
        future = conn.request("GetDocument", {"id": "doc-silent"}, timeout=200 * MS)
        future.add_done_callback(lambda f: failed.set())
        assert failed.wait(5000 * MS)
        assert isinstance(future.exception(), RequestTimeout)
        assert conn.stats.timeouts == 1 and conn.pending == 0


def test_connect_timeout_is_one_deadline_over_a_trickling_handshake() -> None:
    """A server that trickles its handshake reply cannot outlast connect_timeout."""
    with raw_server("trickle") as server:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match="connect_timeout") as caught:
            Connection(server.url, connect_timeout=1000 * MS)
        assert time.monotonic() - started < 4000 * MS
        assert caught.value.status is None


# --- 6. loss ------------------------------------------------------------------------------


def test_loss_fails_every_waiting_request_at_once(sample_server: Any) -> None:
    """A dropped TCP connection fails all waiting requests with ConnectionLost, later ones too."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    with Connection(sample_server.url, request_timeout=60_000 * MS) as conn:
        futures = [conn.request("GetDocument", {"id": "doc-silent"}) for _ in range(20)]
        wait_until(lambda: sample_server.stats.requests >= 20)
        sample_server.drop_connections()
        for future in futures:
            error = future.exception(10)
            assert isinstance(error, ConnectionLost)
            # Chained from the socket error when there was one; an orderly EOF says so.
            assert isinstance(error.__cause__, OSError) or "closed the TCP" in str(error)
        assert not conn.is_open
        started = time.monotonic()
        with pytest.raises(ConnectionLost):
            conn.call("GetDocument", {"id": "doc-1"})
        assert time.monotonic() - started < 1000 * MS


def test_server_close_frame_ends_the_connection(sample_server: Any) -> None:
    """A close frame from the server (idle timeout, 1001) makes later calls fail at once."""
    sample_server.faults.idle_timeout = 200 * MS
    with Connection(sample_server.url) as conn:
        wait_until(lambda: not conn.is_open)
        with pytest.raises(ConnectionLost, match="1001"):
            conn.call("GetDocument", {"id": "doc-1"})


def test_oversized_message_fails_waiting_requests_with_protocol_error(sample_server: Any) -> None:
    """A message over max_message_size closes with 1009 and fails waiters with ProtocolError."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    with Connection(sample_server.url, max_message_size=1000) as conn:
        future = conn.request("GetDocument", {"id": "doc-silent"})
        wait_until(lambda: sample_server.stats.requests >= 1)
        sample_server.send_raw("x" * 5000)
        assert isinstance(future.exception(10), ProtocolError)
        assert "max_message_size" in str(future.exception())
        with pytest.raises(ProtocolError):
            conn.call("GetDocument", {"id": "doc-1"})


# --- 7. close -----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_close_with_100_waiting_requests_on_a_silent_server() -> None:
    """close() returns within close_timeout though the server never answers; waiters fail."""
    with raw_server("silent") as server:
        conn = Connection(server.url, close_timeout=1000 * MS, request_timeout=None)
        futures = [conn.request("GetDocument", {"id": f"d{i}"}) for i in range(100)]
        started = time.monotonic()
        conn.close()
        assert time.monotonic() - started < 3000 * MS
        assert all(isinstance(f.exception(1), ClientClosed) for f in futures)
        conn.close()  # idempotent
        with pytest.raises(ClientClosed):
            conn.call("GetDocument", {"id": "doc-1"})
        with pytest.raises(ClientClosed):
            conn.request("GetDocument", {"id": "doc-1"})


def test_close_is_prompt_with_a_polite_server(sample_server: Any) -> None:
    """Against a server that answers the close frame, close() does not wait out its timeout."""
    conn = Connection(sample_server.url, close_timeout=10_000 * MS)
    conn.call("ListDocuments")
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 5000 * MS
    assert "closed" in repr(conn)


# --- 8. process life ----------------------------------------------------------------------


def run_script(script: str, url: str) -> subprocess.Popen[str]:
    """Start ``script`` in a child Python with the server URL as argv[1]."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery to a child is POSIX")
def test_ctrl_c_interrupts_a_blocking_call_and_connection_stays_usable(sample_server: Any) -> None:
    """SIGINT during call() raises KeyboardInterrupt within a second; the next call works."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    child = run_script(
        """
        import sys, time
        from inspector import Connection
        conn = Connection(sys.argv[1])
        print("waiting", flush=True)
        try:
            conn.call("GetDocument", {"id": "doc-silent"}, timeout=None)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        print(conn.call("GetDocument", {"id": "doc-1"})["id"], conn.pending, flush=True)
        conn.close()
        """,
        sample_server.url,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "waiting"
        wait_until(lambda: sample_server.stats.requests >= 1)
        child.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert child.stdout.readline().strip() == "interrupted"
        assert time.monotonic() - started < 1000 * MS
        assert child.stdout.readline().split() == ["doc-1", "0"]
        assert child.wait(10_000 * MS) == 0
    finally:
        child.kill()
        child.communicate()


def test_script_that_never_closes_still_exits(sample_server: Any) -> None:
    """A script that forgets close() exits on its own, cleanly."""
    child = run_script(
        """
        import sys
        from inspector import Connection
        conn = Connection(sys.argv[1])
        print(conn.call("GetDocument", {"id": "doc-1"})["id"])
        """,
        sample_server.url,
    )
    out, err = child.communicate(timeout=20_000 * MS)
    assert (child.returncode, out.strip()) == (0, "doc-1")
    assert "Traceback" not in err


# --- 9. opening ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 429, 503])
def test_refused_handshake_carries_its_status(status: int) -> None:
    """A refused handshake raises ConnectionFailed with the HTTP status."""
    with run_sample_server(faults=Faults(refuse_status=status)) as server:
        with pytest.raises(ConnectionFailed) as caught:
            Connection(server.url)
        assert caught.value.status == status
        assert str(status) in str(caught.value)


def test_missing_and_wrong_token_are_401_good_token_connects() -> None:
    """The token goes in Authorization: Bearer; a wrong or missing one is 401."""
    with run_sample_server(tokens={TOKEN: True, "no-read": False}) as server:
        for token, status in [(None, 401), ("wrong", 401), ("no-read", 403)]:
            with pytest.raises(ConnectionFailed) as caught:
                Connection(server.url, token=token)
            assert caught.value.status == status
        with Connection(server.url, token=TOKEN) as conn:
            assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"
        assert server.stats.handshake_headers[-1].get("authorization") == f"Bearer {TOKEN}"


def test_refused_port_and_unknown_host_have_no_status() -> None:
    """Nothing listening, or a name that does not resolve: status None, cause chained."""
    with pytest.raises(ConnectionFailed) as caught:
        Connection(f"ws://127.0.0.1:{free_port()}", connect_timeout=5000 * MS)
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(ConnectionFailed, match="resolve") as caught:
        Connection("ws://no-such-host.invalid:80", connect_timeout=5000 * MS)
    assert caught.value.status is None


def test_bad_url_is_refused() -> None:
    """A URL that is not ws:// or wss:// raises ConnectionFailed naming it."""
    with pytest.raises(ConnectionFailed, match="not a ws"):
        Connection("http://127.0.0.1:1/")


# --- 10. safety ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\r\nX-Injected: 1", "a\nb", "a\0b"])
def test_cr_lf_nul_refused_before_anything_is_sent(sample_server: Any, bad: str) -> None:
    """CR, LF or NUL in a header value or the token is refused; no connection is opened."""
    with pytest.raises(ConnectionFailed, match="CR, LF or NUL") as caught:
        Connection(sample_server.url, headers={"X-Team": bad})
    assert bad not in str(caught.value)
    with pytest.raises(ConnectionFailed, match="the token") as caught:
        Connection(sample_server.url, token=f"secret{bad}")
    assert "secret" not in str(caught.value)
    assert sample_server.stats.connections_opened == 0


def test_token_never_in_repr_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """The token appears in no repr, log line (at DEBUG) or exception message."""
    with caplog.at_level(logging.DEBUG):
        with run_sample_server(tokens={TOKEN: True}) as server:
            with Connection(server.url, token=TOKEN, headers={"X-Team": "finance"}) as conn:
                conn.call("GetDocument", {"id": "doc-1"})
                with pytest.raises(ServerError) as caught:
                    conn.call("GetDocument", {"id": "nope"})
                assert TOKEN not in repr(conn) and TOKEN not in str(caught.value)
            with pytest.raises(ConnectionFailed) as refused:
                Connection(server.url, token=TOKEN + "x")
    assert TOKEN not in str(refused.value) and TOKEN not in repr(refused.value)
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)


def test_redirect_to_another_host_does_not_carry_the_token() -> None:
    """A handshake redirected to another origin is followed without Authorization."""
    with run_sample_server() as target:
        with run_sample_server(faults=Faults(redirect_to=target.url + "/api")) as origin:
            with Connection(origin.url, token=TOKEN) as conn:
                assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"
            assert origin.stats.handshake_headers[0].get("authorization") == f"Bearer {TOKEN}"
        assert target.stats.handshake_headers
        assert all("authorization" not in h for h in target.stats.handshake_headers)


def test_payloads_are_logged_only_at_debug(
    sample_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG each request's id, method and latency are logged; above DEBUG no payload."""
    with caplog.at_level(logging.DEBUG, logger="inspector"):
        with Connection(sample_server.url) as conn:
            conn.call("GetDocument", {"id": "doc-1"})
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("GetDocument" in m and "ms" in m for m in debug)
    louder = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert not any("Sales overview" in m for m in louder)
    assert logging.getLogger("inspector").handlers  # a NullHandler, so no "no handler" noise


# --- 11. TLS under load -------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_wss_with_8_concurrent_callers_loses_nothing(
    tls_pair: Tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """Over TLS, 8 threads calling at once each get every one of their own replies."""
    server_context, client_context = tls_pair
    with run_sample_server(ssl_context=server_context) as server:
        assert server.url.startswith("wss://")
        server.faults.jitter = 2 * MS
        with Connection(server.url, ssl_context=client_context) as conn:
            errors: List[str] = []

            def worker(n: int) -> None:
                futures = [conn.request("GetDocument", generated(f"s{n}x{i}")) for i in range(150)]
                for i in range(50):
                    reply = conn.call("GetDocument", generated(f"c{n}x{i}"))
                    if reply["id"] != f"gen-1x1-c{n}x{i}":
                        errors.append(f"call {n}/{i}")
                for i, future in enumerate(futures):
                    if future.result(60)["id"] != f"gen-1x1-s{n}x{i}":
                        errors.append(f"request {n}/{i}")

            run_threads(worker, 8)
            assert errors == []
            assert conn.stats.replies == 8 * 200


def test_untrusted_certificate_fails_naming_verification(
    tls_pair: Tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """The default context verifies: a self-made CA is refused, naming the failure."""
    server_context, _ = tls_pair
    with run_sample_server(ssl_context=server_context) as server:
        with pytest.raises(ConnectionFailed, match="certificate verif") as caught:
            Connection(server.url)
        assert caught.value.status is None


# --- 12. back-pressure --------------------------------------------------------------------


def test_max_in_flight_bounds_requests_awaiting_replies(sample_server: Any) -> None:
    """With max_in_flight=5 a server that allows 5 in flight never answers 429."""
    sample_server.faults.max_in_flight = 5
    sample_server.faults.latency = 10 * MS
    with Connection(sample_server.url, max_in_flight=5) as conn:
        futures = [conn.request("GetDocument", generated(f"b{i}")) for i in range(60)]
        assert [f.result(30)["id"] for f in futures] == [f"gen-1x1-b{i}" for i in range(60)]


def test_slot_wait_is_bounded_by_the_callers_timeout(sample_server: Any) -> None:
    """request() waiting for a free slot gives up with RequestTimeout at its timeout."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    with Connection(sample_server.url, max_in_flight=2, request_timeout=30_000 * MS) as conn:
        conn.request("GetDocument", {"id": "doc-silent"})
        conn.request("GetDocument", {"id": "doc-silent"})
        started = time.monotonic()
        with pytest.raises(RequestTimeout, match="slot"):
            conn.request("GetDocument", {"id": "doc-1"}, timeout=200 * MS)
        assert time.monotonic() - started < 3000 * MS


def test_request_from_the_io_thread_never_waits_for_a_slot(sample_server: Any) -> None:
    """A done-callback on the I/O thread that finds no free slot is refused at once."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    with Connection(sample_server.url, max_in_flight=2) as conn:
        outcome: List[BaseException] = []
        done = threading.Event()
        blocker = conn.request("GetDocument", {"id": "doc-silent"})

        def on_done(_: Future[Any]) -> None:
            try:
                # The slot of the request just answered is free: take it, then ask for one
                # more, for which there is none.
                conn.request("GetDocument", {"id": "doc-silent"})
                conn.request("GetDocument", {"id": "doc-2"})
            except InspectorError as error:
                outcome.append(error)
            done.set()

        started = time.monotonic()
        # Attached before the request goes out, so it runs on the I/O thread.
        conn.request_many([("GetDocument", {"id": "doc-1"})], callbacks=[on_done])
        assert done.wait(5000 * MS)
        assert time.monotonic() - started < 2000 * MS  # not the 10 s request_timeout
        assert outcome and "I/O thread" in str(outcome[0])
        assert not blocker.done()


def test_future_callback_runs_on_io_thread_and_cannot_wait_for_slot(sample_server: Any) -> None:
    """From the I/O thread a request beyond max_in_flight fails at once, naming why."""
    sample_server.faults.silent_ids = frozenset({"doc-silent"})
    sample_server.faults.latency = 200 * MS
    with Connection(sample_server.url, max_in_flight=2) as conn:
        outcome: List[BaseException] = []
        done = threading.Event()
        conn.request("GetDocument", {"id": "doc-silent"})
        slow = conn.request("GetDocument", {"id": "doc-1"})

        def on_done(_: Future[Any]) -> None:
            try:
                conn.request("GetDocument", {"id": "doc-silent"})  # takes the freed slot
                conn.request("GetDocument", {"id": "doc-2"})  # none left
            except InspectorError as error:
                outcome.append(error)
            done.set()

        slow.add_done_callback(on_done)
        assert done.wait(10_000 * MS)
        assert outcome and "I/O thread" in str(outcome[0])


def test_credentials_in_the_url_stay_out_of_repr_and_thread_names(
    sample_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """User info and a query string in the endpoint URL show in no repr, log or thread name."""
    url = sample_server.url.replace("ws://", "ws://someone:pa55word@") + "/api?access_token=SeCrEt"
    with caplog.at_level(logging.DEBUG, logger="inspector"):
        with Connection(url) as conn:
            assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"
            shown = [repr(conn)] + [t.name for t in threading.enumerate()]
    shown += [r.getMessage() for r in caplog.records]
    assert not any("SeCrEt" in text or "pa55word" in text for text in shown)
    assert any("/api" in text for text in shown)


# --- the I/O thread's wake-up, and notifications after close (issue 9) ---------------------


@pytest.mark.timeout(120)
def test_no_wake_up_is_lost_with_many_threads_sending(sample_server: Any) -> None:
    """50 threads queue 2 requests each that get no reply: all 100 reach the server."""
    sample_server.faults.silent_ids = {"doc-silent"}  # no reply wakes the I/O thread
    for _ in range(10):
        _hundred_unanswered_requests_from_50_threads(sample_server)


def _hundred_unanswered_requests_from_50_threads(server: Any) -> None:
    before = server.stats.requests
    conn = Connection(server.url, request_timeout=None, ping_interval=None)

    def send(n: int) -> None:
        for _ in range(2):
            conn.request("GetDocument", {"id": "doc-silent"})

    run_threads(send, 50)
    wait_until(lambda: server.stats.requests - before == 100, timeout=2000 * MS)
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 1000 * MS


def test_no_notification_callback_runs_after_close_returns(sample_server: Any) -> None:
    """Queued notifications are dropped at close(); none is delivered after it returns."""
    closed = threading.Event()
    after_close: List[Any] = []
    started = threading.Event()

    def slow(method: str, params: Any) -> None:
        started.set()
        if closed.is_set():
            after_close.append(params)
        time.sleep(5 * MS)  # a slow subscriber, so that notifications queue up

    conn = Connection(sample_server.url)
    conn.subscribe(slow)
    for n in range(100):
        sample_server.notify("DocumentChanged", {"id": f"doc-{n}"})
    assert started.wait(5000 * MS)
    conn.close()
    closed.set()
    assert after_close == []


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt, ValueError])
def test_a_subscriber_that_raises_does_not_stop_delivery(sample_server: Any,
                                                         raised: type) -> None:
    """SystemExit or KeyboardInterrupt from one callback: later notifications still arrive."""
    seen: List[Any] = []

    def bad(method: str, params: Any) -> None:
        raise raised()

    with Connection(sample_server.url) as conn:
        conn.subscribe(bad)
        conn.subscribe(lambda method, params: seen.append(params["id"]))
        sample_server.notify("DocumentChanged", {"id": "one"})
        sample_server.notify("DocumentChanged", {"id": "two"})
        wait_until(lambda: seen == ["one", "two"])
