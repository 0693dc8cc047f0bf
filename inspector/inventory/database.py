"""Opening the inventory's database: a path or a SQLAlchemy URL, brought to the latest schema.

``inventory.db`` (any string without ``://``) is a SQLite file; anything else is a SQLAlchemy
URL, e.g. ``postgresql+psycopg://user@host/inventory``. The schema is brought up to date by
the alembic migrations in :mod:`inspector.inventory.migrations` each time a database is opened,
so an inventory made by an older version is upgraded in place.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from inspector.exceptions import InspectorError, InvalidArgument
from inspector.redaction import redact

__all__ = ["DB_ENVIRONMENT", "database_url", "head_revision", "open_engine", "revision_of",
           "upgrade"]

#: The environment variable that names the database when no ``--db`` is given.
DB_ENVIRONMENT = "INSPECTOR_DB"

_MIGRATIONS = "inspector.inventory:migrations"


def database_url(db: Optional[str]) -> str:
    """The SQLAlchemy URL for ``db``: a path (SQLite) or a URL; default ``$INSPECTOR_DB``.

    Raises:
        InvalidArgument: Neither is given, or ``db`` is empty.
    """
    if db is None:
        db = os.environ.get(DB_ENVIRONMENT) or None
    if db is None:
        raise InvalidArgument(f"db: no inventory database given (a path or a SQLAlchemy URL; "
                              f"or set {DB_ENVIRONMENT})")
    if not isinstance(db, str) or not db.strip():
        raise InvalidArgument("db: expected a path or a SQLAlchemy URL")
    if "://" in db:
        return db
    return "sqlite:///" + os.path.abspath(db)


def open_engine(db: Optional[str], *, migrate: bool = True, **engine_options: Any) -> Engine:
    """Create the engine for ``db`` (see :func:`database_url`), its schema brought up to date.

    Args:
        db: A path or a SQLAlchemy URL; None for ``$INSPECTOR_DB``.
        migrate: Run the migrations up to the latest revision (the default).
        **engine_options: More arguments for :func:`sqlalchemy.create_engine`.

    Raises:
        InvalidArgument: ``db`` is not a usable path or URL.
        InspectorError: The database cannot be opened or upgraded (the message has no password).
    """
    url = database_url(db)
    try:
        engine = sa.create_engine(url, **engine_options)
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise InvalidArgument(f"db: cannot use {redact(url)!r}: {_one_line(exc)}") from None
    # The only dialect-specific setting: SQLite's default journal makes every commit (one per
    # document) wait for the disk twice; write-ahead logging waits once per checkpoint, and lets
    # queries read while a scan writes. PostgreSQL needs nothing of the kind.
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        try:
            upgrade(engine)
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            raise InspectorError(
                f"cannot open the inventory {redact(url)!r}: {_one_line(exc)}"
            ) from None
    return engine


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint, safe with WAL
    cursor.execute("PRAGMA busy_timeout=30000")  # another process writing: wait, do not fail
    cursor.close()


def _config(connection: Optional[sa.Connection] = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations on ``engine`` up to ``revision`` (the latest by default)."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def revision_of(engine: Engine) -> Optional[str]:
    """The schema revision the database is at; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The latest schema revision this version of the package knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])
