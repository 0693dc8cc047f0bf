"""Text a server sent, made fit to go into an error message or onto the user's terminal.

Whatever a server puts in an error reply, a close reason, a handshake refusal or a document id
may end up in ``str(exc)`` and so on the command line's stderr. A hostile or broken server must
not be able to make that message megabytes long, nor drive the user's terminal with escape
sequences, nor forge extra lines of output. :func:`printable` is the one place that guards
this; every message built from server text goes through it.

This module depends on nothing else in the package, so the exceptions can use it.
"""

from __future__ import annotations

__all__ = ["MESSAGE_TEXT_LIMIT", "printable"]

#: The most characters of one piece of server text that a message shows.
MESSAGE_TEXT_LIMIT = 200


def printable(text: object, limit: int = MESSAGE_TEXT_LIMIT, *, quote: bool = False) -> str:
    """Return ``text`` cut to ``limit`` characters with every unprintable character escaped.

    Control characters (ESC, CR, LF, ...), format characters such as bidirectional overrides,
    and unassigned code points are shown as Python escapes (``\\x1b``, ``\\n``, ``\\u202e``), so
    the result is one line of plain characters. Text longer than ``limit`` is cut and says how
    much was left out.

    Args:
        text: The server's text (anything else is shown as ``str()`` of it).
        limit: The most characters of ``text`` to keep.
        quote: Show the kept text as a Python string literal (as ``repr`` does), for ids.

    Returns:
        Text safe to put in a message, at most ``limit`` characters of the original plus the
        escapes and the note of what was cut.
    """
    if not isinstance(text, str):
        text = str(text)
    omitted = len(text) - limit
    kept = text[:limit] if omitted > 0 else text
    if quote:
        shown = repr(kept)  # repr escapes exactly what str.isprintable() refuses
    elif kept.isprintable():
        shown = kept
    else:
        shown = "".join(c if c.isprintable() else _escape(c) for c in kept)
    if omitted > 0:
        shown += f"... ({omitted} more characters)"
    return shown


def _escape(character: str) -> str:
    # repr without its quotes: "\x1b", "\n", "\u202e"; a backslash alone stays as it is.
    return repr(character)[1:-1]
