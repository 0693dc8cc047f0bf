"""inspector.reopening: one outage, handled once, through DocumentInspector."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List

import pytest
from support import MS

from inspector import (
    ConnectionFailed,
    ConnectionLost,
    DocumentInspector,
    InspectorError,
    RequestTimeout,
)
from inspector.server import SampleServer


def test_a_call_timeout_holds_while_another_thread_reopens(sample_server: Any) -> None:
    """inspect(timeout=0.5 s) ends in time even when the reopening sleeps through its backoff."""
    with DocumentInspector(sample_server.url, backoff=2.0, backoff_max=4.0) as inspector:
        inspector.inspect("doc-1")
        sample_server.faults.refuse_status = 503
        sample_server.drop_connections()
        first = threading.Thread(target=lambda: _swallow(inspector.inspect, "doc-2"))
        first.start()  # its requests meet the lost connection and start the reopening
        try:
            started = time.monotonic()
            with pytest.raises((RequestTimeout, ConnectionLost)):
                inspector.inspect("doc-3", timeout=500 * MS)
            assert time.monotonic() - started < 1500 * MS
        finally:
            inspector.close()
            first.join()


def _swallow(function: Any, *args: Any) -> None:
    try:
        function(*args)
    except InspectorError:
        pass


def test_an_outage_is_one_reopening_and_every_waiting_document_fails_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """60 documents waiting on a dead server: one backoff schedule, 60 ConnectionLost."""
    server = SampleServer()
    server.start()
    server.faults.latency = 2000 * MS  # the documents are waiting when the server dies
    inspector = DocumentInspector(server.url, timeout=None, connect_attempts=4,
                                  backoff=0.05, max_documents_in_flight=60)
    with inspector, caplog.at_level(logging.INFO, logger="inspector"):
        results = inspector.inspect_many([f"gen-2x2-n{i}" for i in range(60)],
                                         return_exceptions=True)
        started = time.monotonic()
        waiting = threading.Thread(target=server.stop)
        gathered: List[Any] = []
        collector = threading.Thread(target=lambda: gathered.extend(results))
        collector.start()
        while server.stats.requests < 60:  # every document asked, none answered
            assert time.monotonic() - started < 10_000 * MS
            time.sleep(MS)
        waiting.start()
        waiting.join()
        collector.join(20_000 * MS)
        assert not collector.is_alive()
    assert len(gathered) == 60
    assert all(isinstance(error, ConnectionLost) for error in gathered), gathered[:3]
    assert all(isinstance(error.__cause__, ConnectionFailed) for error in gathered)
    assert len({id(error) for error in gathered}) == 60  # each waiter its own copy
    attempts = [r for r in caplog.records if r.getMessage().startswith("reopening ")]
    assert len(attempts) == 3  # connect_attempts=4: the first, then three after backoff
    assert sum("could not reopen" in r.getMessage() for r in caplog.records) == 1


def test_a_refused_reopening_fans_out_its_status(sample_server: Any) -> None:
    """The ConnectionFailed behind each ConnectionLost keeps its HTTP status."""
    with DocumentInspector(sample_server.url, backoff=0.01, connect_attempts=2) as inspector:
        inspector.inspect("doc-1")
        sample_server.faults.refuse_status = 503
        sample_server.drop_connections()
        errors = list(inspector.inspect_many(["doc-1", "doc-2", "doc-3"],
                                             return_exceptions=True))
    assert all(isinstance(e, ConnectionLost) for e in errors), errors
    assert {e.__cause__.status for e in errors} == {503}  # type: ignore[union-attr]


def test_the_connection_comes_back_after_an_outage_and_subscribers_with_it(
    sample_server: Any,
) -> None:
    """A reopened connection keeps delivering notifications; on_reconnect hears of it."""
    notified: List[Any] = []
    reconnected = threading.Event()
    with DocumentInspector(sample_server.url, backoff=0.01) as inspector:
        inspector.subscribe(lambda method, params: notified.append(params),
                            on_reconnect=reconnected.set)
        sample_server.notify("DocumentChanged", {"id": "before"})
        _wait(lambda: notified == [{"id": "before"}])
        sample_server.drop_connections()
        inspector.inspect("doc-1")  # reopens
        assert reconnected.wait(5000 * MS)
        sample_server.notify("DocumentChanged", {"id": "after"})
        _wait(lambda: {"id": "after"} in notified)
        assert inspector.stats.connections_opened == 2


def _wait(predicate: Any) -> None:
    deadline = time.monotonic() + 5000 * MS
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(MS)
