"""The app's configuration."""

from django.apps import AppConfig  # type: ignore[import-untyped]


class DocumentInspectorConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """``inspector.contrib.django``: the ``inspect_documents`` command and the settings."""

    name = "inspector.contrib.django"
    label = "document_inspector"
    verbose_name = "Document inspector"
