"""inspector.dispatcher: the window, retries and the end of every task, through the inspector."""

from __future__ import annotations

import gc
import threading
import time
import warnings
from typing import Any, Iterator, List

import pytest
from support import MS, wait_until

from inspector import (
    ClientClosed,
    DocumentInspector,
    InspectorError,
    InvalidArgument,
)
from inspector.window import INITIAL_WINDOW


def test_list_documents_shares_the_retry_policy_stats_and_window(sample_server: Any) -> None:
    """A 429 on ListDocuments is counted, narrows the window and is sent again."""
    sample_server.faults.max_in_flight = 1
    sample_server.faults.latency = 300 * MS
    with DocumentInspector(sample_server.url, backoff=0.01) as inspector:
        busy = threading.Thread(target=inspector.inspect, args=("deck-1",))
        busy.start()
        wait_until(lambda: sample_server.stats.requests >= 1)
        ids = inspector.list_documents()
        busy.join()
        assert "doc-1" in ids
        assert inspector.stats.resent_after_busy >= 1
        assert inspector.in_flight_window < INITIAL_WINDOW


def test_list_documents_follows_pages(sample_server: Any) -> None:
    """Ids come from every page, in order, with a small page size."""
    with DocumentInspector(sample_server.url, page_size=5) as inspector:
        ids = inspector.list_documents()
    assert ids == sample_server.document_ids()
    assert sample_server.stats.requests_by_method["ListDocuments"] == len(ids) // 5 + 1


def test_inspect_many_refuses_one_string(sample_server: Any) -> None:
    """inspect_many('doc-1') is a mistake, not the documents 'd', 'o', 'c', ..."""
    with DocumentInspector(sample_server.url) as inspector:
        with pytest.raises(InvalidArgument, match="not one string"):
            inspector.inspect_many("doc-1")


def test_inspect_many_reads_its_ids_as_it_goes(sample_server: Any) -> None:
    """A generator of ids is consumed a window at a time, never whole."""
    consumed: List[str] = []

    def ids() -> Iterator[str]:
        for n in range(1_000_000):
            consumed.append(f"gen-1x1-n{n}")
            yield consumed[-1]

    with DocumentInspector(sample_server.url, max_documents_in_flight=4) as inspector:
        results = inspector.inspect_many(ids())
        for _ in range(3):
            next(results)
        assert len(consumed) <= 3 + 4
        results.close()  # type: ignore[attr-defined]


def test_a_bad_id_in_the_middle_takes_its_place(sample_server: Any) -> None:
    """With return_exceptions, an invalid id is an error in its place; the rest still come."""
    with DocumentInspector(sample_server.url) as inspector:
        results = list(inspector.inspect_many(["doc-1", "", "doc-2"], return_exceptions=True))
    assert isinstance(results[1], InvalidArgument)
    assert [r.document.id for r in (results[0], results[2])] == ["doc-1", "doc-2"]  # type: ignore[union-attr]


def test_flow_control_has_one_owner(sample_server: Any) -> None:
    """The inspector's connection has no slot limit of its own: the window is the only one."""
    with DocumentInspector(sample_server.url, max_in_flight=10) as inspector:
        assert inspector.connection.max_in_flight is None
        assert inspector.in_flight_window == 10


def test_max_workers_is_deprecated(sample_server: Any) -> None:
    """Passing max_workers warns that it is ignored."""
    with pytest.warns(DeprecationWarning, match="max_workers"):
        DocumentInspector(sample_server.url, max_workers=4).close()


@pytest.mark.timeout(120)
def test_close_racing_calls_leaves_none_blocked(sample_server: Any) -> None:
    """Calls without a timeout, racing close() from other threads, all end; 20 rounds."""
    sample_server.faults.latency = 1 * MS
    for _ in range(20):
        _close_while_8_threads_call(sample_server.url)


def _close_while_8_threads_call(url: str) -> None:
    inspector = DocumentInspector(url, timeout=None)
    outcomes: List[Any] = []
    go = threading.Barrier(9)

    def worker() -> None:
        go.wait()
        for _ in range(50):
            try:
                inspector.inspect("doc-2")
            except InspectorError as error:
                outcomes.append(error)
                return
        outcomes.append("done")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    go.wait()
    inspector.close()
    for thread in threads:
        thread.join(5000 * MS)
    assert not any(thread.is_alive() for thread in threads), "a call stayed blocked"
    assert all(o == "done" or isinstance(o, ClientClosed) for o in outcomes), outcomes


def test_close_during_a_busy_backoff_ends_the_waiting_call(sample_server: Any) -> None:
    """A call waiting out a 503's backoff ends with ClientClosed when the inspector closes."""
    sample_server.faults.error_for = {"doc-1": 503}
    inspector = DocumentInspector(sample_server.url, timeout=None, backoff=30.0,
                                  backoff_max=30.0)
    errors: List[BaseException] = []
    caller = threading.Thread(target=lambda: _catch(errors, inspector.inspect, "doc-1"))
    caller.start()
    wait_until(lambda: inspector.stats.resent_after_busy >= 1)
    started = time.monotonic()
    inspector.close()
    caller.join(5000 * MS)
    assert not caller.is_alive() and isinstance(errors[0], ClientClosed)
    assert time.monotonic() - started < 3000 * MS


def test_close_during_a_reopening_is_bounded(sample_server: Any) -> None:
    """close() while the connection is being reopened with a long backoff returns quickly."""
    inspector = DocumentInspector(sample_server.url, timeout=None, backoff=30.0,
                                  backoff_max=30.0)
    inspector.inspect("doc-1")
    sample_server.faults.refuse_status = 503
    sample_server.drop_connections()
    errors: List[BaseException] = []
    caller = threading.Thread(target=lambda: _catch(errors, inspector.inspect, "doc-1"))
    caller.start()
    wait_until(lambda: sample_server.stats.handshakes_refused >= 1)
    started = time.monotonic()
    inspector.close()
    assert time.monotonic() - started < 3000 * MS
    caller.join(5000 * MS)
    assert not caller.is_alive() and isinstance(errors[0], ClientClosed)


def _catch(errors: List[BaseException], function: Any, *args: Any) -> None:
    try:
        function(*args)
    except BaseException as error:  # noqa: B036 - the test inspects whatever ended the call
        errors.append(error)


def test_inspectors_dropped_without_close_are_collected(sample_server: Any) -> None:
    """50 inspectors used then dropped leave no thread or connection behind."""
    baseline = threading.active_count()
    for _ in range(50):
        inspector = DocumentInspector(sample_server.url)
        inspector.inspect("doc-1")
        del inspector
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    wait_until(lambda: threading.active_count() <= baseline)
    wait_until(lambda: sample_server.stats.open_connections == 0)


def test_an_inspector_cannot_be_pickled(sample_server: Any) -> None:
    """Pickling says how to get an inspector on a Dask worker instead."""
    import pickle

    with DocumentInspector(sample_server.url) as inspector:
        with pytest.raises(InspectorError, match="InspectorPlugin"):
            pickle.dumps(inspector)


def test_waiting_requests_go_out_while_the_replies_are_being_handled(sample_server: Any) -> None:
    """Once the server has pushed back, a reply that succeeded frees its room in the window as
    it arrives: the next waiting request goes out from the I/O thread, even while the
    dispatcher's thread is still busy handling earlier replies (here, a should_inspect callback
    that takes its time)."""
    arrived_meanwhile: List[bool] = []

    def get_documents_received() -> int:
        return int(sample_server.stats.requests_by_method.get("GetDocument", 0))

    with DocumentInspector(sample_server.url, backoff=0.01) as inspector:
        # First a push back: two documents at once against a server that takes one at a time.
        # The window is cut to one, where it stays for a while (it steps back up slowly).
        sample_server.faults.max_in_flight = 1
        sample_server.faults.latency = 50 * MS
        list(inspector.inspect_many(["gen-1x1-a", "gen-1x1-b"]))
        sample_server.faults.max_in_flight = 0
        sample_server.faults.latency = 0.0
        assert inspector.stats.resent_after_busy >= 1 and inspector.in_flight_window == 1
        before = get_documents_received()

        def should_inspect(document: Any) -> bool:
            if document.id == "gen-1x1-first":
                # With a window of one, the second document's GetDocument waits for the first
                # reply and the third's for the second reply. Both must reach the server while
                # this first reply is still being handled.
                deadline = time.monotonic() + 5_000 * MS
                while get_documents_received() - before < 3 and time.monotonic() < deadline:
                    time.sleep(0.005)
                arrived_meanwhile.append(get_documents_received() - before == 3)
            return False

        ids = ["gen-1x1-first", "gen-1x1-second", "gen-1x1-third"]
        results = list(inspector.inspect_many(ids, should_inspect=should_inspect))
    assert [r.id for r in results] == ids
    assert arrived_meanwhile == [True]
