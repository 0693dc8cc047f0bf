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

The caller's own credentials travel in handshake headers. :func:`is_credential_header` says
which headers carry one (they are never sent to another origin), and
:func:`credential_values` / :func:`redact_values` hide their values wherever a server could
send them back: a refusal reflecting the ``Authorization`` header must not put the token into
an error message.

This module depends on nothing else in the package, so the models can use it for their reprs.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Sequence
from urllib.parse import urlsplit

__all__ = [
    "REDACTED",
    "credential_values",
    "is_credential_header",
    "redact",
    "redact_url",
    "redact_values",
]

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


# Header names that carry a credential, by name or by a word in it: Authorization,
# Proxy-Authorization, Cookie, X-Api-Key, X-Auth-Token, X-Amz-Security-Token, X-Session-Id,
# X-Signature, Private-Token, ... A header this misses but that holds a secret is still one
# the caller chose to send; a header this takes by mistake is only left out of a redirect.
_CREDENTIAL_HEADER = re.compile(
    r"auth|cookie|token|secret|passw|pwd|key|session|credential|signature|csrf|xsrf",
    re.IGNORECASE,
)


def is_credential_header(name: str) -> bool:
    """Whether a header with this name may carry a credential.

    True for ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and any name holding
    ``auth``, ``cookie``, ``token``, ``secret``, ``passw``, ``pwd``, ``key``, ``session``,
    ``credential``, ``signature``, ``csrf`` or ``xsrf`` (``X-Api-Key``, ``X-Auth-Token``,
    ``X-Session-Id``, ...), in any case. Headers such as ``User-Agent``, ``Accept-Language``,
    ``X-Request-Id`` or ``X-Team`` are not.
    """
    return _CREDENTIAL_HEADER.search(name) is not None


def credential_values(header_lines: Iterable[str]) -> List[str]:
    """The secret values in handshake header lines (``"Name: value"``), longest first.

    For each credential header (:func:`is_credential_header`): its whole value, the part
    after an authentication scheme (the token of ``Bearer <token>``), and each value of a
    ``Cookie`` (``a=1; b=2``).
    """
    secrets = set()
    for line in header_lines:
        name, _, value = line.partition(":")
        value = value.strip()
        if not value or not is_credential_header(name):
            continue
        secrets.add(value)
        scheme, space, credential = value.partition(" ")
        if space and "=" not in scheme and credential.strip():
            secrets.add(credential.strip())
        for pair in value.split(";"):
            _, equals, cookie_value = pair.partition("=")
            if equals and cookie_value.strip():
                secrets.add(cookie_value.strip())
    return sorted(secrets, key=len, reverse=True)


def redact_values(text: str, secrets: Sequence[str]) -> str:
    """Return ``text`` with every occurrence of each of ``secrets`` replaced by ``REDACTED``.

    Args:
        text: Text from elsewhere that may hold a secret, e.g. a server's refusal.
        secrets: The values to hide, longest first (as :func:`credential_values` gives them),
            so that a secret holding another is hidden whole.
    """
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text
