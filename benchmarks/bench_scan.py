"""The inventory's scan at scale: full scan, rescans, memory, store size.

    python benchmarks/bench_scan.py                       # 100,000 into SQLite, 10,000 into PG
    python benchmarks/bench_scan.py --sqlite 20000 --postgresql 0
    python benchmarks/bench_scan.py --postgresql-url postgresql+psycopg://...   # a server of yours

Each case runs a sample server listing N generated documents (``generated=N``) in a child
process, which also changes documents on request (``SampleServer.mutate``, so that exactly the
documents asked for change). This process scans them all into a new inventory and prints:

* the full scan's time and documents per second;
* peak RSS of this process when N/5 and when N documents were stored (20,000 and 100,000 by
  default; it must not grow with the number of documents);
* the store's size;
* the rescan with nothing changed, as a ratio to the full scan's time (goal: <= 0.2);
* after 1% of the documents changed, whether the rescan stored exactly those.

Without ``--postgresql-url``, PostgreSQL is a temporary cluster started from the machine's
binaries (tests/postgresql_server.py), and removed at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any, Dict, List, Optional, Set

import sqlalchemy as sa

from inspector import DocumentInspector
from inspector.inventory import Inventory
from inspector.inventory import schema as t

_CHANGED_SHARE = 0.01
_MUTATION_KINDS = ("sql", "add_widget", "remove_widget")


def _serve(generated: int, pipe: Connection) -> None:
    """The child process: a sample server; answers "mutate N" with the ids it changed."""
    from inspector.server import run_sample_server

    with run_sample_server(generated=generated, seed=2026) as server:
        pipe.send(server.url)
        while True:
            command = pipe.recv()
            if command is None:
                return
            changed: Set[str] = set()
            turn = 0
            while len(changed) < command:
                kind = _MUTATION_KINDS[turn % len(_MUTATION_KINDS)]
                turn += 1
                try:
                    changed.add(server.mutate(kind=kind, notify=False).document_id)
                except Exception:  # a document that cannot take this kind: pick another
                    continue
            pipe.send(sorted(changed))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _store_size(inventory: Inventory, db: str) -> int:
    if inventory.engine.dialect.name == "sqlite":
        return sum(os.path.getsize(path) for path in (db, db + "-wal") if os.path.exists(path))
    with inventory.engine.connect() as connection:
        return int(connection.execute(
            sa.text("SELECT pg_database_size(current_database())")).scalar_one())


def run_case(name: str, db: str, count: int) -> Dict[str, Any]:
    """Scan ``count`` generated documents (plus the catalog) into ``db``; print the figures."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_serve, args=(count, theirs), daemon=True)
    child.start()
    url = ours.recv()
    figures: Dict[str, Any] = {"case": name, "documents": count}
    rss_at: Dict[int, float] = {}
    try:
        with Inventory(db) as inventory, DocumentInspector(url, timeout=120.0) as inspector:
            stored = 0

            def note(document_id: str, outcome: str, reason: Optional[str]) -> None:
                nonlocal stored
                stored += 1
                if stored in (count // 5, count):
                    rss_at[stored] = _peak_rss_mib()
                if stored % 10_000 == 0:
                    print(f"  ... {stored} stored", file=sys.stderr, flush=True)

            started = time.perf_counter()
            full = inventory.scan(inspector, list_all=True, on_result=note)
            full_seconds = time.perf_counter() - started
            total = full.targets
            print(f"{name}: full scan of {total} documents: {full_seconds:.1f} s, "
                  f"{total / full_seconds:.0f} documents/s ({full.new} new, "
                  f"{full.failed} failed)")
            for checkpoint in sorted(rss_at):
                print(f"{name}: peak RSS after {checkpoint} documents stored: "
                      f"{rss_at[checkpoint]:.0f} MiB")
            size = _store_size(inventory, db)
            print(f"{name}: store size: {size / 2**20:.0f} MiB "
                  f"({size / total / 1024:.1f} KiB per document)")

            started = time.perf_counter()
            rescan = inventory.scan(inspector, list_all=True)
            rescan_seconds = time.perf_counter() - started
            print(f"{name}: rescan, nothing changed: {rescan_seconds:.1f} s, ratio to the full "
                  f"scan {rescan_seconds / full_seconds:.3f} (goal <= 0.2); "
                  f"{rescan.unchanged} unchanged, {rescan.changed} changed, {rescan.new} new")

            wanted = max(1, int(total * _CHANGED_SHARE))
            ours.send(wanted)
            mutated: List[str] = ours.recv()
            started = time.perf_counter()
            after = inventory.scan(inspector, list_all=True)
            after_seconds = time.perf_counter() - started
            with inventory.engine.connect() as connection:
                stored_again = {row.document_id for row in connection.execute(
                    sa.select(t.run_documents.c.document_id)
                    .where(t.run_documents.c.run_id == after.id,
                           t.run_documents.c.outcome.in_(("changed", "new")))
                )}
            exact = stored_again == set(mutated)
            print(f"{name}: after {len(mutated)} documents ({len(mutated) / total:.1%}) "
                  f"changed: rescan {after_seconds:.1f} s, stored {len(stored_again)} "
                  f"new versions; exactly the changed ones: {'yes' if exact else 'NO'}")
            problems = inventory.check_integrity()
            print(f"{name}: integrity check: {'passed' if not problems else problems[:5]}")
            figures.update(full_seconds=full_seconds, rss=rss_at, size=size,
                           rescan_ratio=rescan_seconds / full_seconds, exact=exact)
    finally:
        ours.send(None)
        child.join(30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", type=int, default=100_000, metavar="N",
                        help="generated documents for the SQLite case (0: skip it)")
    parser.add_argument("--postgresql", type=int, default=10_000, metavar="N",
                        help="generated documents for the PostgreSQL case (0: skip it)")
    parser.add_argument("--postgresql-url", help="use this database instead of a temporary "
                        "cluster (it must be empty)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as directory:
        if args.sqlite:
            run_case("sqlite", os.path.join(directory, "inventory.db"), args.sqlite)
        if args.postgresql:
            if args.postgresql_url:
                run_case("postgresql", args.postgresql_url, args.postgresql)
            else:
                sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
                import postgresql_server  # the tests' cluster, from the machine's binaries

                server = postgresql_server.start(timeout=60.0)
                try:
                    _create_database(server.url(), "bench")
                    run_case("postgresql", server.url("bench"), args.postgresql)
                finally:
                    server.stop()


def _create_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


if __name__ == "__main__":
    main()
