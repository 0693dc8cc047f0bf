"""What the command line's values mean, checked before anything connects.

Pure checks of what a user typed or set (a URL, numbers of seconds, counts, a CA file, a file
of ids) that turn it into :class:`~inspector.DocumentInspector` arguments, or into one
:class:`UsageError` line naming the option or variable at fault; and :func:`one_line`, how the
command line words an error. :mod:`inspector.cli` re-exports every public name.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import re
import ssl
import sys
from typing import Any, Dict, Iterable, List, Mapping, NoReturn, Optional, TextIO, Tuple
from urllib.parse import urlsplit

from inspector.client import DocumentInspector
from inspector.redaction import redact_url

__all__ = [
    "CONNECTION_SETTINGS",
    "OPTION_NAMES",
    "UsageError",
    "check_url",
    "connection_settings",
    "one_line",
    "read_document_ids",
    "seconds_value",
]


class UsageError(Exception):
    """A problem with how the command was called; reported in one line, exit status 2."""


def _library_default(argument: str) -> Any:
    # The command line's defaults are the library's, so that the two never drift apart.
    return inspect.signature(DocumentInspector.__init__).parameters[argument].default


# (option, DocumentInspector argument, environment variable, kind, default, help)
CONNECTION_SETTINGS: Tuple[Tuple[str, str, str, str, Any, str], ...] = tuple(
    (option, argument, variable, kind, _library_default(argument), help_text)
    for option, argument, variable, kind, help_text in (
        ("--timeout", "timeout", "INSPECTOR_TIMEOUT", "seconds",
         "the limit for each document (for list, the listing), retries included"),
        ("--request-timeout", "request_timeout", "INSPECTOR_REQUEST_TIMEOUT", "seconds",
         "how long one reply may take before the request is sent again"),
        ("--connect-timeout", "connect_timeout", "INSPECTOR_CONNECT_TIMEOUT", "seconds",
         "the limit for opening a connection (TCP, TLS, handshake), per attempt"),
        ("--max-in-flight", "max_in_flight", "INSPECTOR_MAX_IN_FLIGHT", "count",
         "requests awaiting a reply at once"),
        ("--retries", "retries", "INSPECTOR_RETRIES", "retries",
         "times one request is sent again after a lost connection or silence"),
    )
)
# Beyond this a timeout is a mistake (and threading's limit is near): 'none' says "no limit".
_MAX_SECONDS = 1_000_000.0
_MAX_COUNT = 1_000_000
_MAX_RETRIES = 1_000


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
    for option, argument, variable, kind, default, _ in CONNECTION_SETTINGS:
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
