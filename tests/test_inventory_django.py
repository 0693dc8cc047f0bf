"""The Django command's inventory option: inspect_documents --db, and settings.INVENTORY."""

from __future__ import annotations

import io
from typing import Any, Iterator, Tuple

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.test import override_settings  # noqa: E402

from inspector.inventory import Inventory  # noqa: E402
from inspector.server import SampleServer  # noqa: E402

# Settings can be configured once per process (test_django.py does the same).
if not settings.configured:
    settings.configure(INSTALLED_APPS=["inspector.contrib.django"], DOCUMENT_INSPECTOR={})
    django.setup()


def inspect_documents(*args: str, **options: Any) -> Tuple[str, str]:
    """Run the command; return its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("inspect_documents", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def configured(sample_server: SampleServer) -> Iterator[SampleServer]:
    """The sample server, named by DOCUMENT_INSPECTOR for the test."""
    with override_settings(DOCUMENT_INSPECTOR={"URL": sample_server.url}):
        yield sample_server


def test_db_scans_into_the_inventory(configured, inventory_db):
    """--db DB --all stores every document and prints the run report."""
    out, _ = inspect_documents("--all", "--db", inventory_db)
    listed = len(configured.document_ids())
    assert f"scanned {listed} of {listed}: {listed} new" in out
    with Inventory(inventory_db) as inventory:
        [run] = inventory.runs()
        assert (run.new, run.status) == (listed, "completed")


def test_db_alone_uses_the_inventory_setting(configured, tmp_path):
    """--db with no value scans into settings.INVENTORY; JSON with --format json."""
    db = str(tmp_path / "from-settings.db")
    with override_settings(INVENTORY=db):
        out, _ = inspect_documents("doc-1", "doc-6", "--db", "--format", "json")
    assert '"new": 2' in out
    with Inventory(db) as inventory:
        assert [u.document_id for u in inventory.reads("billing.invoices")][:1] == ["doc-6"]


def test_db_alone_without_the_setting_says_what_to_set(configured):
    """--db with no value and no INVENTORY setting is ImproperlyConfigured, naming it."""
    with pytest.raises(ImproperlyConfigured, match="INVENTORY"):
        inspect_documents("doc-1", "--db")


def test_failures_raise_command_error_with_status_1(configured, tmp_path):
    """A document that fails: the others are stored, and a CommandError with return code 1."""
    with pytest.raises(CommandError, match="no-such-doc") as failed:
        inspect_documents("doc-1", "no-such-doc", "--db", str(tmp_path / "i.db"))
    assert failed.value.returncode == 1
