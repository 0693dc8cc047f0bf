"""The command line: ``document-inspector`` (also ``python -m inspector``).

Expected failures (a document that fails, a refused connection, a bad option) are reported on
stderr in one line each, never as a traceback. Exit status: 0 all succeeded, 1 some documents
failed, 2 usage or connection errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Iterable, List, Optional, TextIO, Union

from inspector.client import DocumentInspector
from inspector.exceptions import InspectorError
from inspector.models import Inspection
from inspector.serialization import to_json

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2

DEMO_DOCUMENT = "doc-1"


class UsageError(Exception):
    """A problem with how the command was called; reported without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="document-inspector",
        description="Inspect documents (dashboards, slide decks) and the data that feeds them.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    inspect = commands.add_parser("inspect", help="inspect documents and print them as JSON")
    inspect.add_argument("document_ids", nargs="*", metavar="DOC_ID")
    inspect.add_argument("--all", action="store_true", help="every document ListDocuments names")
    add_connection_arguments(inspect)
    inspect.add_argument(
        "--format", choices=("json", "jsonl"), default=None,
        help="json: one Inspection (default for one document); jsonl: one line per document",
    )

    demo = commands.add_parser(
        "demo", help="start the sample server in-process and inspect a sample dashboard"
    )
    demo.add_argument("document_ids", nargs="*", metavar="DOC_ID", default=[DEMO_DOCUMENT])

    serve = commands.add_parser("serve", help="run the sample documents server")
    from inspector.server import add_serve_arguments

    add_serve_arguments(serve)
    return parser


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --url, --token-env and the timeouts."""
    parser.add_argument(
        "--url", default=os.environ.get("INSPECTOR_URL"),
        help="ws:// or wss:// endpoint (default: $INSPECTOR_URL)",
    )
    parser.add_argument(
        "--token-env", metavar="VAR", default="INSPECTOR_TOKEN",
        help="environment variable holding the token (default: INSPECTOR_TOKEN); "
        "a token is never given on the command line",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per document")


def open_inspector(args: argparse.Namespace) -> DocumentInspector:
    """Open a DocumentInspector from --url and the token variable."""
    if not args.url:
        raise UsageError("no server URL: give --url or set INSPECTOR_URL")
    token = os.environ.get(args.token_env) or None
    return DocumentInspector(args.url, token=token, timeout=args.timeout)


def print_inspections(
    inspector: DocumentInspector,
    document_ids: List[str],
    output_format: Optional[str],
    out: TextIO,
    err: TextIO,
) -> int:
    """Inspect each document, print it, report failures on ``err``; return the exit status."""
    output_format = output_format or ("json" if len(document_ids) == 1 else "jsonl")
    failed = 0
    results: Iterable[Union[Inspection, InspectorError]] = inspector.inspect_many(
        document_ids, return_exceptions=True
    )
    for document_id, result in zip(document_ids, results):
        if isinstance(result, InspectorError):
            failed += 1
            err.write(f"document-inspector: {document_id}: {result}\n")
            continue
        out.write(to_json(result, indent=2 if output_format == "json" else None) + "\n")
        out.flush()
    return EXIT_SOME_FAILED if failed else EXIT_OK


def run_inspect(args: argparse.Namespace) -> int:
    """``inspect``: print each document's Inspection."""
    if not args.document_ids and not args.all:
        raise UsageError("name at least one DOC_ID, or --all")
    with open_inspector(args) as inspector:
        ids = list(args.document_ids)
        if args.all:
            ids += inspector.list_documents()
        return print_inspections(inspector, ids, args.format, sys.stdout, sys.stderr)


def run_demo(args: argparse.Namespace) -> int:
    """``demo``: the sample server in-process, one sample dashboard inspected and printed."""
    from inspector.server import run_sample_server

    with run_sample_server() as server:
        sys.stderr.write(f"sample server listening on {server.url}\n")
        with DocumentInspector(server.url) as inspector:
            return print_inspections(inspector, args.document_ids, None, sys.stdout, sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.command == "serve":
            from inspector.server import serve_from_args

            return serve_from_args(args)
        if args.command == "demo":
            return run_demo(args)
        return run_inspect(args)
    except UsageError as error:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"document-inspector: error: {error}\n")
        return EXIT_USAGE
    except InspectorError as error:
        sys.stderr.write(f"document-inspector: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("document-inspector: interrupted\n")
        return 130
