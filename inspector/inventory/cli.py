"""The inventory's commands: ``scan``, ``watch``, ``query``, ``diff``, ``runs`` (and the store
behind ``sources --db``).

Each takes ``--db`` (a SQLite path or a SQLAlchemy URL; default ``$INSPECTOR_DB``). SQLAlchemy
and the rest of the ``inventory`` extra are imported only when a command runs, so ``--help``
works on the base install.

Exit status: 0 done; 1 some documents failed; 2 a usage error, a connection that could not be
opened or was lost (the scan is resumable), or a run refused by the stale threshold;
130 interrupted (the scan is resumable).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from inspector.cli import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    CommandParents,
    UsageError,
    open_inspector,
    read_document_ids,
)
from inspector.contrib.dask.cli import add_cluster_arguments, cluster_scanner, wants_cluster

if TYPE_CHECKING:  # pragma: no cover
    from inspector.inventory.inventory import Inventory

__all__ = ["add_commands", "run_sources_from_store"]

PROG = "document-inspector"
INVENTORY_EXTRA = "pip install 'document-inspector[inventory]'"
FORMATS = ("table", "json", "csv")


def add_commands(commands: Any, parents: CommandParents) -> None:
    """Add the inventory's subcommands to the command line's ``commands``."""
    db = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    db.add_argument("--db", metavar="DB",
                    help="the inventory: a SQLite path or a SQLAlchemy URL such as "
                    "postgresql+psycopg://host/inventory (default: $INSPECTOR_DB)")

    scan = commands.add_parser(
        "scan", parents=[parents.connection, db, parents.common], allow_abbrev=False,
        help="inspect documents and store them in the inventory",
        description="Inspect documents and store each (one transaction per document). "
        "Unchanged documents cost one request; a stopped scan is continued by the next scan "
        "of the same selection; documents an earlier --all scan listed and this one does not "
        "are marked deleted, unless there are too many (--stale-threshold).",
    )
    scan.add_argument("document_ids", nargs="*", metavar="DOC_ID", help="documents to scan")
    scan.add_argument("--all", action="store_true",
                      help="also every document the server lists (ListDocuments)")
    scan.add_argument("--from-file", metavar="FILE",
                      help="also the ids in FILE, one a line ('-': stdin)")
    scan.add_argument("--full", action="store_true",
                      help="inspect every document whole, even those unchanged")
    scan.add_argument("--resume", action="store_true",
                      help="only continue a stopped scan (of this selection; with none "
                      "given, the latest)")
    scan.add_argument("--stale-threshold", type=float, default=0.2, metavar="FRACTION",
                      help="refuse to mark more than this fraction of the listed documents "
                      "deleted at once (default: %(default)s)")
    scan.add_argument("--format", choices=("table", "json"), default="table",
                      help="the run report: table (for people) or json")
    add_cluster_arguments(scan)  # --dask, --workers: the inspections on a Dask cluster
    scan.set_defaults(run=run_scan)

    watch = commands.add_parser(
        "watch", parents=[parents.connection, db, parents.common], allow_abbrev=False,
        help="keep the inventory current until interrupted",
        description="Stay connected: re-inspect each document a DocumentChanged notification "
        "names, and scan everything again (incrementally) every --relist seconds and after "
        "each reconnection, to catch deletions and what was notified while disconnected.",
    )
    watch.add_argument("--relist", type=float, default=300.0, metavar="SECONDS",
                       help="seconds between relists (default: %(default)s)")
    watch.add_argument("--stale-threshold", type=float, default=0.2, metavar="FRACTION",
                       help="as for scan (default: %(default)s)")
    watch.set_defaults(run=run_watch)

    output = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    output.add_argument("--format", choices=FORMATS, default="table",
                        help="table (the default), json or csv")

    query = commands.add_parser(
        "query", parents=[db, output, parents.common], allow_abbrev=False,
        help="ask the inventory (no server needed)",
        description="Answer from the inventory alone: which documents read or write a table "
        "(the schema may be left out, or given in part), or the data sources of a document; "
        "now, or as of a run.",
    )
    question = query.add_mutually_exclusive_group(required=True)
    question.add_argument("--reads", metavar="TABLE",
                          help="documents whose SQL reads TABLE (orders, sales.orders, ...)")
    question.add_argument("--writes", metavar="TABLE", help="documents whose SQL writes TABLE")
    question.add_argument("--sources-of", metavar="DOC_ID", help="a document's data sources")
    # dest is not "run": that is the command's function (set_defaults below).
    query.add_argument("--run", type=int, metavar="RUN", dest="as_of_run", help="as of this run")
    query.add_argument("--at", metavar="WHEN",
                       help="with --sources-of: as of this moment (ISO 8601, UTC if no zone)")
    query.set_defaults(run=run_query)

    diff = commands.add_parser(
        "diff", parents=[db, output, parents.common], allow_abbrev=False,
        help="what changed between two runs",
        description="Documents new, changed and deleted from RUN_A to RUN_B, and for changed "
        "ones the data sources and tables that came or went.",
    )
    diff.add_argument("run_a", type=int, metavar="RUN_A")
    diff.add_argument("run_b", type=int, metavar="RUN_B")
    diff.set_defaults(run=run_diff)

    runs = commands.add_parser(
        "runs", parents=[db, output, parents.common], allow_abbrev=False,
        help="the runs and their reports",
        description="Every run with its counts; with RUN, that run's report and failures.",
    )
    runs.add_argument("run_id", type=int, nargs="?", metavar="RUN")
    runs.set_defaults(run=run_runs)


def _require_inventory_extra() -> None:
    """Check that what the ``inventory`` extra installs is there; say how to install it."""
    try:
        import alembic  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"the inventory needs {exc.name}: {INVENTORY_EXTRA}") from None


def _open(args: argparse.Namespace) -> Inventory:
    from inspector.inventory.inventory import Inventory

    return Inventory(args.db)


def _threshold(value: float) -> float:
    from inspector.exceptions import InvalidArgument
    from inspector.inventory.planner import check_threshold

    try:
        return check_threshold(value)
    except InvalidArgument:
        raise UsageError(f"--stale-threshold: expected a fraction from 0 to 1, got {value}"
                         ) from None


def run_scan(args: argparse.Namespace) -> int:
    """``scan``: inspect and store; print the run report."""
    _require_inventory_extra()
    from inspector.display import printable
    from inspector.inventory.planner import StaleListing
    from inspector.inventory.report import run_report

    if args.resume and (args.document_ids or args.all or args.from_file):
        pass  # resume that selection's stopped run
    elif not args.resume and not args.document_ids and not args.all and args.from_file is None:
        raise UsageError("name at least one DOC_ID, or give --all, --from-file or --resume")
    threshold = _threshold(args.stale_threshold)
    document_ids = read_document_ids(args.document_ids, args.from_file)
    with _open(args) as inventory, _scanner(args) as scan:
        def failed(document_id: str, outcome: str, reason: Optional[str]) -> None:
            if outcome == "failed":
                line = f"{document_id}: {reason}"
                sys.stderr.write(f"{PROG}: {printable(line, limit=len(line))}\n")
                sys.stderr.flush()
        try:
            run = scan(inventory, document_ids, list_all=args.all, full=args.full,
                       resume=args.resume, stale_threshold=threshold, on_result=failed)
        except StaleListing as refusal:
            sys.stderr.write(f"{PROG} scan: run {refusal.run_id} {refusal}\n")
            return EXIT_USAGE
        run_report(run, inventory.failures(run.id), args.format, sys.stdout)
        return EXIT_SOME_FAILED if run.failed else EXIT_OK


@contextlib.contextmanager
def _scanner(args: argparse.Namespace) -> Iterator[Callable[..., Any]]:
    """``scan(inventory, document_ids, **options)``: with one inspector, or on a cluster."""
    if wants_cluster(args):
        with cluster_scanner(args) as scan_on_cluster:
            yield scan_on_cluster
        return
    with open_inspector(args) as inspector:
        yield lambda inventory, *given, **options: inventory.scan(inspector, *given, **options)


def run_watch(args: argparse.Namespace) -> int:
    """``watch``: keep the inventory current until Ctrl-C."""
    _require_inventory_extra()
    from inspector.inventory.watch import Watcher

    if not args.relist > 0:
        raise UsageError(f"--relist: expected a positive number of seconds, got {args.relist}")
    threshold = _threshold(args.stale_threshold)
    with _open(args) as inventory, open_inspector(args) as inspector:
        def ended(run_id: int) -> None:
            run = inventory.run(run_id)
            sys.stderr.write(
                f"{PROG} watch: run {run.id} {run.status}: {run.new} new, {run.changed} "
                f"changed, {run.unchanged} unchanged, {run.deleted} deleted, {run.failed} "
                f"failed\n")
        watcher = Watcher(inventory.store, inspector, relist=args.relist,
                          stale_threshold=threshold, on_run=ended)
        try:
            watcher.run()
        except KeyboardInterrupt:
            sys.stderr.write(f"{PROG} watch: stopped\n")
    return EXIT_OK


def run_query(args: argparse.Namespace) -> int:
    """``query``: answer from the store."""
    _require_inventory_extra()
    from inspector.inventory.report import source_rows, table_use_rows, write_rows

    at = _moment(args.at) if args.at else None
    if at is not None and args.sources_of is None:
        raise UsageError("--at goes with --sources-of")
    with _open(args) as inventory:
        if args.sources_of is not None:
            sources = inventory.sources_of(args.sources_of, run_id=args.as_of_run, at=at)
            if sources is None:
                raise UsageError(f"{args.sources_of}: not in the inventory then")
            write_rows(source_rows(sources), args.format, sys.stdout,
                       columns=("document", "version", "widget", "kind", "location", "reads"))
            return EXIT_OK
        if args.reads is not None:
            uses = inventory.reads(args.reads, run_id=args.as_of_run)
        else:
            uses = inventory.writes(args.writes, run_id=args.as_of_run)
        write_rows(table_use_rows(uses), args.format, sys.stdout,
                   columns=("document", "version", "table", "widget", "connection"))
    return EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    """``diff RUN_A RUN_B``."""
    _require_inventory_extra()
    from inspector.inventory.report import diff_rows, write_rows

    with _open(args) as inventory:
        write_rows(diff_rows(inventory.diff(args.run_a, args.run_b)), args.format, sys.stdout)
    return EXIT_OK


def run_runs(args: argparse.Namespace) -> int:
    """``runs [RUN]``."""
    _require_inventory_extra()
    from inspector.inventory.report import run_report, run_row, write_rows

    with _open(args) as inventory:
        if args.run_id is not None:
            run = inventory.run(args.run_id)
            if args.format == "csv":
                write_rows([run_row(run)], "csv", sys.stdout)
            else:
                run_report(run, inventory.failures(run.id), args.format, sys.stdout)
            return EXIT_OK
        write_rows([run_row(run) for run in inventory.runs()], args.format, sys.stdout,
                   columns=("run", "trigger", "status", "started", "resumed", "targets",
                            "new", "changed", "unchanged", "deleted", "failed", "seconds"))
    return EXIT_OK


def run_sources_from_store(args: argparse.Namespace) -> int:
    """``sources --db DB``: today's sources report, from the store's current versions."""
    _require_inventory_extra()
    import json

    from inspector.cli import require_cli_extra

    require_cli_extra()
    from inspector.formatting import sources_table
    from inspector.sources import build_report, report_to_dict

    with _open(args) as inventory:
        ids = set(read_document_ids(args.document_ids, args.from_file))
        inspections = (i for i in inventory.inspections() if not ids or i.document.id in ids)
        report = build_report(inspections)
    if args.format == "json":
        sys.stdout.write(json.dumps(report_to_dict(report), indent=2) + "\n")
    else:
        sys.stdout.write(sources_table(report))
    return EXIT_OK


def _moment(text: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at: expected an ISO 8601 moment such as 2026-10-01T12:00:00Z, "
                         f"got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
