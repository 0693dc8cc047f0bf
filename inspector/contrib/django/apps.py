"""The app's configuration."""

from django.apps import AppConfig  # type: ignore[import-untyped]


class DocumentInspectorConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """``inspector.contrib.django``: the ``inspect_documents`` command, the settings, and the
    system check of the settings."""

    name = "inspector.contrib.django"
    label = "document_inspector"
    verbose_name = "Document inspector"

    def ready(self) -> None:
        from django.core import checks  # type: ignore[import-untyped]

        from inspector.contrib.django.checks import check_settings

        checks.register(check_settings)
