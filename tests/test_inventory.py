"""The Inventory class, the library's entry point (README's examples run in test_readme.py)."""

from __future__ import annotations

import pytest

from inspector import InvalidArgument
from inspector.inventory import Inventory


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


def test_a_database_failure_is_an_inspector_error(postgresql_url):
    """A connection the database server ended is a StoreError, one line; the next call works."""
    import sqlalchemy as sa

    from inspector import InspectorError
    from inspector.inventory.database import StoreError

    with Inventory(postgresql_url) as inventory:
        assert inventory.runs() == []
        name = postgresql_url.rsplit("/", 1)[1]
        admin = sa.create_engine(postgresql_url.rsplit("/", 1)[0] + "/postgres")
        with admin.begin() as connection:
            ended = connection.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).scalar()
        admin.dispose()
        assert ended >= 1
        with pytest.raises(StoreError) as failed:
            inventory.runs()
        assert isinstance(failed.value, InspectorError)
        assert len(str(failed.value).splitlines()) == 1
        assert inventory.runs() == []  # the pool opens a new connection
