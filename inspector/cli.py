"""The command line: ``document-inspector`` (also ``python -m inspector``).

Commands::

    inspect DOC_ID... | --all | --from-file FILE   print each document's inspection
    sources DOC_ID... | --all | --from-file FILE   the data-source report of those documents
    demo                                           the sample server in-process, doc-1 inspected
    serve                                          run the sample documents server

The server is ``--url`` or ``$INSPECTOR_URL``. A token is read from the environment only
(``$INSPECTOR_TOKEN``, or the variable ``--token-env VAR`` names): a command line is visible to
every user of the machine and kept in shell histories, so no option takes a token.

Output goes to stdout; stderr gets the failures (one line each: the document id and the reason),
the progress bar (when stderr is a terminal and there is more than one document) and, with
``--verbose``, the log. An expected failure never prints a traceback.

Exit status: 0 every document succeeded; 1 some failed (the others are still printed); 2 a usage
error, a connection that could not be opened or was lost; 130 interrupted (Ctrl-C).

The ``table`` format, the ``sources`` report and the progress bar need the ``cli`` extra (sqlglot
and tqdm); without it, the JSON formats still work, with no progress bar.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import (
    IO,
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    NoReturn,
    Optional,
    TextIO,
    Tuple,
)

from inspector.client import DocumentInspector
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    ServerError,
)
from inspector.models import Inspection
from inspector.serialization import to_json, to_wire

__all__ = [
    "COMMAND_MODULES",
    "CommandParents",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "DocumentRun",
    "UsageError",
    "build_parser",
    "connection_options",
    "inspect_documents",
    "main",
    "open_inspector",
    "read_document_ids",
    "require_cli_extra",
]

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PROG = "document-inspector"
DEMO_DOCUMENT = "doc-1"
INSPECT_FORMATS = ("json", "jsonl", "table")
SOURCES_FORMATS = ("json", "table")
CLI_EXTRA = "pip install 'document-inspector[cli]'"

logger = logging.getLogger("inspector.cli")


# A document that failed with one of these failed for want of a connection, not for itself:
# lost and not reopened (ConnectionLost, or ConnectionFailed on reopening), or closed under it.
_CONNECTION_ERRORS = (ConnectionFailed, ConnectionLost, ClientClosed)


class UsageError(Exception):
    """A problem with how the command was called; reported in one line, exit status 2."""


# -- the parser --


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors never repeat the values of options it does not know.

    ``--tok SECRET`` would otherwise be answered "unrecognized arguments: --tok SECRET", and
    stderr is often kept in logs. Subcommand parsers are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        head, colon, words = message.partition("unrecognized arguments: ")
        if colon:
            message = head + colon + " ".join(_without_value(w) for w in words.split(" "))
        super().error(message)


def _without_value(word: str) -> str:
    """``--option`` as is; ``--option=value`` and a bare word with the value hidden."""
    if not word.startswith("-"):
        return "..."
    option, equals, _ = word.partition("=")
    return option + ("=..." if equals else "")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every command."""
    # No abbreviations: "--token SECRET" must never be taken for "--token-env SECRET".
    parser = _Parser(
        prog=PROG,
        description="Inspect documents (dashboards, slide decks) and the data that feeds them.",
        allow_abbrev=False,
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log to stderr")
    # The same flag after the command; SUPPRESS keeps it from resetting the one given before.
    verbose = _Parser(add_help=False, allow_abbrev=False)
    verbose.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="log to stderr"
    )
    documents = _documents_parser()
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    inspect = commands.add_parser(
        "inspect", parents=[documents, verbose], allow_abbrev=False,
        help="inspect documents and print them",
        description="Inspect documents: each one's containers and widgets, with their data "
        "sources.",
    )
    inspect.add_argument(
        "--format", choices=INSPECT_FORMATS, default=None,
        help="json: one Inspection object (the default for one DOC_ID), or an array; "
        "jsonl: one line per document, printed as each is done (the default otherwise); "
        "table: for people, per document its widgets by type and its data sources",
    )

    sources = commands.add_parser(
        "sources", parents=[documents, verbose], allow_abbrev=False,
        help="report the data sources of documents",
        description="Each distinct data source (database connection, password redacted; "
        "spreadsheet link), its SQL statements with the tables they read, and the documents "
        "and widgets that use it.",
    )
    sources.add_argument("--format", choices=SOURCES_FORMATS, default="json",
                         help="json (the default) or table")
    sources.add_argument("--db", metavar="DB",
                         help="report from this inventory (see scan) instead of the server")

    demo = commands.add_parser(
        "demo", parents=[verbose], allow_abbrev=False,
        help="start the sample server in-process and inspect a sample dashboard",
    )
    demo.add_argument("document_ids", nargs="*", metavar="DOC_ID", default=[DEMO_DOCUMENT])

    serve = commands.add_parser(
        "serve", parents=[verbose], allow_abbrev=False, help="run the sample documents server"
    )
    from inspector.server import add_serve_arguments

    add_serve_arguments(serve)
    parents = CommandParents(connection=connection_options(), common=verbose)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(commands, parents)
    return parser


def _documents_parser() -> _Parser:
    """The options of the commands that inspect documents: which ones, and where."""
    parser = _Parser(add_help=False, allow_abbrev=False, parents=[connection_options()])
    which = parser.add_argument_group("documents")
    which.add_argument("document_ids", nargs="*", metavar="DOC_ID", help="documents to inspect")
    which.add_argument("--all", action="store_true",
                       help="also every document the server lists (ListDocuments)")
    which.add_argument("--from-file", metavar="FILE",
                       help="also the ids in FILE, one a line ('-': stdin; blank lines and "
                       "lines starting with # are skipped)")
    return parser


def connection_options() -> _Parser:
    """A parent parser with the options that say which server, and how to talk to it.

    Every command that talks to a server takes it (``parents=[...]``) and opens its
    inspector with :func:`open_inspector`.
    """
    parser = _Parser(add_help=False, allow_abbrev=False)
    server = parser.add_argument_group("server")
    server.add_argument("--url", help="ws:// or wss:// endpoint (default: $INSPECTOR_URL)")
    server.add_argument(
        "--token-env", metavar="VAR",
        help="the environment variable holding the token (default: INSPECTOR_TOKEN); "
        "a token itself is never accepted on the command line",
    )
    server.add_argument("--token", nargs="?", action=_RefuseToken, help=argparse.SUPPRESS)
    server.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="seconds per document (default: %(default)s)")
    return parser


def open_inspector(args: argparse.Namespace, **options: Any) -> DocumentInspector:
    """Open the inspector that the options of :func:`connection_options` describe.

    Args:
        args: The parsed command line.
        **options: More keyword arguments for :class:`DocumentInspector`.

    Raises:
        UsageError: No URL, or the token variable is not set.
        ConnectionFailed: The connection could not be opened.
    """
    url = args.url or os.environ.get("INSPECTOR_URL")
    if not url:
        raise UsageError("no server URL: give --url or set INSPECTOR_URL")
    token = _token(args.token_env)
    return DocumentInspector(url, token=token, timeout=args.timeout, **options)


class CommandParents(NamedTuple):
    """Parent parsers a command module builds its subcommands from."""

    connection: argparse.ArgumentParser  # --url, --token-env, --timeout, ...: see above
    common: argparse.ArgumentParser  # --verbose after the command


# Modules that add commands of their own: each has ``add_commands(commands, parents)``, which
# adds subparsers to ``commands`` and gives each ``set_defaults(run=FUNCTION)``; ``main()``
# calls ``args.run(args)`` for the exit status. They import what their extra installs only
# inside ``run``, so ``--help`` works on the base install.
COMMAND_MODULES: Tuple[str, ...] = ("inspector.inventory.cli",)


class _RefuseToken(argparse.Action):
    """``--token``: refused, without echoing the value as argparse's own error would."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        parser.error("a token is never accepted on the command line (it would show in the "
                     "process list and shell history): put it in $INSPECTOR_TOKEN, or in "
                     "another variable named by --token-env VAR")


# -- the pieces the commands share (the Django command uses them too) --


def read_document_ids(
    document_ids: Iterable[str], from_file: Optional[str], stdin: Optional[TextIO] = None
) -> List[str]:
    """The ids named on the command line, then those in ``from_file``, each once.

    Args:
        document_ids: Ids given as arguments.
        from_file: A file of ids, one a line; ``-`` for ``stdin``. Blank lines and lines
            starting with ``#`` are skipped.
        stdin: What ``-`` reads; default ``sys.stdin``.

    Raises:
        UsageError: The file cannot be read.
    """
    ids = list(document_ids)
    if from_file == "-":
        ids += _ids_in((stdin or sys.stdin).read())
    elif from_file is not None:
        try:
            with open(from_file, encoding="utf-8") as file:
                ids += _ids_in(file.read())
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --from-file {from_file}: {exc}") from None
    return list(dict.fromkeys(ids))


def _ids_in(text: str) -> List[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def require_cli_extra() -> None:
    """Check that the table format and the sources report can run: they need sqlglot.

    Raises:
        UsageError: sqlglot is not installed; the message says how to install it.
    """
    try:
        import inspector.formatting  # noqa: F401  (imports inspector.sources, and sqlglot)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "sqlglot":
            raise
        raise UsageError(
            f"the table format and the sources report need sqlglot: {CLI_EXTRA}"
        ) from None


class DocumentRun:
    """Inspect documents in the order given; report each failure on ``err`` as it happens.

    Iterate over it for the inspections that succeeded, in order; afterwards ``failures``
    holds the others and ``exit_status`` says how the run went.

    Args:
        inspector: An open inspector.
        document_ids: The documents, in the order to report them.
        err: Where failures and the progress bar go.
        progress: Show a progress bar (tqdm, if installed) when there is more than one document.
        prefix: Put before each failure line (the program's name).
    """

    def __init__(
        self,
        inspector: DocumentInspector,
        document_ids: List[str],
        err: TextIO,
        *,
        progress: bool = False,
        prefix: str = "",
    ) -> None:
        self.inspector = inspector
        self.document_ids = document_ids
        self.err = err
        self.progress = progress and len(document_ids) > 1
        self.prefix = prefix
        self.failures: List[Tuple[str, InspectorError]] = []

    def __iter__(self) -> Iterator[Inspection]:
        bar = _progress_bar(len(self.document_ids), self.err) if self.progress else None
        try:
            results = self.inspector.inspect_many(self.document_ids, return_exceptions=True)
            for document_id, result in zip(self.document_ids, results):
                if bar is not None:
                    bar.update(1)
                if isinstance(result, InspectorError):
                    self.failures.append((document_id, result))
                    line = f"{self.prefix}{document_id}: {type(result).__name__}: {result}\n"
                    if bar is not None:
                        bar.write(line, file=self.err, end="")  # above the bar, then redrawn
                    else:
                        self.err.write(line)
                    self.err.flush()
                else:
                    yield result
        finally:
            if bar is not None:
                bar.close()

    @property
    def exit_status(self) -> int:
        """0 all succeeded; 2 the connection was lost for good; 1 some documents failed."""
        if not self.failures:
            return EXIT_OK
        if any(isinstance(error, _CONNECTION_ERRORS) for _, error in self.failures):
            return EXIT_USAGE
        return EXIT_SOME_FAILED


def _progress_bar(total: int, err: TextIO) -> Any:
    try:
        from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        logger.debug("no progress bar: tqdm is not installed (%s)", CLI_EXTRA)
        return None
    return tqdm(total=total, file=err, unit="doc", dynamic_ncols=True)


def inspect_documents(
    open_inspector: Callable[[], DocumentInspector],
    document_ids: List[str],
    *,
    list_all: bool,
    report: str,
    output_format: str,
    single: bool,
    out: IO[str],
    err: TextIO,
    progress: bool = False,
    prefix: str = "",
) -> DocumentRun:
    """Open an inspector, inspect the documents, print them; return the finished run.

    Args:
        open_inspector: Opens the inspector; it is closed before this returns.
        document_ids: The documents to inspect, in order.
        list_all: Also inspect every document the server lists (after ``document_ids``).
        report: ``inspect`` (each inspection) or ``sources`` (the data-source report).
        output_format: ``json``, ``jsonl`` or ``table``.
        single: One document was named: ``json`` prints one object, not an array.
        out: Where the output goes.
        err: Where failures (and the progress bar) go.
        progress: As :class:`DocumentRun`.
        prefix: As :class:`DocumentRun`.

    Returns:
        The run: its ``failures``, and its ``exit_status`` (0, 1 or 2).

    Raises:
        UsageError: The table format or sources report was asked for without sqlglot.
        InspectorError: The connection could not be opened, or the server could not list its
            documents.
    """
    if report == "sources" or output_format == "table":
        require_cli_extra()  # before connecting: a missing extra is a usage error
    with open_inspector() as inspector:
        if list_all:
            document_ids = list(dict.fromkeys(document_ids + _listed(inspector)))
        run = DocumentRun(inspector, document_ids, err, progress=progress, prefix=prefix)
        if report == "sources":
            _write_report(run, output_format, out)
        else:
            _write_inspections(run, output_format, single, out)
        return run


def _write_inspections(
    inspections: Iterable[Inspection], output_format: str, single: bool, out: IO[str]
) -> None:
    if output_format == "json" and single:
        for inspection in inspections:
            _write(out, to_json(inspection, indent=2) + "\n")
    elif output_format == "json":
        _write(out, json.dumps([to_wire(i) for i in inspections], indent=2) + "\n")
    elif output_format == "jsonl":
        for inspection in inspections:
            _write(out, to_json(inspection) + "\n")
    else:
        from inspector.formatting import inspection_table

        for number, inspection in enumerate(inspections):
            _write(out, ("\n" if number else "") + inspection_table(inspection))


def _write_report(inspections: Iterable[Inspection], output_format: str, out: IO[str]) -> None:
    from inspector.formatting import sources_table
    from inspector.sources import build_report, report_to_dict

    report = build_report(inspections)
    if output_format == "json":
        _write(out, json.dumps(report_to_dict(report), indent=2) + "\n")
    else:
        _write(out, sources_table(report))


def _listed(inspector: DocumentInspector) -> List[str]:
    try:
        return inspector.list_documents()
    except ServerError as exc:
        if exc.code != 400:
            raise
        raise InspectorError(
            f"the server cannot list its documents ({exc}); name them instead"
        ) from exc


def _write(out: IO[str], text: str) -> None:
    out.write(text)
    out.flush()  # each document as soon as it is done, also into a pipe


# -- the commands --


def run_documents_command(args: argparse.Namespace) -> int:
    """``inspect`` and ``sources``."""
    if getattr(args, "db", None) is not None:
        from inspector.inventory.cli import run_sources_from_store

        return run_sources_from_store(args)
    if not args.document_ids and not args.all and args.from_file is None:
        raise UsageError("name at least one DOC_ID, or give --all or --from-file")
    document_ids = read_document_ids(args.document_ids, args.from_file)
    single = len(args.document_ids) == 1 and not args.all and args.from_file is None
    output_format = args.format or ("json" if single else "jsonl")

    run = inspect_documents(
        lambda: open_inspector(args),
        document_ids,
        list_all=args.all,
        report=args.command,
        output_format=output_format,
        single=single,
        out=sys.stdout,
        err=sys.stderr,
        progress=sys.stderr.isatty(),
        prefix=f"{PROG}: ",
    )
    return run.exit_status


def _token(variable: Optional[str]) -> Optional[str]:
    if variable is None:
        return os.environ.get("INSPECTOR_TOKEN") or None
    token = os.environ.get(variable)
    if not token:
        # The name is not repeated: it may be a token given here by mistake.
        raise UsageError("the environment variable that --token-env names is not set or empty "
                         "(--token-env takes the variable's name, never the token)")
    return token


def run_demo(args: argparse.Namespace) -> int:
    """``demo``: the sample server in-process, one sample dashboard inspected and printed."""
    from inspector.server import run_sample_server

    with run_sample_server() as server:
        sys.stderr.write(f"sample server listening on {server.url}\n")
        run = inspect_documents(
            lambda: DocumentInspector(server.url),
            list(args.document_ids),
            list_all=False,
            report="inspect",
            output_format="json" if len(args.document_ids) == 1 else "jsonl",
            single=len(args.document_ids) == 1,
            out=sys.stdout,
            err=sys.stderr,
            prefix=f"{PROG}: ",
        )
        return run.exit_status


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments; default ``sys.argv[1:]``.

    Returns:
        The exit status.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage, or the help
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    _configure_logging(args.verbose)
    try:
        if args.command == "serve":
            from inspector.server import serve_from_args

            return serve_from_args(args)
        if args.command == "demo":
            return run_demo(args)
        run: Optional[Callable[[argparse.Namespace], int]] = getattr(args, "run", None)
        if run is not None:
            return run(args)
        return run_documents_command(args)
    except UsageError as error:
        sys.stderr.write(f"{PROG} {args.command}: error: {error}\n")
        return EXIT_USAGE
    except InspectorError as error:
        sys.stderr.write(f"{PROG}: {type(error).__name__}: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`... | head`): say nothing, and keep the interpreter from
        # complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SOME_FAILED


def _configure_logging(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    else:
        # Logging stays off: no library's warning reaches stderr through logging's fallback.
        logging.basicConfig(handlers=[logging.NullHandler()])
