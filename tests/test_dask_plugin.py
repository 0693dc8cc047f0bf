"""inspector.contrib.dask on a real LocalCluster: worker processes, the sample server, a token."""

from __future__ import annotations

import os
import pickle
import signal
from typing import Any, Dict, List, Optional, Tuple

import pytest
from conftest import DASK_TOKEN, DASK_TOKEN_ENV
from support import MS, wait_until

from inspector import DocumentInspector, Inspection, InspectorError, ServerError
from inspector.sample_catalog import load_catalog
from inspector.server import Faults, run_sample_server

distributed = pytest.importorskip("distributed")

from inspector.contrib.dask import (  # noqa: E402  (needs distributed)
    InspectorPlugin,
    InspectorSettings,
    inspect_across,
)

# A cluster test waits for worker processes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(120)


def _outcomes(client: Any, ids: List[str], settings: InspectorSettings,
              **options: Any) -> Dict[str, Any]:
    """Every outcome by document id; fails if a document comes back twice."""
    outcomes: Dict[str, Any] = {}
    for document_id, outcome in inspect_across(client, ids, settings, **options):
        assert document_id not in outcomes, f"{document_id} came back twice"
        outcomes[document_id] = outcome
    return outcomes


def test_scan_of_the_sample_catalog(dask_client: Any) -> None:
    """Every catalog document comes back once, as one process inspects it, failures included."""
    ids = load_catalog().document_ids() + ["doc-missing"]
    with run_sample_server() as server:
        with DocumentInspector(server.url) as di:
            expected = list(di.inspect_many(ids, return_exceptions=True))
        outcomes = _outcomes(dask_client, ids, InspectorSettings(server.url), batch_size=5)
    assert set(outcomes) == set(ids)
    for document_id, one_process in zip(ids, expected):
        outcome = outcomes[document_id]
        if isinstance(one_process, Inspection):
            assert outcome == one_process
        else:
            assert (type(outcome), str(outcome)) == (type(one_process), str(one_process))
    missing = outcomes["doc-missing"]
    assert isinstance(missing, ServerError) and missing.code == 404


def test_two_thousand_generated_documents(dask_client: Any) -> None:
    """2,000 generated documents, in batches over both workers, each once and whole."""
    ids = [f"gen-2x3-n{n}" for n in range(2000)]
    with run_sample_server() as server:
        outcomes = _outcomes(dask_client, ids, InspectorSettings(server.url), batch_size=100,
                             max_batches_in_flight=4)
        # One connection per worker, opened once for all 20 batches.
        assert server.stats.connections_opened == 2
    assert set(outcomes) == set(ids)
    for document_id, outcome in outcomes.items():
        assert isinstance(outcome, Inspection), outcome
        assert outcome.document.id == document_id
        assert len(outcome.widgets) == 6


def _worker_pids(client: Any) -> Dict[str, int]:
    return dict(client.run(os.getpid))


def test_a_worker_killed_during_a_scan(own_dask_client: Any) -> None:
    """The killed worker's batches run again elsewhere: nothing lost, nothing twice."""
    dask_client = own_dask_client
    ids = [f"gen-1x2-k{n}" for n in range(600)]
    before = _worker_pids(dask_client)
    victim_pid = sorted(before.items())[0][1]
    outcomes: Dict[str, Any] = {}
    with run_sample_server(Faults(latency=0.005)) as server:
        scan = inspect_across(dask_client, ids, InspectorSettings(server.url), batch_size=20,
                              max_batches_in_flight=4)
        for document_id, outcome in scan:
            assert document_id not in outcomes, f"{document_id} came back twice"
            outcomes[document_id] = outcome
            if len(outcomes) == 40:  # both workers are inside a batch now
                os.kill(victim_pid, signal.SIGKILL)
    assert set(outcomes) == set(ids)
    assert all(isinstance(outcome, Inspection) for outcome in outcomes.values())
    # The worker was killed, not merely slow: its nanny started a new process.
    dask_client.wait_for_workers(2, timeout=30_000 * MS)
    wait_until(lambda: victim_pid not in _worker_pids(dask_client).values(), 30_000 * MS)


def test_a_failed_document_is_reported_once_not_retried(dask_client: Any) -> None:
    """A document the server refuses comes back once with its error; the others are whole."""
    ids = ["doc-1", "doc-2", "doc-3"]
    with run_sample_server(Faults(error_for={"doc-2": 500})) as server:
        outcomes = _outcomes(dask_client, ids, InspectorSettings(server.url, retries=0))
        assert server.stats.requests_by_method.get("GetDocument") == 3
    assert isinstance(outcomes["doc-1"], Inspection)
    assert isinstance(outcomes["doc-2"], ServerError) and outcomes["doc-2"].code == 500
    assert isinstance(outcomes["doc-3"], Inspection)


def test_stopping_early_closes_the_workers_connections(dask_client: Any) -> None:
    """Leaving the generator early unregisters the plugin: every worker closes its connection."""
    ids = [f"gen-1x1-s{n}" for n in range(400)]
    with run_sample_server() as server:
        scan = inspect_across(dask_client, ids, InspectorSettings(server.url), batch_size=10)
        first = next(scan)
        assert isinstance(first[1], Inspection)
        scan.close()
        wait_until(lambda: server.stats.open_connections == 0)
        names = dask_client.run(lambda dask_worker: [
            name for name in dask_worker.plugins if name.startswith("inspector-")])
        assert all(found == [] for found in names.values())


def test_a_token_variable_missing_on_the_workers_is_named(dask_client: Any) -> None:
    """Settings that name an unset variable fail at registration, naming it; nothing runs."""
    settings = InspectorSettings("ws://127.0.0.1:9", token_env="INSPECTOR_DASK_TEST_UNSET")
    with pytest.raises(InspectorError, match="INSPECTOR_DASK_TEST_UNSET is not set"):
        list(inspect_across(dask_client, ["doc-1"], settings))


def test_the_token_is_in_no_pickled_payload(dask_client: Any,
                                            dask_frames: List[bytes]) -> None:
    """The workers send the token to the server, yet no byte of it goes through the cluster."""
    with run_sample_server(tokens={DASK_TOKEN: True}) as server:
        settings = InspectorSettings(server.url, token_env=DASK_TOKEN_ENV)
        outcomes = _outcomes(dask_client, ["doc-1", "doc-2"], settings)
        refused = server.stats.handshakes_refused
    # The workers had the token (the server refuses a connection without it) ...
    assert refused == 0 and all(isinstance(o, Inspection) for o in outcomes.values())
    plugin = InspectorPlugin(settings)
    payloads: List[Tuple[str, bytes]] = [("frame", frame) for frame in dask_frames]
    payloads.append(("plugin", pickle.dumps(plugin)))
    payloads.append(("outcomes", pickle.dumps(outcomes)))
    # ... the capture saw what was sent (the task's document ids, the plugin's name) ...
    sent = b"".join(dask_frames)
    assert b"doc-2" in sent and plugin.name.encode() in sent
    # ... and not one payload held the token.
    token = DASK_TOKEN.encode()
    assert [kind for kind, payload in payloads if token in payload] == []


def test_the_connection_cap_holds(dask_client: Any) -> None:
    """With a cap of 1, two workers take turns: never two connections open at the server."""
    ids = [f"gen-1x1-cap{n}" for n in range(300)]
    with run_sample_server(Faults(latency=0.002)) as server:
        settings = InspectorSettings(server.url, connection_cap=1, idle_release=0.2)
        outcomes = _outcomes(dask_client, ids, settings, batch_size=10, max_batches_in_flight=4)
        assert server.stats.max_open_connections == 1
        # Both workers had their turn: the second got the lease when the first went idle.
        assert server.stats.connections_opened == 2
    assert set(outcomes) == set(ids)
    assert all(isinstance(outcome, Inspection) for outcome in outcomes.values())


def test_two_servers_behind_the_two_workers(dask_client: Any) -> None:
    """Given two endpoints, each worker talks to its own: one connection to each server."""
    ids = [f"gen-1x1-two{n}" for n in range(400)]
    with run_sample_server() as first, run_sample_server() as second:
        settings = InspectorSettings((first.url, second.url))
        outcomes = _outcomes(dask_client, ids, settings, batch_size=10)
        for server in (first, second):
            assert server.stats.connections_opened == 1
            assert server.stats.requests_by_method.get("GetDocument", 0) > 0
    assert set(outcomes) == set(ids)


def test_an_inspector_sent_to_a_worker_says_to_use_the_plugin(dask_client: Any) -> None:
    """An inspector passed to a task by accident fails at once, naming InspectorPlugin."""
    with run_sample_server() as server, DocumentInspector(server.url) as di:
        with pytest.raises(Exception) as caught:
            dask_client.submit(repr, di).result()
    chain = []
    error: Optional[BaseException] = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, InspectorError) and "InspectorPlugin" in str(e) for e in chain), \
        chain


def test_a_batch_comes_back_as_one_pickle_a_document(dask_client: Any) -> None:
    """The task pickles each outcome as its document is done, into one bytes object; read
    back, the outcomes are in the batch's order, errors included, equal to one process's."""
    from inspector.contrib.dask.plugin import inspect_batch_pickled, unpickle_outcomes

    ids = ["doc-1", "doc-2", "deck-1", "gen-2x2-p1"]
    with run_sample_server(Faults(error_for={"doc-2": 404})) as server:
        plugin = InspectorPlugin(InspectorSettings(server.url, retries=0), name="pickled-test")
        dask_client.register_plugin(plugin)
        try:
            data = dask_client.submit(inspect_batch_pickled, ids, plugin.name,
                                      pure=False).result(60_000 * MS)
            empty = dask_client.submit(inspect_batch_pickled, [], plugin.name,
                                       pure=False).result(60_000 * MS)
        finally:
            dask_client.unregister_worker_plugin(plugin.name)
        with DocumentInspector(server.url, retries=0) as inspector:
            expected = list(inspector.inspect_many(ids, return_exceptions=True))
    assert isinstance(data, bytes) and empty == b"" and unpickle_outcomes(empty) == []
    outcomes = unpickle_outcomes(data)
    assert [document_id for document_id, _ in outcomes] == ids
    assert [outcome for _, outcome in outcomes if not isinstance(outcome, ServerError)] == [
        outcome for outcome in expected if not isinstance(outcome, ServerError)]
    assert isinstance(outcomes[1][1], ServerError) and outcomes[1][1].code == 404
    # One pickle a document: the stream holds exactly four, read one after another.
    import io

    stream = io.BytesIO(data)
    for document_id in ids:
        assert pickle.load(stream)[0] == document_id
    assert stream.read() == b""


def test_the_local_cluster_runs_two_batches_at_once_per_worker(dask_client: Any) -> None:
    """scan --workers starts workers of two task threads each, without Dask's sampling
    profiler (what the cluster module's measurements chose)."""
    from inspector.contrib.dask.cluster import BATCHES_PER_WORKER

    def profiling() -> bool:
        import dask

        return bool(dask.config.get("distributed.worker.profile.enabled"))

    assert set(dask_client.nthreads().values()) == {BATCHES_PER_WORKER}
    assert set(dask_client.run(profiling).values()) == {False}


def test_a_stuck_batch_does_not_hold_up_its_workers_next_one(dask_offload_thread: None) -> None:
    """On a one-worker local cluster, a batch whose document gets no reply waits out its
    timeout while the worker's other thread inspects the rest, on the same connection: every
    other document comes back before the stuck one's timeout."""
    from conftest import start_dask_cluster

    ids = ["gen-1x1-stuck"] + [f"gen-1x1-n{n}" for n in range(20)]
    with run_sample_server(Faults(silent_ids={"gen-1x1-stuck"})) as server, \
            start_dask_cluster(workers=1) as client:
        settings = InspectorSettings(server.url, token_env=DASK_TOKEN_ENV, retries=0,
                                     request_timeout=5000 * MS)
        order = [document_id for document_id, _ in inspect_across(
            client, ids, settings, batch_size=1, max_batches_in_flight=4)]
        assert server.stats.max_open_connections == 1
    assert sorted(order) == sorted(ids)
    assert order[-1] == "gen-1x1-stuck", order
