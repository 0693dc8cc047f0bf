"""The Inventory class, the library's entry point, and the README's examples of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inspector import InvalidArgument
from inspector.inventory import Inventory

README = Path(__file__).resolve().parent.parent / "README.rst"


def _inventory_examples() -> list:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\nThe inventory\n---"):]
    return re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", section)


def test_readme_examples_run(tmp_path, monkeypatch):
    """The python examples of README's inventory section run as written."""
    examples = _inventory_examples()
    assert examples
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for example in examples:
        code = "\n".join(line[4:] for line in example.splitlines())
        exec(compile(code, str(README), "exec"), namespace)
    assert (tmp_path / "inventory.db").exists()


def test_repr_hides_the_password(postgresql_server):
    """An inventory's repr shows where it is, never the password."""
    url = postgresql_server.url("postgres").replace("inventory@", "inventory:hunter2@")
    with Inventory(url) as inventory:
        assert "hunter2" not in repr(inventory)
        assert "127.0.0.1" in repr(inventory)


def test_no_database_is_an_invalid_argument(monkeypatch):
    """Without --db or INSPECTOR_DB, opening says what to give."""
    monkeypatch.delenv("INSPECTOR_DB", raising=False)
    with pytest.raises(InvalidArgument, match="INSPECTOR_DB"):
        Inventory()


def test_inspector_db_names_the_default(tmp_path, monkeypatch):
    """INSPECTOR_DB is used when no database is given."""
    monkeypatch.setenv("INSPECTOR_DB", str(tmp_path / "env.db"))
    with Inventory() as inventory:
        assert inventory.runs() == []
    assert (tmp_path / "env.db").exists()


def test_close_twice_is_harmless(inventory_db):
    """close() may be called twice."""
    inventory = Inventory(inventory_db)
    inventory.close()
    inventory.close()


def test_unknown_run_is_an_invalid_argument(inventory_db):
    """Asking for a run that does not exist names it."""
    with Inventory(inventory_db) as inventory, pytest.raises(InvalidArgument, match="run 7"):
        inventory.run(7)
