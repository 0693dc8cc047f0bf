"""Fixtures shared by every test module."""

from __future__ import annotations

import contextlib
import itertools
import os
import ssl
import threading
import time
from typing import Any, Iterator, List, Tuple

import postgresql_server as postgresql_server_module
import pytest
import trustme
from support import MS, TIME_SCALE

from inspector.server import SampleServer, run_sample_server


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Scale every test's timeout (tox.ini's, or its own mark) by INSPECTOR_TEST_TIME_SCALE."""
    default = float(config.getini("timeout") or 60)
    for item in items:
        mark = item.get_closest_marker("timeout")
        base = float(mark.args[0]) if mark is not None and mark.args else default
        item.add_marker(pytest.mark.timeout(base * TIME_SCALE))


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail any test that leaves a thread running after it returns."""
    before = set(threading.enumerate())
    yield
    # Threads that were told to stop may need a moment to exit; poll with a deadline.
    deadline = time.monotonic() + 5.0 * TIME_SCALE
    while True:
        leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leftover:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"test left threads running: {[t.name for t in leftover]}")
        time.sleep(0.01)


@pytest.fixture
def sample_server() -> Iterator[SampleServer]:
    """A sample documents server on a free port, all faults off; stopped (thread joined) after."""
    with run_sample_server() as server:
        yield server


@pytest.fixture
def tls_pair() -> Tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a trustme certificate and a client context that trusts it."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


# The environment variable the Dask workers read their token from, and its value: set before
# the cluster starts, as worker processes take their environment from this one when spawned.
DASK_TOKEN_ENV = "INSPECTOR_DASK_TEST_TOKEN"
DASK_TOKEN = "tok-7f3c9e1d-never-pickled-5b2a"


@pytest.fixture(scope="session")
def dask_offload_thread() -> None:
    """Start the process-wide "Dask-Offload" executor thread, which lives as long as the process.

    distributed (de)serializes large messages on it and starts it on first use; started here,
    in a session fixture, it exists before any test's thread check begins.
    """
    import asyncio

    from distributed.utils import offload

    asyncio.run(offload(int))


@pytest.fixture(scope="session")
def dask_client(dask_offload_thread: None) -> Iterator[Any]:
    """A ``distributed.Client`` on the local cluster of 2 worker processes that ``scan
    --workers 2`` starts.

    Session-scoped: starting a cluster takes seconds on a loaded 2-core machine. It is made
    before any test's thread check starts (pytest sets up wider-scoped fixtures first), so the
    cluster's own threads (its event loop, the nannies' process watchers) count as already
    running; so does the one it would start later, on demand (``dask_offload_thread``).
    No thread is exempted from the check; a test that kills a
    worker (whose nanny then starts a new process, and new watcher threads) uses
    ``own_dask_client``.
    """
    with start_dask_cluster() as client:
        yield client


@pytest.fixture
def own_dask_client(dask_offload_thread: None) -> Iterator[Any]:
    """A cluster like ``dask_client``'s for one test alone, closed (threads joined) after it."""
    with start_dask_cluster() as client:
        yield client


@pytest.fixture
def dask_frames(monkeypatch: pytest.MonkeyPatch) -> List[bytes]:
    """Every frame this process writes to a Dask comm during the test, as bytes: the client's
    messages to the scheduler (task specs, plugins) and the in-process scheduler's to the
    workers (the same, passed on)."""
    import distributed.comm.tcp as tcp

    frames: List[bytes] = []
    to_frames = tcp.to_frames

    async def recording_to_frames(msg: Any, *args: Any, **kwargs: Any) -> Any:
        written = await to_frames(msg, *args, **kwargs)
        frames.extend(bytes(frame) for frame in written)
        return written

    monkeypatch.setattr(tcp, "to_frames", recording_to_frames)
    return frames


@contextlib.contextmanager
def start_dask_cluster(workers: int = 2, **environment: str) -> Iterator[Any]:
    """The local cluster ``scan --workers 2`` (or ``workers``) starts, whose workers have the
    test token and ``environment`` in theirs; yield its client. A test that starts one itself
    asks for the ``dask_offload_thread`` fixture."""
    distributed = pytest.importorskip("distributed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DASK_TOKEN_ENV, DASK_TOKEN)
        for name, value in environment.items():
            patch.setenv(name, value)
        # The cluster scan --workers starts (two batches at once per worker, a dashboard on
        # a free port, as other clusters may run on this machine).
        from inspector.contrib.dask.cluster import local_cluster

        cluster = local_cluster(workers, host="127.0.0.1")
    with cluster, distributed.Client(cluster) as client:
        yield client


# -- the inventory's databases: a SQLite file and a real PostgreSQL --


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[postgresql_server_module.PostgreSQLServer]:
    """A PostgreSQL cluster the suite starts from the machine's binaries (see its module).

    Missing binaries fail the tests that need it, never skip them silently; set
    INSPECTOR_TEST_SKIP_POSTGRESQL=1 to skip them, with that reason shown.
    """
    if os.environ.get("INSPECTOR_TEST_SKIP_POSTGRESQL") == "1":
        pytest.skip("INSPECTOR_TEST_SKIP_POSTGRESQL=1: PostgreSQL tests skipped on request")
    server = postgresql_server_module.start(timeout=60_000 * MS)
    yield server
    server.stop()


_database_numbers = itertools.count(1)


@pytest.fixture
def postgresql_url(postgresql_server: postgresql_server_module.PostgreSQLServer
                   ) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped after it."""
    import psycopg

    name = f"inventory_{os.getpid()}_{next(_database_numbers)}"
    admin = postgresql_server.url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgresql_server.url(name)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def inventory_db(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty inventory database: a SQLite file, then a PostgreSQL database (each test runs
    against both)."""
    if request.param == "sqlite":
        return str(tmp_path / "inventory.db")
    url: str = request.getfixturevalue("postgresql_url")
    return url
