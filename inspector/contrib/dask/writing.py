"""Workers that write their results to the inventory themselves (a PostgreSQL inventory).

With a database that takes many writers, each worker may record its batch's outcomes, one
transaction per document as the client process would, and send back only what it recorded:
the inventory's writing (hashing every version, a dozen statements per document) then scales
with the workers instead of being done by one process. The database URL, password included, is
read on the worker from the variable ``InspectorSettings.store_env`` names; what travels with a
batch is the run id and the URL with its password hidden, which the worker checks against its
own so that a worker never writes to another database than the client's run.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional, Sequence, Tuple, Union

import attrs

from inspector.contrib.dask.settings import InspectorSettings, read_store_url
from inspector.exceptions import InspectorError
from inspector.models import Document, Inspection

__all__ = ["Recorded", "StoreUnavailable", "WorkerStore", "WriteTo", "database_identity"]


class StoreUnavailable(InspectorError):
    """A worker cannot write to the run's inventory: no URL there, another database, SQLite.

    Every batch would fail alike, so the scan stops (resumable) rather than record failures.
    """


@attrs.frozen
class WriteTo:
    """Where a batch's outcomes go: a run, in the database that ``database`` names.

    Attributes:
        run_id: The run in the inventory.
        database: The database URL with its password hidden (never the password).
    """

    run_id: int
    database: str


@attrs.frozen
class Recorded:
    """What a worker recorded for one document: in place of the inspection itself.

    Attributes:
        outcome: ``new``, ``changed``, ``unchanged`` or ``failed``.
        reason: Why it failed, for ``failed``.
    """

    outcome: str
    reason: Optional[str] = None


def database_identity(engine: Any) -> str:
    """An engine's URL with its password hidden: the same on the client and the workers."""
    identity: str = engine.url.render_as_string(hide_password=True)
    return identity


class WorkerStore:
    """A worker's connection to the inventory, opened on its first batch that writes."""

    def __init__(self, settings: InspectorSettings) -> None:
        self._settings = settings
        self._store: Any = None
        self._lock = threading.Lock()  # guards _store, opened once by the first batch

    def record(self, write_to: WriteTo,
               outcomes: Sequence[Tuple[str, Union[Inspection, Document, InspectorError]]]
               ) -> List[Tuple[str, Recorded]]:
        """Record each outcome for the run, one transaction each (idempotent); say what.

        Raises:
            StoreUnavailable: the database URL is not set here, or names another database.
        """
        from inspector.inventory.scan import Failure

        store = self._open(write_to)
        recorded: List[Tuple[str, Recorded]] = []
        for document_id, outcome in outcomes:
            if isinstance(outcome, InspectorError):
                failure = Failure.from_error(document_id, outcome)
                store.record_failure(write_to.run_id, document_id, failure.reason)
                recorded.append((document_id, Recorded("failed", failure.reason)))
            elif isinstance(outcome, Document):
                recorded.append((document_id,
                                 Recorded(store.record_unchanged(write_to.run_id, outcome))))
            else:
                recorded.append((document_id, Recorded(store.record(write_to.run_id, outcome))))
        return recorded

    def close(self) -> None:
        """Close the database's connections; safe to call twice."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.engine.dispose()

    def _open(self, write_to: WriteTo) -> Any:
        with self._lock:
            if self._store is None:
                from inspector.inventory.database import open_engine
                from inspector.inventory.store import Store

                # The client process migrated the schema when it opened the inventory.
                try:
                    url = read_store_url(self._settings)
                except InspectorError as error:
                    raise StoreUnavailable(str(error)) from None
                engine = open_engine(url, migrate=False)
                if engine.dialect.name == "sqlite":
                    engine.dispose()
                    raise StoreUnavailable("workers write only to a database that takes many "
                                         "writers (PostgreSQL); SQLite takes one")
                self._store = Store(engine)
            store = self._store
        if database_identity(store.engine) != write_to.database:
            raise StoreUnavailable(
                f"this worker's {self._settings.store_env} names "
                f"{database_identity(store.engine)}, not the run's {write_to.database}"
            )
        return store
