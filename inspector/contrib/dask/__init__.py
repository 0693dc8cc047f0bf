"""Inspect a company's documents across a Dask cluster (extra ``dask``: ``distributed``).

::

    from distributed import Client
    from inspector.contrib.dask import InspectorSettings, inspect_across

    settings = InspectorSettings("wss://documents.example.com/api", token_env="DOCS_TOKEN",
                                 connection_cap=8)
    with Client("tcp://scheduler:8786") as client:
        for document_id, outcome in inspect_across(client, ids, settings):
            ...   # an Inspection, or the InspectorError the document failed with

Each worker process opens one :class:`~inspector.DocumentInspector` (the
:class:`InspectorPlugin`), reading the token from its own environment or a secrets callback:
only the settings, never the token, are pickled. Documents go out in batches (one task per
batch, never per document), a bounded number at a time, and come back as batches finish.
:func:`scan` does the same into the inventory: ``scan(Inventory(db), client, settings, ids)``.
"""

from inspector.contrib.dask.inventory import scan
from inspector.contrib.dask.plugin import BatchOutcome, InspectorPlugin, inspect_batch
from inspector.contrib.dask.settings import InspectorSettings, read_token
from inspector.contrib.dask.submission import BatchFailed, BatchPlan, inspect_across

__all__ = [
    "BatchFailed",
    "BatchOutcome",
    "BatchPlan",
    "InspectorPlugin",
    "InspectorSettings",
    "inspect_across",
    "inspect_batch",
    "read_token",
    "scan",
]
