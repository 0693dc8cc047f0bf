"""Alembic's environment for the inventory: run on the connection the store hands over.

The store runs migrations itself (:func:`inspector.inventory.migrate.upgrade`), passing its
open connection in ``config.attributes["connection"]``; there is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context

from inspector.inventory.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead, elsewhere it is
    # a plain ALTER. Alembic decides per dialect.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
