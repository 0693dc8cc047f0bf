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
import contextlib
import importlib
import importlib.util
import json
import logging
import math
import os
import re
import signal
import ssl
import stat
import sys
import tempfile
import threading
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    NoReturn,
    Optional,
    TextIO,
    Tuple,
)
from urllib.parse import urlsplit

from inspector.client import DocumentInspector
from inspector.exceptions import (
    ClientClosed,
    ConnectionFailed,
    ConnectionLost,
    InspectorError,
    ServerError,
)
from inspector.models import Inspection
from inspector.redaction import redact_url
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
    "check_url",
    "connection_options",
    "connection_settings",
    "inspect_documents",
    "main",
    "one_line",
    "open_inspector",
    "open_output",
    "output_options",
    "read_document_ids",
    "require_cli_extra",
    "seconds_value",
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
SERVER_EXTRA = "pip install 'document-inspector[server]'"

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


# (option, DocumentInspector argument, environment variable, kind, default, help)
_CONNECTION_SETTINGS: Tuple[Tuple[str, str, str, str, Any, str], ...] = (
    ("--timeout", "timeout", "INSPECTOR_TIMEOUT", "seconds", 30.0,
     "the limit for each document, retries included"),
    ("--request-timeout", "request_timeout", "INSPECTOR_REQUEST_TIMEOUT", "seconds", 10.0,
     "how long one reply may take before the request is sent again"),
    ("--connect-timeout", "connect_timeout", "INSPECTOR_CONNECT_TIMEOUT", "seconds", 10.0,
     "the limit for opening a connection (TCP, TLS, handshake), per attempt"),
    ("--max-in-flight", "max_in_flight", "INSPECTOR_MAX_IN_FLIGHT", "count", 256,
     "requests awaiting a reply at once"),
    ("--retries", "retries", "INSPECTOR_RETRIES", "retries", 5,
     "times one request is sent again after a lost connection or silence"),
)
# Beyond this a timeout is a mistake (and threading's limit is near): 'none' says "no limit".
_MAX_SECONDS = 1_000_000.0
_MAX_COUNT = 1_000_000
_MAX_RETRIES = 1_000


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
    for option, _, variable, kind, default, help_text in _CONNECTION_SETTINGS:
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


def check_url(url: str) -> str:
    """Return ``url`` if it can name a WebSocket endpoint; otherwise say what to write.

    Checked before connecting: these mistakes can never succeed, so they are not retried.

    Raises:
        UsageError: Not a ``ws://`` or ``wss://`` URL with a host; the message suggests the
            URL meant when it can tell (``http://`` for ``ws://``, a missing scheme).
    """
    url = url.strip()
    shown = redact_url(url) if "://" in url else url.split("?", 1)[0]
    if "://" not in url:
        return _usage(f"the URL {shown!r} has no scheme: did you mean ws://{shown}?")
    scheme, _, rest = url.partition("://")
    meant = {"http": "ws", "https": "wss"}.get(scheme.lower())
    if meant is not None:
        suggestion = redact_url(f"{meant}://{rest}")
        return _usage(f"{scheme}:// is not a WebSocket URL: did you mean {suggestion}?")
    if scheme.lower() not in ("ws", "wss"):
        return _usage(f"not a ws:// or wss:// URL: {shown!r}")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        return _usage(f"not a valid URL {shown!r}: {exc}")
    if not host:
        return _usage(f"no host in the URL {shown!r}")
    return url


def _usage(message: str) -> NoReturn:
    raise UsageError(message)


def connection_settings(
    args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None
) -> Dict[str, Any]:
    """The :class:`DocumentInspector` keyword arguments that the options (or variables) give.

    Every value is checked here: a timeout is a number of seconds above 0 and at most
    1,000,000, or ``none`` for no limit; a count is a whole number.

    Args:
        args: The parsed command line (options of :func:`connection_options`).
        environ: Where the ``INSPECTOR_*`` variables are read; default ``os.environ``.

    Raises:
        UsageError: A value that cannot be used; the message names the option or variable.
    """
    environ = os.environ if environ is None else environ
    settings: Dict[str, Any] = {}
    for option, argument, variable, kind, default, _ in _CONNECTION_SETTINGS:
        text = getattr(args, argument, None)
        name = option
        if text is None:
            text, name = environ.get(variable) or None, variable
        settings[argument] = default if text is None else _setting_value(name, text, kind)
    cafile = getattr(args, "cafile", None)
    name = "--cafile"
    if cafile is None:
        cafile, name = environ.get("INSPECTOR_CAFILE") or None, "INSPECTOR_CAFILE"
    if cafile is not None:
        settings["ssl_context"] = _trusting(cafile, name)
    return settings


def seconds_value(name: str, text: str) -> Optional[float]:
    """A timeout as the command line takes it: seconds above 0, at most 1,000,000, or ``none``.

    Args:
        name: The option or variable it came from, for the message.
        text: What was given.

    Returns:
        The seconds, or None for ``none`` (no limit).

    Raises:
        UsageError: Anything else (0, negative, nan, inf, too large, not a number).
    """
    return _setting_value(name, text, "seconds")


def _setting_value(name: str, text: str, kind: str) -> Optional[float]:
    word = text.strip().lower()
    if word == "none" and kind != "retries":
        return None
    unlimited = "" if kind == "retries" else ", or 'none' for no limit"
    if kind == "seconds":
        try:
            seconds = float(word)
        except ValueError:
            seconds = math.nan
        if math.isinf(seconds) and seconds > 0:
            _usage(f"{name} {text}: for no limit give 'none'")
        if not 0 < seconds <= _MAX_SECONDS:  # also false for nan
            _usage(f"{name} {text}: give a number of seconds above 0 and at most "
                   f"{_MAX_SECONDS:,.0f}{unlimited}")
        return seconds
    lowest, highest = (0, _MAX_RETRIES) if kind == "retries" else (1, _MAX_COUNT)
    try:
        count = int(word)
    except ValueError:
        count = lowest - 1
    if not lowest <= count <= highest:
        _usage(f"{name} {text}: give a whole number from {lowest} to {highest:,}{unlimited}")
    return count


def _trusting(cafile: str, name: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise UsageError(f"cannot use {name} {cafile}: {reason}") from None


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
    url = getattr(args, "url", None) or os.environ.get("INSPECTOR_URL")
    if not url:
        raise UsageError("no server URL: give --url or set INSPECTOR_URL")
    url = check_url(url)
    settings = connection_settings(args)
    token = _token(getattr(args, "token_env", None))
    return DocumentInspector(url, token=token, **{**settings, **options})


class CommandParents(NamedTuple):
    """Parent parsers a command module builds its subcommands from."""

    connection: argparse.ArgumentParser  # --url, --token-env, --timeout, ...: see above
    common: argparse.ArgumentParser  # -v, -q, --no-progress after the command
    output: Optional[argparse.ArgumentParser] = None  # -o/--output FILE: see open_output()


# Modules that add commands of their own: each has ``add_commands(commands, parents)``, which
# adds subparsers to ``commands`` and gives each ``set_defaults(run=FUNCTION)``; ``main()``
# calls ``args.run(args)`` for the exit status. They import what their extra installs only
# inside ``run``, so ``--help`` works on the base install.
COMMAND_MODULES: Tuple[str, ...] = ()


class _RefuseToken(argparse.Action):
    """``--token``: refused, without echoing the value as argparse's own error would."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        parser.error("a token is never accepted on the command line (it would show in the "
                     "process list and shell history): put it in $INSPECTOR_TOKEN, or in "
                     "another variable named by --token-env VAR")


# -- the pieces the commands share (the Django command uses them too) --


@contextlib.contextmanager
def open_output(path: Optional[str], stdout: Optional[TextIO] = None) -> Iterator[IO[str]]:
    """Where a command writes its results: stdout, or ``path`` written atomically.

    The results go to a temporary file in ``path``'s directory, renamed onto ``path`` when the
    block ends normally; if it ends with an exception (Ctrl-C included) the temporary file is
    removed and ``path`` is left as it was.

    Args:
        path: The file to write; None or ``-``: ``stdout``.
        stdout: The stream for None or ``-``; default ``sys.stdout``.

    Raises:
        UsageError: The temporary file cannot be created (no such directory, no permission).
    """
    if path is None or path == "-":
        yield stdout or sys.stdout
        return
    directory, name = os.path.split(os.path.abspath(path))
    try:
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.",
                                                 suffix=".partial")
    except OSError as exc:
        raise UsageError(f"cannot write --output {path}: {exc.strerror or exc}") from None
    try:
        with open(descriptor, "w", encoding="utf-8") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _new_file_mode(path))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _new_file_mode(path: str) -> int:
    """The mode ``path`` has, or a new file would get (mkstemp makes its files 0600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def read_document_ids(
    document_ids: Iterable[str], from_file: Optional[str], stdin: Optional[TextIO] = None
) -> List[str]:
    """The ids named on the command line, then those in ``from_file``, each once.

    Args:
        document_ids: Ids given as arguments.
        from_file: A file of ids, one a line; ``-`` for ``stdin``. Blank lines and lines
            starting with ``#`` are skipped, and a UTF-8 byte order mark is dropped.
        stdin: What ``-`` reads; default ``sys.stdin``.

    Raises:
        UsageError: The file cannot be read.
    """
    ids = list(document_ids)
    if from_file == "-":
        ids += _ids_in((stdin or sys.stdin).read())
    elif from_file is not None:
        try:
            with open(from_file, encoding="utf-8-sig") as file:
                ids += _ids_in(file.read())
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --from-file {from_file}: {exc}") from None
    return list(dict.fromkeys(ids))


def _ids_in(text: str) -> List[str]:
    lines = (line.strip() for line in text.lstrip("\ufeff").splitlines())
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


_WITHIN_SECONDS = re.compile(r"within (\d+\.\d+)s\b")
# The library's parameters that messages name, as the command line calls them.
OPTION_NAMES: Mapping[str, str] = {
    "connect_timeout": "--connect-timeout",
    "request_timeout": "--request-timeout",
    "max_in_flight": "--max-in-flight",
}
_PARAMETER = re.compile(r"\b(connect_timeout|request_timeout|max_in_flight)\b")


def one_line(error: BaseException, names: Optional[Mapping[str, str]] = None) -> str:
    """The error's message on one line, durations rounded (``0.3 s``, not ``0.2999...s``).

    Args:
        error: The error to report.
        names: How to call the library's parameters that the message names (e.g.
            :data:`OPTION_NAMES`); default: as they are.
    """
    text = " ".join(str(error).split())
    text = _WITHIN_SECONDS.sub(lambda m: f"within {_seconds(float(m.group(1)))}", text)
    if names:
        text = _PARAMETER.sub(lambda m: names.get(m.group(1), m.group(1)), text)
    return text


def _seconds(value: float) -> str:
    return f"{value:.2g} s" if value < 10 else f"{value:.0f} s"


class DocumentRun:
    """Inspect documents in the order given; report each failure on ``err`` as it happens.

    Iterate over it for the inspections that succeeded, in order; afterwards ``failures``
    holds the others and ``exit_status`` says how the run went. When the connection is lost for
    good the run stops there: ``lost`` is the error, reported in one line with the number of
    documents not inspected, rather than one line per document.

    Args:
        inspector: An open inspector.
        document_ids: The documents, in the order to report them.
        err: Where failures and the progress bar go.
        progress: Show a progress bar (tqdm, if installed) when there is more than one document.
        prefix: Put before each failure line (the program's name).
        names: As :func:`one_line`, for the failure lines.
    """

    def __init__(
        self,
        inspector: DocumentInspector,
        document_ids: List[str],
        err: TextIO,
        *,
        progress: bool = False,
        prefix: str = "",
        names: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.inspector = inspector
        self.document_ids = document_ids
        self.err = err
        self.progress = progress and len(document_ids) > 1
        self.prefix = prefix
        self.names = names
        self.failures: List[Tuple[str, InspectorError]] = []
        self.lost: Optional[InspectorError] = None
        self.not_inspected = 0

    def __iter__(self) -> Iterator[Inspection]:
        bar = _progress_bar(len(self.document_ids), self.err) if self.progress else None
        done = 0
        try:
            results = self.inspector.inspect_many(self.document_ids, return_exceptions=True)
            for document_id, result in zip(self.document_ids, results):
                if isinstance(result, _CONNECTION_ERRORS):
                    self.lost = result
                    self.not_inspected = len(self.document_ids) - done
                    self._report(bar, f"{self.prefix}{self.lost_line}")
                    return
                done += 1
                if bar is not None:
                    bar.update(1)
                if isinstance(result, InspectorError):
                    self.failures.append((document_id, result))
                    self._report(
                        bar, f"{self.prefix}{document_id}: {type(result).__name__}: "
                        f"{one_line(result, self.names)}"
                    )
                else:
                    yield result
        finally:
            if bar is not None:
                bar.close()

    def _report(self, bar: Any, line: str) -> None:
        if bar is not None:
            bar.write(line, file=self.err)  # above the bar, then redrawn
        else:
            self.err.write(line + "\n")
        self.err.flush()

    @property
    def lost_line(self) -> str:
        """The one line that reports a connection lost for good, or "" if it was not."""
        if self.lost is None:
            return ""
        reason = _LOST_PREFIX.sub("", one_line(self.lost, self.names))
        count = self.not_inspected
        return (f"connection lost: {reason}; {count} document{'' if count == 1 else 's'} "
                "not inspected")

    @property
    def exit_status(self) -> int:
        """0 all succeeded; 2 the connection was lost for good; 1 some documents failed."""
        if self.lost is not None:
            return EXIT_USAGE
        if self.failures:
            return EXIT_SOME_FAILED
        return EXIT_OK


# "connection to ws://host:port lost: REASON" is said once, by the line's own "connection lost".
_LOST_PREFIX = re.compile(r"^connection to \S+ lost: ")


def _progress_bar(total: int, err: TextIO) -> Any:
    try:
        from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        logger.debug("no progress bar: tqdm is not installed (%s)", CLI_EXTRA)
        return None
    return tqdm(total=total, file=err, unit="doc", dynamic_ncols=True)


def show_progress(
    *, wanted: bool, stderr_is_terminal: bool, same_terminal: bool, streaming: bool
) -> bool:
    """Whether to draw a progress bar.

    Args:
        wanted: Neither ``--no-progress`` nor ``--quiet`` was given.
        stderr_is_terminal: stderr is a terminal (in a pipe or a log a bar is noise).
        same_terminal: stdout is that same terminal.
        streaming: Results are printed while the run goes on (jsonl, table); a bar redrawn
            between their lines would garble them.
    """
    return wanted and stderr_is_terminal and not (same_terminal and streaming)


def _same_terminal(out: IO[str], err: TextIO) -> bool:
    try:
        if not (out.isatty() and err.isatty()):
            return False
        first, second = os.fstat(out.fileno()), os.fstat(err.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or not a real file
        return False
    return (first.st_dev, first.st_ino, first.st_rdev) == (
        second.st_dev, second.st_ino, second.st_rdev
    )


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False


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
    names: Optional[Mapping[str, str]] = None,
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
        progress: Draw a progress bar where it cannot garble the output (see
            :func:`show_progress`).
        prefix: As :class:`DocumentRun`.
        names: As :class:`DocumentRun`.

    Returns:
        The run: its ``failures``, ``lost``, and its ``exit_status`` (0, 1 or 2).

    Raises:
        UsageError: The table format or sources report was asked for without sqlglot.
        InspectorError: The connection could not be opened, or the server could not list its
            documents.
    """
    if report == "sources" or output_format == "table":
        require_cli_extra()  # before connecting: a missing extra is a usage error
    streaming = report == "inspect" and (output_format != "json" or single)
    progress = show_progress(
        wanted=progress, stderr_is_terminal=_is_terminal(err),
        same_terminal=_same_terminal(out, err), streaming=streaming,
    )
    with open_inspector() as inspector:
        if list_all:
            document_ids = list(dict.fromkeys(document_ids + _listed(inspector)))
        run = DocumentRun(
            inspector, document_ids, err, progress=progress, prefix=prefix, names=names
        )
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


class _RunCutShort(Exception):
    """The run stopped before every document was inspected: its output is not committed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def run_documents_command(args: argparse.Namespace) -> int:
    """``inspect`` and ``sources``."""
    if not args.document_ids and not args.all and args.from_file is None:
        raise UsageError("name at least one DOC_ID, or give --all or --from-file")
    document_ids = read_document_ids(args.document_ids, args.from_file)
    single = len(args.document_ids) == 1 and not args.all and args.from_file is None
    output_format = args.format or ("json" if single else "jsonl")
    url = args.url or os.environ.get("INSPECTOR_URL")
    if url:
        check_url(url)  # before creating the output file
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
        ids = _listed(inspector)
        _write(out, "".join(f"{document_id}\n" for document_id in ids))
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
        sys.stderr.write(f"{PROG}: {type(error).__name__}: {one_line(error, OPTION_NAMES)}\n")
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
