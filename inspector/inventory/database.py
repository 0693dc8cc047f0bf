"""Opening the inventory's database: a path or a SQLAlchemy URL, brought to the latest schema.

``inventory.db`` (any string without ``://``) is a SQLite file; anything else is a SQLAlchemy
URL, e.g. ``postgresql+psycopg://user@host/inventory``. The schema is brought up to date by
the alembic migrations in :mod:`inspector.inventory.migrations` each time a database is opened,
so an inventory made by an older version is upgraded in place.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import signal
import threading
from typing import Any, Callable, Iterator, List, Optional, TypeVar, cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from inspector.exceptions import InspectorError, InvalidArgument
from inspector.redaction import redact

__all__ = ["DB_ENVIRONMENT", "StoreError", "database_errors", "database_url", "head_revision",
           "inserted_id", "open_engine", "revision_of", "store_error", "transaction", "upgrade",
           "utc_now"]

_F = TypeVar("_F", bound=Callable[..., Any])
_R = TypeVar("_R")

# A second process wrote the same row (a run's outcome for a document, a document's version)
# at the same moment: the transaction is tried again, and finds the other's row.
_ATTEMPTS = 3


def transaction(engine: Engine, work: Callable[[sa.Connection], _R]) -> _R:
    """Run ``work(connection)`` in one transaction; again if it collided with another writer.

    Ctrl-C and SIGTERM that arrive meanwhile take effect once the transaction is over.
    """
    with _signals_held():
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with engine.begin() as connection:
                    return work(connection)
            except sa.exc.IntegrityError:
                if attempt == _ATTEMPTS:
                    raise
    raise AssertionError("unreachable")


_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration, then act on them as they would have acted.

    A KeyboardInterrupt raised inside the database driver, or inside SQLAlchemy's own ending
    of a transaction, can leave a connection in its transaction: with SQLite it keeps the write
    lock, and the next write (marking the run interrupted) then waits out the whole
    busy_timeout. So the interruption waits for the transaction, a few milliseconds at most.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals, and only it may set handlers
        return
    received: List[signal.Signals] = []
    previous = {number: signal.signal(number, lambda n, _: received.append(signal.Signals(n)))
                for number in _HELD_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)  # raises, as Python's or the command line's does
            elif handler == signal.SIG_DFL:
                signal.raise_signal(received[0])


def inserted_id(result: Any) -> int:
    """The primary key an INSERT of one row gave it."""
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has one
    return int(key[0])


def utc_now() -> datetime.datetime:
    """The time now, in UTC, as every time in the store is."""
    return datetime.datetime.now(datetime.timezone.utc)


class StoreError(InspectorError):
    """The inventory's database failed (unreachable, full, locked too long, ...)."""


def database_errors(function: _F) -> _F:
    """Make ``function`` raise :class:`StoreError` for any error of the database driver.

    The edge between the inventory and SQLAlchemy: every public method of the store and of
    :class:`~inspector.inventory.Inventory` goes through it, so callers see InspectorErrors
    only, each one line with no password.
    """
    @functools.wraps(function)
    def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise store_error(exc) from exc
    return cast(_F, translated)


def store_error(exc: BaseException) -> StoreError:
    """The :class:`StoreError` for an error of the database driver: one line, no password."""
    return StoreError(f"the inventory's database failed: {_one_line(exc)}")

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
