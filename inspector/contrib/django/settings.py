"""``settings.DOCUMENT_INSPECTOR``: checked and turned into DocumentInspector arguments.

The setting is read at each call, never cached, so that ``override_settings`` (and a settings
change in tests) takes effect.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Dict, List, Mapping

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]

from inspector.client import DocumentInspector
from inspector.connection import Connection

__all__ = ["SETTING", "inspector_options", "open_inspector", "setting_problems"]

SETTING = "DOCUMENT_INSPECTOR"
_EXAMPLE = f'{SETTING} = {{"URL": "wss://documents.example.com/api"}}'



def _arguments() -> Dict[str, str]:
    """Setting key -> argument: every keyword of DocumentInspector, and of the Connection it
    passes options on to, in capitals; derived, so a new argument needs nothing here."""
    names: Dict[str, None] = {}
    for function in (DocumentInspector.__init__, Connection.__init__):
        for parameter in inspect.signature(function).parameters.values():
            if parameter.name != "self" and parameter.kind not in (
                parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD
            ):
                names[parameter.name] = None
    return {name.upper(): name for name in names}


_ARGUMENTS = _arguments()


def setting_problems() -> List[str]:
    """What is wrong with the setting, one message per problem; empty if nothing is.

    The system check (``manage.py check``) reports these; :func:`inspector_options` raises the
    first.
    """
    config = getattr(settings, SETTING, None)
    if config is None:
        return [f"{SETTING} is not set; add to your settings: {_EXAMPLE}"]
    if not isinstance(config, Mapping):
        return [f"{SETTING} must be a dict, like {_EXAMPLE}"]
    problems = []
    unknown = sorted(str(key) for key in config if key not in _ARGUMENTS)
    if unknown:
        guesses = [
            f"{key} (did you mean {close[0]}?)" if close else key
            for key in unknown
            for close in [difflib.get_close_matches(key, list(_ARGUMENTS), n=1)]
        ]
        problems.append(
            f"{SETTING} has unknown keys {unknown}: {', '.join(guesses)}; "
            f"known: {', '.join(_ARGUMENTS)}"
        )
    url = config.get("URL")
    if not isinstance(url, str) or not url:
        problems.append(
            f"{SETTING}['URL'] is missing: the ws:// or wss:// endpoint of the documents "
            f"API, like {_EXAMPLE}"
        )
    return problems


def inspector_options() -> Dict[str, Any]:
    """The :class:`~inspector.DocumentInspector` keyword arguments that the setting names.

    Raises:
        ImproperlyConfigured: The setting is missing, not a dict, has no ``URL``, or has a key
            that names no argument (a typo would otherwise be ignored).
    """
    problems = setting_problems()
    if problems:
        raise ImproperlyConfigured(problems[0])
    config: Mapping[str, Any] = getattr(settings, SETTING)
    return {_ARGUMENTS[key]: value for key, value in config.items()}


def open_inspector(**overrides: Any) -> DocumentInspector:
    """Open a :class:`~inspector.DocumentInspector` as the setting says; close it when done.

    Args:
        **overrides: Arguments that win over the setting's (e.g. ``timeout=5.0``).

    Raises:
        ImproperlyConfigured: As :func:`inspector_options`.
        ConnectionFailed: The connection could not be opened.
    """
    return DocumentInspector(**{**inspector_options(), **overrides})
