"""The system check: ``manage.py check`` (and every command that runs checks) reports a
``DOCUMENT_INSPECTOR`` setting that cannot work, a misspelt key above all, before anything uses
it."""

from __future__ import annotations

from typing import Any, List

from django.core import checks  # type: ignore[import-untyped]

from inspector.contrib.django.settings import SETTING, setting_problems

__all__ = ["check_settings"]


def check_settings(app_configs: Any = None, **kwargs: Any) -> List[Any]:
    """One ``document_inspector.E001`` error per problem of the setting.

    Args:
        app_configs: The apps being checked (this check concerns the settings only).
        **kwargs: What Django passes to every check.
    """
    return [
        checks.Error(
            problem,
            hint=f"See the {SETTING} setting in the README's Django section.",
            id="document_inspector.E001",
        )
        for problem in setting_problems()
    ]
