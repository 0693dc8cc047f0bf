"""Tests of inspector.display: server text made fit for messages and the terminal."""

from __future__ import annotations

import pytest

from inspector.display import MESSAGE_TEXT_LIMIT, printable


def test_plain_short_text_is_unchanged() -> None:
    """Ordinary text within the limit comes back as it was."""
    assert printable("no such document: doc-9 (é, ü)") == "no such document: doc-9 (é, ü)"


@pytest.mark.parametrize(
    "text, shown",
    [
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("line one\nFAKE: line two\r", "line one\\nFAKE: line two\\r"),
        ("abc\u202edef", "abc\\u202edef"),
        ("nul\0bell\a", "nul\\x00bell\\x07"),
    ],
)
def test_control_and_format_characters_are_escaped(text: str, shown: str) -> None:
    """ESC, CR, LF, NUL and bidirectional overrides come back as visible escapes."""
    assert printable(text) == shown


def test_long_text_is_cut_and_says_how_much() -> None:
    """Text over the limit keeps its start and the count of what was left out."""
    text = "x" * (12 * 2**20)
    shown = printable(text)
    omitted = len(text) - MESSAGE_TEXT_LIMIT
    assert shown == "x" * MESSAGE_TEXT_LIMIT + f"... ({omitted} more characters)"


def test_quote_shows_a_literal() -> None:
    """quote=True shows the kept text as a Python literal, escapes included."""
    assert printable("doc\x1b-1", quote=True) == "'doc\\x1b-1'"
    assert printable("d" * 50, 10, quote=True) == "'dddddddddd'... (40 more characters)"


def test_non_strings_are_shown_by_str() -> None:
    """A value that is not a string (a code, None) is shown as its str()."""
    assert printable(404) == "404" and printable(None) == "None"
