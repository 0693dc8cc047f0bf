"""Opening the inventory: paths and URLs, migrations run in place, the schema as declared."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from inspector import InspectorError, InvalidArgument
from inspector.inventory import Inventory
from inspector.inventory.database import (
    database_url,
    head_revision,
    open_engine,
    revision_of,
    upgrade,
)
from inspector.inventory.schema import metadata


def test_paths_are_sqlite_and_urls_are_kept(tmp_path, monkeypatch):
    """A path is a SQLite file; a URL is used as is; INSPECTOR_DB is the default."""
    assert database_url(str(tmp_path / "i.db")) == f"sqlite:///{tmp_path}/i.db"
    assert database_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    monkeypatch.setenv("INSPECTOR_DB", "postgresql+psycopg://h/env")
    assert database_url(None) == "postgresql+psycopg://h/env"
    monkeypatch.delenv("INSPECTOR_DB")
    with pytest.raises(InvalidArgument, match="INSPECTOR_DB"):
        database_url(None)


def test_a_bad_url_is_an_error_without_its_password():
    """An unusable URL is an InvalidArgument whose message hides the password."""
    with pytest.raises(InvalidArgument) as refused:
        open_engine("nosuchdialect://user:hunter2@host/db")
    assert "hunter2" not in str(refused.value)


def test_an_unreachable_database_is_an_inspector_error(postgresql_server):
    """A server that refuses the connection gives an InspectorError, password hidden."""
    url = postgresql_server.url("no_such_database").replace("inventory@",
                                                            "inventory:hunter2@")
    with pytest.raises(InspectorError) as refused:
        Inventory(url)
    assert "hunter2" not in str(refused.value)
    assert "no_such_database" in str(refused.value)


def test_migrations_build_the_declared_schema(inventory_db):
    """The migrated database matches the MetaData exactly: one declaration, one schema."""
    engine = open_engine(inventory_db)
    try:
        assert revision_of(engine) == head_revision()
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        engine.dispose()


def test_an_older_inventory_is_upgraded_in_place(inventory_db):
    """A database at the first revision keeps its runs when opened: upgraded, not rebuilt."""
    engine = open_engine(inventory_db, migrate=False)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO runs (started_at, selection_key, selection, settings, status) "
                "VALUES (CURRENT_TIMESTAMP, 'k', '{}', '{}', 'completed')"))
    finally:
        engine.dispose()
    with Inventory(inventory_db) as inventory:
        assert revision_of(inventory.engine) == head_revision()
        [run] = inventory.runs()
        assert (run.status, run.trigger) == ("completed", "scan")


def test_opening_twice_is_harmless(inventory_db):
    """Opening an up-to-date inventory again changes nothing."""
    with Inventory(inventory_db) as first:
        first.store.runs.begin_run(server=None, selection_key="k", selection={}, settings={},
                              targets=[("a", False)])
    with Inventory(inventory_db) as second:
        assert [run.targets for run in second.runs()] == [1]


def test_ctrl_c_waits_for_the_transaction_to_end(tmp_path):
    """Ctrl-C during a write: the transaction commits whole, then KeyboardInterrupt comes."""
    import os
    import signal

    from inspector.inventory.database import open_engine, transaction

    engine = open_engine(str(tmp_path / "held.db"))

    def work(connection):
        connection.execute(sa.text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
        os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the transaction
        connection.execute(sa.text("INSERT INTO t VALUES (1)"))

    with pytest.raises(KeyboardInterrupt):
        transaction(engine, work)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    engine.dispose()
