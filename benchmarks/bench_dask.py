"""Inspection across a Dask LocalCluster against one process, for 20,000 generated documents.

    python benchmarks/bench_dask.py [--documents 20000] [--runs 3]
                                    [--inventory-documents 2000] [--inventory-runs 1]

Each line is the cluster's rate as a ratio to the single process's (above 1: the cluster is
faster), the median of runs that alternate the two in this process, against sample servers in
processes of their own (``document-inspector serve``). Cases:

* inspection alone (no store), ``inspect_across`` with its defaults on the local cluster
  ``scan --workers N`` starts (:func:`inspector.contrib.dask.local_cluster`), of 1 worker,
  then 2 workers; the reference is ``DocumentInspector.inspect_many`` in this process, with
  its defaults. The 1-worker ratio is the engine's overhead (goal >= 0.85).
* the same 2 workers, each behind a sample server of its own (the reference uses the first).
* into the inventory (SQLite in a temporary directory, a fresh file per run, ``full``):
  ``inspector.contrib.dask.scan`` on 2 workers against the single-process inventory scan;
  this process writes every result in both.
* with ``--postgresql``, the same into PostgreSQL (started from the machine's binaries by the
  tests' ``postgresql_server`` module, a fresh database per run): this process writing, then
  the workers writing (``workers_write``).

The machine's cores are shared by the servers, the workers and this process: on 2 cores, two
workers and a server compete for them, which the ratios show as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Iterator, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import alternate, server_process  # noqa: E402

from inspector import DocumentInspector  # noqa: E402

# gen-2x2: one document, 2 containers of 2 widgets: 7 requests, in 3 round trips.
REQUESTS_PER_DOCUMENT = 7


def document_ids(count: int, tag: str) -> List[str]:
    """``count`` distinct generated 2x2 documents."""
    return [f"gen-2x2-{tag}{n}" for n in range(count)]


def single_process(url: str, ids: Sequence[str]) -> None:
    """The reference: one inspector, every document, no store."""
    with DocumentInspector(url) as di:
        for _ in di.inspect_many(ids, return_exceptions=True):
            pass


def on_cluster(client: Any, settings: Any, ids: Sequence[str]) -> None:
    """The measured: the same documents inspected across the cluster, no store."""
    from inspector.contrib.dask import inspect_across

    failed = sum(1 for _, outcome in inspect_across(client, ids, settings)
                 if isinstance(outcome, Exception))
    assert not failed, f"{failed} documents failed"


def single_process_into_inventory(url: str, ids: Sequence[str], directory: str) -> None:
    """The single-process inventory scan into a fresh SQLite file."""
    from inspector.inventory import Inventory
    from inspector.inventory.scan import scan

    path = os.path.join(directory, f"single-{time.monotonic_ns()}.db")
    with DocumentInspector(url) as di, Inventory(path) as inventory:
        run = inventory.run(scan(inventory.store, di, ids, full=True, timeout=di.timeout))
        assert run.new == len(ids), run


def cluster_into_inventory(client: Any, settings: Any, ids: Sequence[str],
                           directory: str) -> None:
    """The cluster scan into a fresh SQLite file, this process the writer."""
    from inspector.contrib.dask import scan
    from inspector.inventory import Inventory

    path = os.path.join(directory, f"cluster-{time.monotonic_ns()}.db")
    with Inventory(path) as inventory:
        run = scan(inventory, client, settings, ids, full=True)
        assert run.new == len(ids), run


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far."""
    import psutil  # a dependency of distributed

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def set_environment(name: str, value: str) -> None:
    """Run on a worker: set one environment variable."""
    os.environ[name] = value


def worker_pid() -> int:
    """Run on a worker: its process id."""
    return os.getpid()


def cpu_per_document(url: str, client: Any, settings: Any, ids: Sequence[str]) -> None:
    """Where the CPU goes, in ms per document, one process against one worker: what bounds
    a worker's rate on a machine of its own."""
    import psutil

    port = int(url.rsplit(":", 1)[1])
    server = next(child.pid for child in psutil.Process().children()
                  if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                         for c in child.net_connections(kind="tcp")))
    me = os.getpid()
    [worker] = client.run(worker_pid).values()
    before = [cpu_seconds(pid) for pid in (server, me)]
    single_process(url, ids)
    single = [(cpu_seconds(pid) - b) * 1000 / len(ids) for pid, b in zip((server, me), before)]
    before = [cpu_seconds(pid) for pid in (server, me, worker)]
    on_cluster(client, settings, ids)
    spread = [(cpu_seconds(pid) - b) * 1000 / len(ids)
              for pid, b in zip((server, me, worker), before)]
    print(f"CPU ms per document: single process: server {single[0]:.3f}, client "
          f"{single[1]:.3f}; 1 worker: server {spread[0]:.3f}, worker {spread[2]:.3f}, "
          f"client and scheduler {spread[1]:.3f}", flush=True)


def fresh_database(server: Any) -> str:
    """A new, empty database on the benchmark's PostgreSQL; its SQLAlchemy URL."""
    import psycopg

    name = f"bench_{time.monotonic_ns()}"
    admin = server.url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url: str = server.url(name)
    return url


def single_process_into(url: str, ids: Sequence[str], database: Callable[[], str]) -> None:
    """The single-process inventory scan into a fresh database."""
    from inspector.inventory import Inventory
    from inspector.inventory.scan import scan

    with DocumentInspector(url) as di, Inventory(database()) as inventory:
        run = inventory.run(scan(inventory.store, di, ids, full=True, timeout=di.timeout))
        assert run.new == len(ids), run


def cluster_into(client: Any, settings: Any, ids: Sequence[str], database: Callable[[], str],
                 workers_write: bool = False) -> None:
    """The cluster scan into a fresh database; the workers write with ``workers_write``
    (the database URL in their environment, as ``settings.store_env`` names it)."""
    from inspector.contrib.dask import scan
    from inspector.inventory import Inventory

    db = database()
    if workers_write:
        client.run(set_environment, settings.store_env, db)  # no password: trust auth
    with Inventory(db) as inventory:
        run = scan(inventory, client, settings, ids, full=True, workers_write=workers_write)
        assert run.new == len(ids), run


def rate_ratio(measured: Callable[[], None], reference: Callable[[], None],
               runs: int) -> Tuple[float, List[float], List[float]]:
    """Both alternately (one warm-up each): (median rate ratio, times, times); a rate ratio
    above 1 means ``measured`` is faster."""
    _, ours, theirs = alternate(measured, reference, runs, warmup=1)
    return statistics.median(t / o for o, t in zip(ours, theirs)), ours, theirs


def report(name: str, documents: int, ratio: float, ours: List[float],
           theirs: List[float]) -> None:
    """One line: the rate ratio, then both rates."""
    print(f"{name}: rate ratio {ratio:.3f} (cluster {documents / statistics.median(ours):.0f} "
          f"docs/s, single process {documents / statistics.median(theirs):.0f} docs/s, "
          f"{len(ours)} runs each)", flush=True)


@contextlib.contextmanager
def cluster(workers: int) -> Iterator[Any]:
    """The local cluster ``scan --workers N`` starts, and its client."""
    import logging

    from distributed import Client

    from inspector.contrib.dask import local_cluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with local_cluster(workers) as local, Client(local) as client:
        yield client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inventory-documents", type=int, default=2_000,
                        help="documents for the inventory case (0: skip it)")
    parser.add_argument("--inventory-runs", type=int, default=1)
    parser.add_argument("--postgresql", action="store_true",
                        help="also the inventory cases into PostgreSQL")
    args = parser.parse_args()

    from inspector.contrib.dask import InspectorSettings

    count = args.documents
    ids = document_ids(count, "b")
    print(f"{count} generated documents (gen-2x2: {REQUESTS_PER_DOCUMENT} requests each), "
          f"{os.cpu_count()} cores", flush=True)
    with server_process() as url, server_process() as second_url:
        started = time.perf_counter()
        single_process(url, ids)
        elapsed = time.perf_counter() - started
        print(f"single process, no store: {count / elapsed:.0f} docs/s "
              f"({count * REQUESTS_PER_DOCUMENT / elapsed:.0f} requests/s)", flush=True)
        one_server = InspectorSettings(url)
        two_servers = InspectorSettings((url, second_url))
        reference = functools.partial(single_process, url, ids)
        with cluster(1) as client:
            report("1 worker, 1 server, no store (goal >= 0.85)", count,
                   *rate_ratio(functools.partial(on_cluster, client, one_server, ids),
                              reference, args.runs))
            cpu_per_document(url, client, one_server, ids)
        with cluster(2) as client:
            report("2 workers, 1 server, no store", count,
                   *rate_ratio(functools.partial(on_cluster, client, one_server, ids),
                              reference, args.runs))
            report("2 workers, 2 servers (one each), no store", count,
                   *rate_ratio(functools.partial(on_cluster, client, two_servers, ids),
                              reference, args.runs))
            if args.inventory_documents:
                into = document_ids(args.inventory_documents, "i")
                with tempfile.TemporaryDirectory() as directory:
                    report(f"2 workers, 1 server, into the inventory (SQLite, {len(into)} "
                           "documents)", len(into),
                           *rate_ratio(functools.partial(cluster_into_inventory, client,
                                                        one_server, into, directory),
                                      functools.partial(single_process_into_inventory, url,
                                                        into, directory),
                                      args.inventory_runs))
                if args.postgresql:
                    postgresql_cases(client, url, into, args.inventory_runs)

def postgresql_cases(client: Any, url: str, ids: Sequence[str], runs: int) -> None:
    """Into PostgreSQL: this process writing, then the workers writing."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), "tests"))
    import postgresql_server

    from inspector.contrib.dask import InspectorSettings

    server = postgresql_server.start(timeout=120.0)
    try:
        database = functools.partial(fresh_database, server)
        reference = functools.partial(single_process_into, url, ids, database)
        settings = InspectorSettings(url, store_env="INSPECTOR_BENCH_DB")
        report(f"2 workers, into PostgreSQL ({len(ids)} documents), this process writing",
               len(ids), *rate_ratio(functools.partial(cluster_into, client, settings, ids,
                                                       database), reference, runs))
        report(f"2 workers, into PostgreSQL ({len(ids)} documents), the workers writing",
               len(ids), *rate_ratio(functools.partial(cluster_into, client, settings, ids,
                                                       database, True), reference, runs))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
