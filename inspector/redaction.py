"""Hide the secrets that connection strings carry, keeping everything a reviewer needs.

A data source's connection string says which database a widget reads, and a compliance review
needs all of it (driver, user, host, port, database, options) except the password. Two forms
are handled, in one pass each:

* URLs: ``postgresql://report_user:s3cr3t@warehouse:5432/sales`` becomes
  ``postgresql://report_user:REDACTED@warehouse:5432/sales``. The user info is read with
  :func:`urllib.parse.urlsplit`, so a password must be percent-encoded as URLs require.
* ``key=value`` settings, in a URL's query string, a libpq DSN (``host=db password='x y'``), an
  ODBC or JDBC string (``Server=db;Pwd={a;b}``): a value whose key names a secret (``password``,
  ``pwd``, ``secret``, ``token``, ``api_key``, and keys ending in one, e.g. ``db_password``) is
  replaced, whether bare, quoted or in braces.

The endpoint the client itself talks to is shown, in logs, reprs and errors, by
:func:`redact_url`: its scheme, host, port and path only, since user info and the query string
(``?access_token=...``) are the places a URL carries credentials.

This module depends on nothing else in the package, so the models can use it for their reprs.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["REDACTED", "redact", "redact_url"]

#: What a secret is replaced with.
REDACTED = "REDACTED"

_SECRET_SETTING = re.compile(
    r"""
    (?<![\w.-])                                       # the key starts here, not mid-word
    (?P<key>[\w.-]*?(?:password|passwd|pwd|secret|token|api_?key))
    (?P<equals>\s*=\s*)
    (?P<value>'(?:[^'\\]|\\.)*'                       # 'quoted', libpq style
             |"(?:[^"\\]|\\.)*"                       # "quoted"
             |\{(?:[^}]|\}\})*\}                      # {braced}, ODBC style (}} escapes a brace)
             |[^\s;&#]*)                              # bare, up to the next separator
    """,
    re.IGNORECASE | re.VERBOSE,
)


def redact(text: str) -> str:
    """Return ``text`` with any password or other secret it holds replaced by ``REDACTED``.

    Args:
        text: A connection URL, a key-value DSN, or any link.

    Returns:
        The same text, only the secret values replaced; ``text`` itself when it holds none.
    """
    if "://" in text:
        text = _redact_user_info(text)
    return _SECRET_SETTING.sub(_redact_setting, text)


def _redact_user_info(url: str) -> str:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # e.g. an invalid IPv6 host; the settings pass still runs
        return url
    user_info, at, host = netloc.rpartition("@")
    user, colon, password = user_info.partition(":")
    if not at or not password:
        return url
    # The netloc comes first after "scheme://", so its first occurrence is the one to replace.
    return url.replace(netloc, f"{user}:{REDACTED}@{host}", 1)


def _redact_setting(match: re.Match[str]) -> str:
    if not match.group("value"):
        return match.group(0)  # an empty value hides nothing
    return f"{match.group('key')}{match.group('equals')}{REDACTED}"


def redact_url(url: str) -> str:
    """Return an endpoint URL without user info, query or fragment, which may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: show none rather than fail
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
