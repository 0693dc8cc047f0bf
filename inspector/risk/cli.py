"""``document-inspector risk``: documents ranked by the personal data they show, worst first.

::

    document-inspector risk DOC_ID... | --all | --from-file FILE [--rules FILE]
                            [--format table|json]

``table`` (the default) prints one line per document: score, level, document, top reasons.
``json`` prints the assessments, findings and evidence included. Failures go to stderr, one
line each; the exit status is that of ``inspect``. Needs sqlglot (the ``risk`` extra),
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any, Dict, List, Optional, Tuple

import attrs

from inspector.cli import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    PROG,
    CommandParents,
    UsageError,
    open_inspector,
    read_document_ids,
)
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    InvalidArgument,
)
from inspector.risk.findings import Assessment
from inspector.risk.rules import RuleSet

__all__ = ["add_commands", "assessment_to_dict", "assessments_table", "run"]

RISK_EXTRA = "pip install 'document-inspector[risk]'"
FORMATS = ("table", "json")
_CONNECTION_ERRORS = (ConnectionFailed, ConnectionLost, ClientClosed)


def add_commands(commands: Any, parents: CommandParents) -> None:
    """Add the ``risk`` command to the command line's subparsers."""
    risk = commands.add_parser(
        "risk", parents=[parents.connection, parents.common], allow_abbrev=False,
        help="rank documents by the personal data they show",
        description="Which personal data (email, national id, health, ...) each document's "
        "SQL shows, in what form (raw, transformed, aggregated, filter), with the evidence; "
        "a score from 0 to 100 per document, worst first; passwords in connection strings and "
        "spreadsheets shared outside the company beside it.",
    )
    which = risk.add_argument_group("documents")
    which.add_argument("document_ids", nargs="*", metavar="DOC_ID", help="documents to assess")
    which.add_argument("--all", action="store_true",
                       help="also every document the server lists (ListDocuments)")
    which.add_argument("--from-file", metavar="FILE",
                       help="also the ids in FILE, one a line ('-': stdin)")
    stored = risk.add_argument_group("inventory")
    stored.add_argument("--db", metavar="DB",
                        help="assess the documents stored in the inventory (a SQLite path or a "
                        "SQLAlchemy URL) instead of asking a server, and store the findings "
                        "there; with no DOC_ID, every live document")
    stored.add_argument("--shows", metavar="CATEGORY[:EXPOSURE]",
                        help="with --db: the documents whose stored findings show CATEGORY "
                        "(e.g. national_id:raw), without assessing anything")
    risk.add_argument("--rules", metavar="FILE",
                      help="a JSON rules file that adds to or overrides the default rules")
    risk.add_argument("--format", choices=FORMATS, default="table",
                      help="table (the default): one line per document; json: everything")
    risk.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``risk``: assess the documents, print them ranked; return the exit status."""
    if args.shows is not None and args.db is None:
        raise UsageError("--shows answers from the inventory: give --db too")
    if args.db is None and not args.document_ids and not args.all and args.from_file is None:
        raise UsageError("name at least one DOC_ID, or give --all, --from-file or --db")
    if args.db is not None:
        from inspector.inventory.cli import _require_inventory_extra

        _require_inventory_extra()
        if args.shows is not None:
            return _run_shows(args)
    try:
        import sqlglot  # noqa: F401
    except ImportError:
        raise UsageError(f"the risk command needs sqlglot: {RISK_EXTRA}") from None
    from inspector.risk import load_rules

    rules: Optional[RuleSet] = None
    if args.rules is not None:
        try:
            rules = load_rules(args.rules)
        except InvalidArgument as exc:
            raise UsageError(str(exc)) from None
    document_ids = read_document_ids(args.document_ids, args.from_file)
    if args.db is not None:
        return _run_stored(args, document_ids, rules)
    return _run_live(args, document_ids, rules)


def _run_live(args: argparse.Namespace, document_ids: List[str],
              rules: Optional[RuleSet]) -> int:
    """Inspect the documents on the server and assess them."""
    from inspector.risk import assess

    assessments: List[Tuple[int, Assessment]] = []
    failures: List[InspectorError] = []
    with open_inspector(args) as inspector:
        if args.all:
            document_ids = list(dict.fromkeys(document_ids + inspector.list_documents()))
        results = inspector.inspect_many(document_ids, return_exceptions=True)
        for order, (document_id, result) in enumerate(zip(document_ids, results)):
            if isinstance(result, InspectorError):
                failures.append(result)
                sys.stderr.write(f"{PROG}: {document_id}: {type(result).__name__}: {result}\n")
                sys.stderr.flush()
                continue
            assessments.append((order, assess(result, rules)))
    _write(sys.stdout, _ranked(assessments), args.format)
    if any(isinstance(error, _CONNECTION_ERRORS) for error in failures):
        return EXIT_USAGE
    return EXIT_SOME_FAILED if failures else EXIT_OK


def _run_stored(args: argparse.Namespace, document_ids: List[str],
                rules: Optional[RuleSet]) -> int:
    """Assess the documents stored in the inventory; store the findings there."""
    from inspector.inventory.inventory import Inventory
    from inspector.risk.store import assess_stored

    wanted = [] if args.all else document_ids
    with Inventory(args.db) as inventory:
        assessments = list(enumerate(assess_stored(inventory.engine, wanted, rules)))
    missing = sorted(set(wanted) - {a.document_id for _, a in assessments})
    for document_id in missing:
        sys.stderr.write(f"{PROG}: {document_id}: not in the inventory\n")
    _write(sys.stdout, _ranked(assessments), args.format)
    return EXIT_SOME_FAILED if missing else EXIT_OK


def _run_shows(args: argparse.Namespace) -> int:
    """``--shows CATEGORY[:EXPOSURE]``: which documents show it, from the stored findings."""
    from inspector.inventory.inventory import Inventory
    from inspector.risk.store import documents_showing

    category, _, exposure = args.shows.partition(":")
    with Inventory(args.db) as inventory:
        try:
            records = documents_showing(inventory.engine, category, exposure or None)
        except InvalidArgument as exc:
            raise UsageError(f"--shows: {exc}") from None
    if args.format == "json":
        sys.stdout.write(json.dumps([attrs.asdict(r) for r in records], indent=2) + "\n")
        return EXIT_OK
    lines = ["DOCUMENT  VERSION  WIDGET  EXPOSURE  CONFIDENCE  COLUMN"] if records else [
        f"no stored findings of {args.shows} (review documents with risk --db first)"]
    lines += [f"{r.document_id}  {r.version}  {r.widget_id}  {r.exposure}  "
              f"{r.confidence:.2f}  {r.table + '.' if r.table else ''}{r.column}"
              for r in records]
    sys.stdout.write(_aligned(lines) + "\n")
    return EXIT_OK


def _aligned(lines: List[str]) -> str:
    rows = [line.split("  ") for line in lines]
    if len(rows) < 2:
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _ranked(assessments: List[Tuple[int, Assessment]]) -> List[Assessment]:
    """Worst first: by score, then by security findings, then in the order given."""
    return [a for _, a in sorted(assessments, key=lambda item: (
        -item[1].score, -len(item[1].security_findings), item[0]))]


def _write(out: IO[str], ranked: List[Assessment], output_format: str) -> None:
    if output_format == "json":
        out.write(json.dumps([assessment_to_dict(a) for a in ranked], indent=2) + "\n")
    else:
        out.write(assessments_table(ranked))
    out.flush()


def assessment_to_dict(assessment: Assessment) -> Dict[str, Any]:
    """The JSON-able form of an assessment: attribute names as keys, lists for tuples."""
    return attrs.asdict(assessment)


def assessments_table(ranked: List[Assessment]) -> str:
    """One line per document: score, level, document id, the top reasons."""
    if not ranked:
        return "no documents assessed\n"
    width = max(len("DOCUMENT"), *(len(a.document_id) for a in ranked))
    lines = [f"SCORE  LEVEL   {'DOCUMENT':<{width}}  REASONS"]
    for assessment in ranked:
        reasons = "; ".join(assessment.reasons) or "-"
        lines.append(f"{assessment.score:>5}  {assessment.level:<6}  "
                     f"{assessment.document_id:<{width}}  {reasons}")
    return "\n".join(lines) + "\n"

