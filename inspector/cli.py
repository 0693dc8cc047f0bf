"""The command line: ``document-inspector`` (also ``python -m inspector``).

Commands::

    inspect DOC_ID... | --all | --from-file FILE   print each document's inspection
    sources DOC_ID... | --all | --from-file FILE   the data-source report of those documents
    list                                           the ids ListDocuments gives, one a line
    demo                                           the sample server in-process, doc-1 inspected
    serve                                          run the sample documents server

The server is ``--url`` or ``$INSPECTOR_URL``. A token is read from the environment only
(``$INSPECTOR_TOKEN``, or the variable ``--token-env VAR`` names): a command line is visible to
every user of the machine and kept in shell histories, so no option takes a token. Every
setting of the connection (``--timeout``, ``--request-timeout``, ``--connect-timeout``,
``--max-in-flight``, ``--retries``, ``--cafile``) may come from an ``INSPECTOR_*`` variable
instead; an option wins over its variable.

Output goes to stdout, or with ``-o FILE`` to a temporary file beside FILE that is renamed onto
it when the run completes, so an interrupted run never leaves half a file. stderr gets the
failures (one line each: the document id and the reason; one line for a connection lost for
good), the progress bar and, with ``-v``, the log (one line per reconnection and per request
sent again; ``-vv`` for everything). A progress bar is drawn only where it cannot garble the
results: stderr a terminal, more than one document, and stdout not that same terminal while
results are being printed. ``--no-progress`` and ``--quiet`` turn it off. An expected failure
never prints a traceback.

Exit status: 0 every document succeeded; 1 some failed (the others are still printed); 2 a usage
error, a connection that could not be opened or was lost; 130 interrupted (Ctrl-C).

The ``table`` format, the ``sources`` report and the progress bar need the ``cli`` extra (sqlglot
and tqdm), ``serve`` and ``demo`` the ``server`` extra (websockets); without them, ``--help``,
``list`` and the JSON formats still work, with no progress bar.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable, List, NamedTuple, NoReturn, Optional, Tuple

from inspector.cli_run import (
    CLI_EXTRA,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    DocumentRun,
    inspect_documents,
    list_documents,
    open_output,
    require_cli_extra,
    show_progress,
    write_text,
)
from inspector.cli_settings import (
    CONNECTION_SETTINGS,
    OPTION_NAMES,
    UsageError,
    check_url,
    connection_settings,
    one_line,
    read_document_ids,
    seconds_value,
)
from inspector.client import DocumentInspector
from inspector.exceptions import ConnectionFailed, InspectorError

__all__ = [
    "CLI_EXTRA",
    "COMMAND_MODULES",
    "CONNECTION_SETTINGS",
    "CommandParents",
    "DocumentRun",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "OPTION_NAMES",
    "UsageError",
    "build_parser",
    "check_url",
    "connection_options",
    "connection_settings",
    "inspect_documents",
    "list_documents",
    "main",
    "one_line",
    "open_inspector",
    "server_url",
    "open_output",
    "output_options",
    "read_document_ids",
    "require_cli_extra",
    "seconds_value",
    "show_progress",
    "write_text",
]

PROG = "document-inspector"
DEMO_DOCUMENT = "doc-1"
INSPECT_FORMATS = ("json", "jsonl", "table")
SOURCES_FORMATS = ("json", "table")
SERVER_EXTRA = "pip install 'document-inspector[server]'"

logger = logging.getLogger("inspector.cli")


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


class _CommandParser(_Parser):
    """The parser of one command: ids and options in any order, its own errors.

    ``inspect doc-1 --format table doc-2`` takes both ids (``parse_intermixed_args``), and what
    is not understood is named by this command's parser, with this command's usage, rather than
    left for the top-level parser to reject with the top-level usage.
    """

    _parsing = False  # parse_known_intermixed_args calls parse_known_args in turn
    # A command whose options come with an extra that is not installed takes anything, so that
    # its run can say which extra to install rather than reject the options.
    takes_anything = False

    def parse_known_args(  # type: ignore[override]
        self, args: Optional[List[str]] = None, namespace: Optional[argparse.Namespace] = None
    ) -> Tuple[argparse.Namespace, List[str]]:
        if self._parsing:
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            try:
                parsed, extras = self.parse_known_intermixed_args(args, namespace)
            except TypeError:  # a command with a REMAINDER positional cannot be intermixed
                parsed, extras = super().parse_known_args(args, namespace)
        finally:
            self._parsing = False
        if extras and not self.takes_anything:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, []


def _without_value(word: str) -> str:
    """``--option`` as is; ``--option=value`` and a bare word with the value hidden."""
    if not word.startswith("-"):
        return "..."
    option, equals, _ = word.partition("=")
    return option + ("=..." if equals else "")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("document-inspector")
    except ImportError:  # not installed: a checkout on sys.path
        from inspector import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every command."""
    # No abbreviations: "--token SECRET" must never be taken for "--token-env SECRET".
    parser = _Parser(
        prog=PROG,
        description="Inspect documents (dashboards, slide decks) and the data that feeds them.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    _add_common_options(parser, argparse.SUPPRESS)
    common = _Parser(add_help=False, allow_abbrev=False)
    _add_common_options(common, argparse.SUPPRESS)
    output = output_options()
    parents = CommandParents(connection=connection_options(), common=common, output=output)
    # Typed as a plain ArgumentParser's: command modules add parsers with plain parents.
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser
    )
    documents = _documents_parser()

    inspect = commands.add_parser(
        "inspect", parents=[documents, output, common], allow_abbrev=False,
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
    inspect.set_defaults(run=run_documents_command)

    sources = commands.add_parser(
        "sources", parents=[documents, output, common], allow_abbrev=False,
        help="report the data sources of documents",
        description="Each distinct data source (database connection, password redacted; "
        "spreadsheet link), its SQL statements with the tables they read, and the documents "
        "and widgets that use it.",
    )
    sources.add_argument("--format", choices=SOURCES_FORMATS, default="json",
                         help="json (the default) or table")
    sources.add_argument("--db", metavar="DB",
                         help="report from this inventory (see scan) instead of the server")
    sources.set_defaults(run=run_documents_command)

    listing = commands.add_parser(
        "list", parents=[parents.connection, output, common], allow_abbrev=False,
        help="print the ids of every document the server lists, one a line",
        description="Print the ids ListDocuments gives, one a line, in the server's order.",
    )
    listing.set_defaults(run=run_list)

    demo = commands.add_parser(
        "demo", parents=[common], allow_abbrev=False,
        help="start the sample server in-process and inspect a sample dashboard",
        description="Start the sample server in this process, inspect sample documents "
        f"(default {DEMO_DOCUMENT}) and print them. Needs the server extra ({SERVER_EXTRA}).",
    )
    demo.add_argument("document_ids", nargs="*", metavar="DOC_ID", default=[DEMO_DOCUMENT],
                      help=f"sample documents to inspect (default: {DEMO_DOCUMENT})")
    demo.add_argument("--format", choices=INSPECT_FORMATS, default=None,
                      help="as for inspect: json (the default for one DOC_ID), jsonl, table")
    demo.set_defaults(run=run_demo)

    serve = commands.add_parser(
        "serve", parents=[common], allow_abbrev=False, help="run the sample documents server",
        description="Run the sample documents server until SIGINT or SIGTERM. Needs the "
        f"server extra ({SERVER_EXTRA}).",
    )
    if _server_extra_installed():
        from inspector.server import add_serve_arguments

        add_serve_arguments(serve)
        serve.set_defaults(run=_run_serve)
    else:
        # Its options come with the extra; whatever is given, the answer is how to install it.
        assert isinstance(serve, _CommandParser)
        serve.takes_anything = True
        serve.set_defaults(run=_server_extra_missing)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(commands, parents)
    return parser


def _add_common_options(parser: argparse.ArgumentParser, default: Any) -> None:
    # Given before or after the command. SUPPRESS keeps the command's copy from resetting the
    # one given before it; main() reads them with getattr(..., default).
    parser.add_argument("--verbose", "-v", action="count", default=default,
                        help="log to stderr: -v one line per reconnection and per request sent "
                        "again, -vv everything")
    parser.add_argument("--quiet", "-q", action="store_true", default=default,
                        help="no progress bar and no notes on stderr; errors still shown")
    parser.add_argument("--no-progress", action="store_true", default=default,
                        help="no progress bar")


def _server_extra_installed() -> bool:
    return importlib.util.find_spec("websockets") is not None


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
    inspector with :func:`open_inspector`. Each option but ``--token-env`` may be given as an
    ``INSPECTOR_*`` environment variable instead (``--url`` as ``INSPECTOR_URL``, ...).
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
    for option, _, variable, kind, default, help_text in CONNECTION_SETTINGS:
        metavar = "SECONDS" if kind == "seconds" else "N"
        shown = "none" if default is None else f"{default:g}"
        limit = "; 'none': no limit" if kind != "retries" else ""
        server.add_argument(option, metavar=metavar,
                            help=f"{help_text} (default: ${variable}, else {shown}{limit})")
    server.add_argument("--cafile", metavar="FILE",
                        help="trust the CA certificates in this PEM file for wss:// "
                        "(default: $INSPECTOR_CAFILE, else the system's)")
    return parser


def output_options() -> _Parser:
    """A parent parser with ``-o/--output FILE``; a command writes through :func:`open_output`."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="write the results to FILE instead of stdout: to a temporary file beside it, "
        "renamed onto FILE once the run completes, so an interrupted run leaves nothing "
        "('-': stdout)",
    )
    return parser


def open_inspector(args: argparse.Namespace, **options: Any) -> DocumentInspector:
    """Open the inspector that the options of :func:`connection_options` describe.

    Args:
        args: The parsed command line.
        **options: More keyword arguments for :class:`DocumentInspector`; they win over the
            options.

    Raises:
        UsageError: No URL, one that cannot name a WebSocket endpoint, a value out of range, or
            the token variable is not set.
        ConnectionFailed: The connection could not be opened.
    """
    url = server_url(args)
    settings = connection_settings(args)
    token = _token(getattr(args, "token_env", None))
    return DocumentInspector(url, token=token, **{**settings, **options})


def server_url(args: argparse.Namespace) -> str:
    """``--url``, else ``$INSPECTOR_URL``, checked; a bad one names where it came from."""
    url = getattr(args, "url", None)
    if url:
        return check_url(url)
    url = os.environ.get("INSPECTOR_URL")
    if not url:
        raise UsageError("no server URL: give --url or set INSPECTOR_URL")
    try:
        return check_url(url)
    except UsageError as error:
        raise UsageError(f"INSPECTOR_URL: {error}") from None


class CommandParents(NamedTuple):
    """Parent parsers a command module builds its subcommands from."""

    connection: argparse.ArgumentParser  # --url, --token-env, --timeout, ...: see above
    common: argparse.ArgumentParser  # -v, -q, --no-progress after the command
    output: Optional[argparse.ArgumentParser] = None  # -o/--output FILE: see open_output()


# Modules that add commands of their own: each has ``add_commands(commands, parents)``, which
# adds subparsers to ``commands`` and gives each ``set_defaults(run=FUNCTION)``; ``main()``
# calls ``args.run(args)`` for the exit status. They import what their extra installs only
# inside ``run``, so ``--help`` works on the base install.
COMMAND_MODULES: Tuple[str, ...] = ("inspector.inventory.cli", "inspector.risk.cli")


class _RefuseToken(argparse.Action):
    """``--token``: refused, without echoing the value as argparse's own error would."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        parser.error("a token is never accepted on the command line (it would show in the "
                     "process list and shell history): put it in $INSPECTOR_TOKEN, or in "
                     "another variable named by --token-env VAR")


# -- the commands --


class _RunCutShort(Exception):
    """The run stopped before every document was inspected: its output is not committed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


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
    server_url(args)  # before creating the output file
    try:
        with open_output(args.output) as out:
            run = inspect_documents(
                lambda: open_inspector(args),
                document_ids,
                list_all=args.all,
                report=args.command,
                output_format=output_format,
                single=single,
                out=out,
                err=sys.stderr,
                progress=not (_flag(args, "quiet") or _flag(args, "no_progress")),
                prefix=f"{PROG}: ",
                names=OPTION_NAMES,
            )
            if run.lost is not None:
                raise _RunCutShort(run.exit_status)
    except _RunCutShort as cut_short:
        return cut_short.status
    return run.exit_status


def run_list(args: argparse.Namespace) -> int:
    """``list``: the ids ListDocuments gives, one a line."""
    with open_output(args.output) as out, open_inspector(args) as inspector:
        ids = list_documents(inspector)
        write_text(out, "".join(f"{document_id}\n" for document_id in ids))
    return EXIT_OK


def _flag(args: argparse.Namespace, name: str) -> bool:
    return bool(getattr(args, name, False))


def _token(variable: Optional[str]) -> Optional[str]:
    if variable is None:
        return os.environ.get("INSPECTOR_TOKEN") or None
    token = os.environ.get(variable)
    if not token:
        # The name is not repeated: it may be a token given here by mistake.
        raise UsageError("the environment variable that --token-env names is not set or empty "
                         "(--token-env takes the variable's name, never the token)")
    return token


def _server_extra_missing(args: argparse.Namespace) -> int:
    raise UsageError(f"the sample server needs websockets: {SERVER_EXTRA}")


def _run_serve(args: argparse.Namespace) -> int:
    from inspector.server import serve_from_args

    return serve_from_args(args)


def run_demo(args: argparse.Namespace) -> int:
    """``demo``: the sample server in-process, sample documents inspected and printed."""
    if not _server_extra_installed():
        _server_extra_missing(args)
    from inspector.server import run_sample_server

    single = len(args.document_ids) == 1
    with run_sample_server() as server:
        if not _flag(args, "quiet"):
            sys.stderr.write(f"sample server listening on {server.url}\n")
        run = inspect_documents(
            lambda: DocumentInspector(server.url),
            list(args.document_ids),
            list_all=False,
            report="inspect",
            output_format=args.format or ("json" if single else "jsonl"),
            single=single,
            out=sys.stdout,
            err=sys.stderr,
            progress=not (_flag(args, "quiet") or _flag(args, "no_progress")),
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
    _configure_logging(getattr(args, "verbose", 0))
    _exit_cleanly_on_sigterm()
    try:
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except UsageError as error:
        sys.stderr.write(f"{PROG} {args.command}: error: {error}\n")
        return EXIT_USAGE
    except InspectorError as error:
        line = f"{PROG}: {type(error).__name__}: {one_line(error, OPTION_NAMES)}"
        sys.stderr.write(line + _time_limits_hint(error, args) + "\n")
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


def _time_limits_hint(error: InspectorError, args: argparse.Namespace) -> str:
    """For a connection that could not be opened in time: the limits that applied, and how to
    change them (a silent server is otherwise 30 s of silence and a bare "in time")."""
    text = str(error)
    if not isinstance(error, ConnectionFailed) or not (
        " in time" in text or "connect_timeout" in text
    ):
        return ""
    try:
        settings = connection_settings(args)
    except UsageError:
        return ""
    limits = [
        f"{option} {_shown(settings.get(argument))}"
        for option, argument in (("--connect-timeout", "connect_timeout"),
                                 ("--timeout", "timeout"))
    ]
    return f" ({' per attempt, '.join(limits)} in all; -v shows each attempt)"


def _shown(seconds: Optional[float]) -> str:
    return "none" if seconds is None else f"{seconds:g} s"


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM (``kill``, a service manager) ends the run as Ctrl-C does: with ``finally``.

    Python's default would end the process at once, leaving a half-written ``--output``
    temporary file behind. ``serve`` installs its own handler in its loop.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # main() called from a thread: signals are not ours to take
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signal_number: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signal_number)


class _OneLineFormatter(logging.Formatter):
    """Each record on one line: an exception is named after the message, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        error = record.exc_info[1] if record.exc_info else None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        text = super().format(record)
        if error is not None:
            text += f": {type(error).__name__}: {error}"
        return " ".join(text.split("\n"))


def _configure_logging(verbose: int) -> None:
    root = logging.getLogger()
    if not verbose:
        # Logging stays off: no library's warning reaches stderr through logging's fallback.
        logging.basicConfig(handlers=[logging.NullHandler()])
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if verbose >= 2:
        root.setLevel(logging.DEBUG)
    else:
        root.setLevel(logging.WARNING)
        logging.getLogger("inspector").setLevel(logging.INFO)
