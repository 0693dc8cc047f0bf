"""``scan --dask ADDRESS`` and ``scan --workers N``: the inventory scan's inspections on a cluster.

The ``scan`` command (:mod:`inspector.inventory.cli`) adds these options with
:func:`add_cluster_arguments` and, when one is given, scans with :func:`cluster_scanner`
instead of its one inspector. Nothing here imports ``distributed`` until a scan runs, so
``--help`` works on the base install.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

from inspector.cli import UsageError, connection_settings, server_url
from inspector.contrib.dask.cluster import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    from inspector.inventory.inventory import Inventory
    from inspector.inventory.queries import RunRecord

__all__ = ["ClusterScan", "add_cluster_arguments", "cluster_scanner", "wants_cluster"]

DASK_EXTRA = "pip install 'document-inspector[dask]'"

# Where workers that write find the inventory's URL (as the command line does without --db).
DB_ENVIRONMENT = "INSPECTOR_DB"

#: ``scan(inventory, document_ids, **options)`` -> the run record; options as for
#: :meth:`inspector.inventory.Inventory.scan` without the inspector.
ClusterScan = Callable[..., "RunRecord"]


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dask``, ``--workers``, ``--connection-cap``, ``--batch-size`` and
    ``--workers-write`` to ``parser``."""
    cluster = parser.add_argument_group(
        "cluster", "inspect on a Dask cluster (extra 'dask'); this process stores the results "
        "unless --workers-write")
    where = cluster.add_mutually_exclusive_group()
    where.add_argument("--dask", metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://scheduler:8786; its workers "
                       "read the token from the same environment variable")
    where.add_argument("--workers", type=int, metavar="N",
                       help="start a local cluster of N worker processes for this scan")
    cluster.add_argument("--connection-cap", type=int, metavar="N",
                         help="at most N connections open to the server, cluster-wide "
                         "(default: one per worker)")
    cluster.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                         help="documents per task (default: %(default)s)")
    cluster.add_argument("--workers-write", action="store_true",
                         help="the workers store the results themselves (PostgreSQL only), "
                         "reading the database URL from $INSPECTOR_DB on their side")


def wants_cluster(args: argparse.Namespace) -> bool:
    """Whether the command line asked for a cluster."""
    return getattr(args, "dask", None) is not None or getattr(args, "workers", None) is not None


@contextlib.contextmanager
def cluster_scanner(args: argparse.Namespace) -> Iterator[ClusterScan]:
    """Connect to (or start) the cluster the options name; yield the scan to run on it.

    Raises:
        UsageError: a bad option, no URL, ``distributed`` not installed, or the scheduler
            cannot be reached.
    """
    for option in ("workers", "connection_cap", "batch_size"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise UsageError(f"--{option.replace('_', '-')}: expected at least 1, got {value}")
    url = server_url(args)
    connection = connection_settings(args)  # checked, as every command's
    try:
        import distributed

        from inspector.contrib.dask.inventory import scan
        from inspector.contrib.dask.settings import InspectorSettings
    except ImportError as error:
        raise UsageError(f"--dask and --workers need {error.name}: {DASK_EXTRA}") from None
    if not getattr(args, "verbose", 0):
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if args.token_env is not None and not os.environ.get(args.token_env):
        # Checked here too: with --workers the workers share this environment.
        raise UsageError("the environment variable that --token-env names is not set or empty "
                         "(--token-env takes the variable's name, never the token)")
    workers_write = bool(getattr(args, "workers_write", False))
    if workers_write and args.workers is not None and args.db:
        # The local workers start from this environment: the URL reaches them that way,
        # never through the scheduler.
        os.environ[DB_ENVIRONMENT] = args.db
    settings = InspectorSettings(url, timeout=connection["timeout"],
                                 request_timeout=connection["request_timeout"],
                                 connect_timeout=connection["connect_timeout"],
                                 max_in_flight=connection["max_in_flight"],
                                 retries=connection["retries"],
                                 token_env=args.token_env,
                                 connection_cap=args.connection_cap,
                                 store_env=DB_ENVIRONMENT if workers_write else None)
    with _client(distributed, args) as client:
        def scan_on_cluster(inventory: Inventory, document_ids: Sequence[str],
                            **options: Any) -> RunRecord:
            with _progress(options.pop("on_result", None)) as (on_start, on_result):
                return scan(inventory, client, settings, document_ids, on_start=on_start,
                            on_result=on_result, batch_size=args.batch_size,
                            workers_write=workers_write, **options)

        yield scan_on_cluster


@contextlib.contextmanager
def _client(distributed: Any, args: argparse.Namespace) -> Iterator[Any]:
    if args.workers is not None:
        from inspector.contrib.dask.cluster import local_cluster

        with local_cluster(args.workers) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    timeout = max(connection_settings(args)["timeout"] or 30.0, 1.0)
    try:
        # Tried first on a loop of its own: a Client that cannot connect raises from its
        # constructor and leaves its event-loop thread behind, with no object to close.
        asyncio.run(_probe(distributed, args.dask, timeout))
        client = distributed.Client(args.dask, timeout=timeout)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot reach the Dask scheduler at {args.dask}: {error}") from None
    with client:
        yield client


async def _probe(distributed: Any, address: str, timeout: float) -> None:
    comm = await distributed.comm.connect(address, timeout=timeout)
    await comm.close()


@contextlib.contextmanager
def _progress(on_result: Optional[Callable[..., None]]) -> Iterator[Any]:
    """A progress bar on stderr (a terminal, tqdm installed) counting results from every worker.

    Yields:
        ``(on_start, on_result)`` for :func:`inspector.contrib.dask.scan`.
    """
    bar: Any = None

    def on_start(to_do: int) -> None:
        nonlocal bar
        if not sys.stderr.isatty():
            return
        try:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            return
        bar = tqdm(total=to_do, file=sys.stderr, unit="doc", dynamic_ncols=True)

    def counted(document_id: str, outcome: str, reason: Optional[str]) -> None:
        if bar is not None:
            bar.update(1)
        if on_result is not None:
            on_result(document_id, outcome, reason)

    try:
        yield on_start, counted
    finally:
        if bar is not None:
            bar.close()
