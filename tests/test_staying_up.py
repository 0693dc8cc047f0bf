"""Staying up: keepalive, reopening, retries, busy servers, TLS and fork, with nothing lost."""

from __future__ import annotations

import os
import ssl
import sys
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest
from raw_servers import proxy_to
from support import expected_layout, layout_of, run_threads, wait_until

from inspector import (
    Connection,
    ConnectionFailed,
    ConnectionLost,
    DocumentInspector,
    InspectorError,
)
from inspector.server import Faults, run_sample_server

TOKEN = "tok-staying-up-secret"


def clean_layout(document_id: str) -> List[Tuple[str, str]]:
    """(widget id, container id) of a document, from a fault-free server."""
    with run_sample_server() as clean:
        return expected_layout(clean.url, document_id)


# --- 1. keepalive -------------------------------------------------------------------------


def test_half_open_connection_found_by_missing_pong(sample_server: Any) -> None:
    """With the path silent, a missing pong ends the connection within interval + timeout."""
    with proxy_to(sample_server.port) as proxy:
        with Connection(proxy.url, ping_interval=0.2, ping_timeout=0.3,
                        request_timeout=None) as conn:
            assert conn.call("GetDocument", {"id": "doc-1"})["id"] == "doc-1"
            proxy.frozen.set()
            waiting = conn.request("GetDocument", {"id": "doc-2"})
            started = time.monotonic()
            error = waiting.exception(10)
            assert isinstance(error, ConnectionLost) and "pong" in str(error)
            assert time.monotonic() - started < 0.2 + 0.3 + 2.0


def test_inspector_reopens_after_a_half_open_connection(sample_server: Any) -> None:
    """Once the pong is missed, the next call opens a new connection and succeeds."""
    with proxy_to(sample_server.port) as proxy:
        with DocumentInspector(proxy.url, ping_interval=0.2, ping_timeout=0.3) as inspector:
            first = inspector.connection
            assert inspector.get_widgets("doc-1")
            proxy.frozen.set()
            wait_until(lambda: not first.is_open)
            proxy.frozen.clear()
            assert [w.id for w in inspector.get_widgets("doc-1")][0] == "doc-1/c1/w1"
            assert inspector.connection is not first


# --- 2. reopening -------------------------------------------------------------------------


def test_connection_closed_while_idle_is_reopened_unnoticed(sample_server: Any) -> None:
    """The server closes an idle connection; the next call reopens it without an error."""
    sample_server.faults.idle_timeout = 0.2
    with DocumentInspector(sample_server.url) as inspector:
        assert inspector.get_widgets("doc-1")
        wait_until(lambda: sample_server.stats.idle_closes >= 1)
        assert len(inspector.get_widgets("doc-1")) == len(clean_layout("doc-1"))
        assert sample_server.stats.connections_opened == 2


# --- 3. loss mid-inspection ---------------------------------------------------------------


@pytest.mark.timeout(120)
def test_drops_every_300_requests_lose_no_widget(sample_server: Any) -> None:
    """A 1,000-widget document completes exactly though the connection drops every 300."""
    expected = clean_layout("gen-20x50")
    sample_server.faults.drop_after = 300
    with DocumentInspector(sample_server.url, timeout=60) as inspector:
        widgets = inspector.get_widgets("gen-20x50")
    assert layout_of(widgets) == expected
    assert len({w.id for w in widgets}) == 1000
    assert sample_server.stats.connections_dropped >= 3


@pytest.mark.timeout(120)
def test_drops_after_fewer_requests_than_in_flight_shrink_the_window(sample_server: Any) -> None:
    """Dropped every 40 requests with 256 in flight, the inspector sends fewer and completes."""
    expected = clean_layout("gen-30x10")
    sample_server.faults.drop_after = 40
    with DocumentInspector(sample_server.url, timeout=60) as inspector:
        widgets = inspector.get_widgets("gen-30x10")
        window = inspector.in_flight_window
    assert layout_of(widgets) == expected
    assert window is not None and window < 40


# --- 4. silence ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_unanswered_requests_are_sent_again(sample_server: Any) -> None:
    """With every 50th request unanswered, the inspection still completes exactly."""
    expected = clean_layout("gen-10x20")
    sample_server.faults.silent_every = 50
    with DocumentInspector(sample_server.url, request_timeout=0.3, timeout=60) as inspector:
        widgets = inspector.get_widgets("gen-10x20")
        assert layout_of(widgets) == expected
        assert inspector.connection.stats.timeouts >= 4
    assert sample_server.stats.requests_silenced >= 4


# --- 5. busy servers ----------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_429_from_a_server_allowing_20_in_flight_is_retried(sample_server: Any) -> None:
    """A 400-widget document against a 20-in-flight server completes; 429s are retried."""
    expected = clean_layout("gen-20x20")
    sample_server.faults.max_in_flight = 20
    sample_server.faults.latency = 0.005
    with DocumentInspector(sample_server.url, timeout=60, backoff=0.01) as inspector:
        widgets = inspector.get_widgets("gen-20x20")
        window = inspector.in_flight_window
    assert layout_of(widgets) == expected
    assert window is not None and window < 256  # it backed off


def test_503_replies_are_retried(sample_server: Any) -> None:
    """Error 503 for an object is retried with backoff until the server recovers."""
    sample_server.faults.error_for = {"doc-1/c2/w1": 503}
    recovered = threading.Timer(0.3, lambda: sample_server.faults.error_for.clear())
    recovered.start()
    try:
        with DocumentInspector(sample_server.url, backoff=0.05) as inspector:
            widgets = inspector.get_widgets("doc-1")
        assert "doc-1/c2/w1" in [w.id for w in widgets]
    finally:
        recovered.cancel()
        recovered.join()


def test_handshake_refused_with_503_is_retried() -> None:
    """Handshakes refused with 503 are retried with backoff until one is accepted."""
    with run_sample_server(faults=Faults(refuse_status=503, refuse_count=2)) as server:
        with DocumentInspector(server.url, backoff=0.01) as inspector:
            assert inspector.get_widgets("doc-1")
        assert server.stats.handshakes_refused == 2
        assert server.stats.connections_opened == 1


@pytest.mark.parametrize("token, status", [(None, 401), ("wrong", 401), ("no-read", 403)])
def test_401_and_403_fail_at_once_without_retries(token: Any, status: int) -> None:
    """A refused token fails at once with ConnectionFailed; the handshake is not repeated."""
    with run_sample_server(tokens={TOKEN: True, "no-read": False}) as server:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed) as caught:
            DocumentInspector(server.url, token=token, backoff=0.5)
        assert caught.value.status == status
        assert time.monotonic() - started < 2.0
        assert server.stats.handshakes == 1


def test_drop_then_refused_reopen_gives_up_within_timeout(sample_server: Any) -> None:
    """When every reopen is refused, the call still ends within its timeout."""
    with DocumentInspector(sample_server.url, backoff=0.05) as inspector:
        assert inspector.get_widgets("doc-1")
        sample_server.faults.refuse_status = 503
        sample_server.drop_connections()
        started = time.monotonic()
        with pytest.raises(InspectorError):
            inspector.get_widgets("doc-1", timeout=1.0)
        assert time.monotonic() - started < 3.0


# --- 6. TLS -------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_wss_with_a_custom_ca_and_8_callers_loses_nothing(
    tls_pair: Tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """Over wss with a custom CA, 8 threads inspecting at once get exactly their widgets."""
    server_context, client_context = tls_pair
    expected = {d: clean_layout(d) for d in ("doc-1", "doc-2", "gen-10x10")}
    with run_sample_server(ssl_context=server_context) as server:
        server.faults.jitter = 0.002
        errors: List[str] = []
        with DocumentInspector(server.url, ssl_context=client_context) as inspector:

            def worker(n: int) -> None:
                for round_no in range(6):
                    document_id = list(expected)[(n + round_no) % 3]
                    if layout_of(inspector.get_widgets(document_id)) != expected[document_id]:
                        errors.append(f"{n}/{round_no} {document_id}")

            run_threads(worker, 8)
        assert errors == []


def test_untrusted_certificate_is_not_retried(
    tls_pair: Tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """The default verifies certificates; an untrusted one fails naming the verification."""
    server_context, _ = tls_pair
    with run_sample_server(ssl_context=server_context) as server:
        with pytest.raises(ConnectionFailed, match="certificate verif"):
            DocumentInspector(server.url, connect_attempts=1)


# --- 7. fork ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_child_after_fork_opens_its_own_connection(sample_server: Any) -> None:
    """A child process's inspector opens its own connection; the parent's keeps working."""
    with DocumentInspector(sample_server.url) as inspector:
        assert inspector.get_widgets("doc-1")
        parent_connection = inspector.connection
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running the parent's cleanup
            try:
                widgets = inspector.get_widgets("doc-2")
                ok = inspector.connection is not parent_connection and len(widgets) > 0
                os.write(write_end, b"ok" if ok else b"wrong")
            except BaseException as error:  # anything, so that the parent is told
                os.write(write_end, repr(error).encode()[:200])
            finally:
                os._exit(0)
        os.close(write_end)
        try:
            with os.fdopen(read_end, "rb") as pipe:
                report = pipe.read()
        finally:
            _, status = os.waitpid(pid, 0)
        assert report == b"ok", report
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert inspector.connection is parent_connection and parent_connection.is_open
        assert inspector.get_widgets("doc-3")
        assert sample_server.stats.connections_opened == 2


# --- 8. the overall timeout ---------------------------------------------------------------


def test_timeout_bounds_retries(sample_server: Any) -> None:
    """Retries of a silent request stop at the call's timeout."""
    sample_server.faults.silent_ids = frozenset({"doc-1/c1/w2"})
    with DocumentInspector(sample_server.url, request_timeout=0.2, retries=100) as inspector:
        started = time.monotonic()
        with pytest.raises(InspectorError):
            inspector.get_widgets("doc-1", timeout=1.0)
        assert time.monotonic() - started < 3.0
        assert inspector.get_widgets("doc-3")


def test_fault_injection_summary_is_deterministic_enough(sample_server: Any) -> None:
    """Drops, silences and duplicates together: every inspection exact or a clear error."""
    faults = sample_server.faults
    faults.drop_after = 150
    faults.silent_every = 97
    faults.duplicate_every = 13
    faults.jitter = 0.002
    ids = [f"gen-4x5-f{i}" for i in range(12)]
    expected = {i: [(f"{i}/c{c}/w{w}") for c in range(1, 5) for w in range(1, 6)] for i in ids}
    with DocumentInspector(sample_server.url, request_timeout=0.3, timeout=30) as inspector:
        results = list(inspector.inspect_many(ids, return_exceptions=True))
    outcomes: Dict[str, Any] = dict(zip(ids, results))
    for document_id, result in outcomes.items():
        assert not isinstance(result, BaseException), f"{document_id}: {result}"
        assert [w.id for w in result.widgets] == expected[document_id]


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="POSIX sockets and fork")


def test_list_documents_is_sent_again_after_silence(sample_server: Any) -> None:
    """ListDocuments unanswered at first is sent again and then succeeds."""
    sample_server.faults.silent_every = 1  # every request, until the timer lifts it
    with DocumentInspector(sample_server.url, request_timeout=0.2) as inspector:
        lifted = threading.Timer(0.3, lambda: setattr(sample_server.faults, "silent_every", 0))
        lifted.start()
        try:
            assert "doc-1" in inspector.list_documents(timeout=10)
        finally:
            lifted.cancel()
            lifted.join()
        assert inspector.connection.stats.timeouts >= 1
