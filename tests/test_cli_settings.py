"""Tests of what the command line's values mean: URLs, numbers, CA files, error lines."""

from __future__ import annotations

import inspect
import ssl
from pathlib import Path

import pytest
import trustme

from inspector import DocumentInspector
from inspector.cli import build_parser
from inspector.cli_settings import (
    OPTION_NAMES,
    UsageError,
    check_url,
    connection_settings,
    one_line,
    seconds_value,
)
from inspector.exceptions import ConnectionFailed


def test_one_line_rounds_durations_and_names_options() -> None:
    """one_line(): long floats rounded, library parameters named as the options are."""
    error = ConnectionFailed("could not connect to h:1 within connect_timeout\nafter "
                             "0.29999807199999395s, no reply within 12.3456s")
    assert one_line(error, OPTION_NAMES) == (
        "could not connect to h:1 within --connect-timeout after 0.29999807199999395s, "
        "no reply within 12 s"
    )


def test_connection_settings_map_to_inspector_arguments(tmp_path: Path) -> None:
    """Options, then INSPECTOR_* variables, then defaults, as DocumentInspector arguments."""
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    parser = build_parser()
    args = parser.parse_args(["inspect", "x", "--timeout", "none", "--request-timeout", "2.5",
                              "--max-in-flight", "8", "--cafile", str(cafile)])
    settings = connection_settings(args, {"INSPECTOR_RETRIES": "3",
                                          "INSPECTOR_REQUEST_TIMEOUT": "9",
                                          "INSPECTOR_CONNECT_TIMEOUT": "none"})
    context = settings.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert settings == {"timeout": None, "request_timeout": 2.5, "connect_timeout": None,
                        "max_in_flight": 8, "retries": 3}
    defaults = connection_settings(parser.parse_args(["inspect", "x"]), {})
    library = inspect.signature(DocumentInspector.__init__).parameters
    assert defaults == {name: library[name].default for name in defaults}
    assert defaults["timeout"] == 30.0 and defaults["retries"] == 5


def test_check_url_accepts_websocket_urls() -> None:
    """ws:// and wss:// URLs with a host pass as they are; a secret in one is never echoed."""
    assert check_url(" wss://documents.example.com/api ") == "wss://documents.example.com/api"
    with pytest.raises(UsageError) as caught:
        check_url("https://user:pw-123@h.example.com/api?token=tok-123")
    assert "pw-123" not in str(caught.value) and "tok-123" not in str(caught.value)
    assert "did you mean wss://h.example.com/api?" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("0.5", 0.5), (" 30 ", 30.0), ("none", None), ("NONE", None),
                          ("1000000", 1_000_000.0)],
)
def test_seconds_value_accepts(text: str, seconds: object) -> None:
    """Seconds above 0 up to 1,000,000, or none (any case), are taken."""
    assert seconds_value("--timeout", text) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "nan", "inf", "-inf", "1e10", "1000001", "", "x"])
def test_seconds_value_refuses(text: str) -> None:
    """0, negative, nan, inf, too large or not a number: UsageError naming the option."""
    with pytest.raises(UsageError, match=f"^--timeout {text}: "):
        seconds_value("--timeout", text)
