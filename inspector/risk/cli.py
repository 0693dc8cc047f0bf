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
    risk.add_argument("--rules", metavar="FILE",
                      help="a JSON rules file that adds to or overrides the default rules")
    risk.add_argument("--format", choices=FORMATS, default="table",
                      help="table (the default): one line per document; json: everything")
    risk.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``risk``: assess the documents, print them ranked; return the exit status."""
    if not args.document_ids and not args.all and args.from_file is None:
        raise UsageError("name at least one DOC_ID, or give --all or --from-file")
    try:
        import sqlglot  # noqa: F401
    except ImportError:
        raise UsageError(f"the risk command needs sqlglot: {RISK_EXTRA}") from None
    from inspector.risk import assess, load_rules

    rules: Optional[RuleSet] = None
    if args.rules is not None:
        try:
            rules = load_rules(args.rules)
        except InvalidArgument as exc:
            raise UsageError(str(exc)) from None
    document_ids = read_document_ids(args.document_ids, args.from_file)
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
    ranked = [a for _, a in sorted(assessments, key=lambda item: (
        -item[1].score, -len(item[1].security_findings), item[0]))]
    _write(sys.stdout, ranked, args.format)
    if any(isinstance(error, _CONNECTION_ERRORS) for error in failures):
        return EXIT_USAGE
    return EXIT_SOME_FAILED if failures else EXIT_OK


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

