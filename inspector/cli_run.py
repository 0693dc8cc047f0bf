"""Running documents through an inspector to an output: the shell every command shares.

:func:`inspect_documents` opens an inspector, runs a :class:`DocumentRun` (each failure one line
on stderr as it happens; a connection lost for good one line for all that were left), and
writes the results; :func:`open_output` is where they go (stdout, or a file written
atomically). The ``inspect`` and ``sources`` commands and the Django command use them, and so
may any command a module adds. :mod:`inspector.cli` re-exports every public name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import sys
import tempfile
from typing import IO, Any, Callable, Iterable, Iterator, List, Mapping, Optional, TextIO, Tuple

from inspector.cli_settings import UsageError, one_line
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
    "CLI_EXTRA",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "DocumentRun",
    "inspect_documents",
    "list_documents",
    "open_output",
    "require_cli_extra",
    "show_progress",
    "write_text",
]

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

CLI_EXTRA = "pip install 'document-inspector[cli]'"

logger = logging.getLogger("inspector.cli")


# A document that failed with one of these failed for want of a connection, not for itself:
# lost and not reopened (ConnectionLost, or ConnectionFailed on reopening), or closed under it.
_CONNECTION_ERRORS = (ConnectionFailed, ConnectionLost, ClientClosed)


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
            document_ids = list(dict.fromkeys(document_ids + list_documents(inspector)))
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
            write_text(out, to_json(inspection, indent=2) + "\n")
    elif output_format == "json":
        write_text(out, json.dumps([to_wire(i) for i in inspections], indent=2,
                                   allow_nan=False) + "\n")
    elif output_format == "jsonl":
        for inspection in inspections:
            write_text(out, to_json(inspection) + "\n")
    else:
        from inspector.formatting import inspection_table

        for number, inspection in enumerate(inspections):
            write_text(out, ("\n" if number else "") + inspection_table(inspection))


def _write_report(inspections: Iterable[Inspection], output_format: str, out: IO[str]) -> None:
    from inspector.formatting import sources_table
    from inspector.sources import build_report, report_to_dict

    report = build_report(inspections)
    if output_format == "json":
        write_text(out, json.dumps(report_to_dict(report), indent=2, allow_nan=False) + "\n")
    else:
        write_text(out, sources_table(report))


def list_documents(inspector: DocumentInspector) -> List[str]:
    try:
        return inspector.list_documents()
    except ServerError as exc:
        if exc.code != 400:
            raise
        raise InspectorError(
            f"the server cannot list its documents ({exc}); name them instead"
        ) from exc


def write_text(out: IO[str], text: str) -> None:
    """Write and flush: each document as soon as it is done, also into a pipe."""
    out.write(text)
    out.flush()  # each document as soon as it is done, also into a pipe
