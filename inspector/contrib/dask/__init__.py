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

The names are imported on first use, so that the command line can offer ``--dask`` and
``--workers`` (:mod:`inspector.contrib.dask.cli`) without ``distributed`` installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BatchFailed",
    "BatchOutcome",
    "BatchPlan",
    "InspectorPlugin",
    "InspectorSettings",
    "Recorded",
    "StoreUnavailable",
    "WriteTo",
    "inspect_across",
    "inspect_batch",
    "local_cluster",
    "read_token",
    "scan",
]

_MODULES = {
    "BatchFailed": "submission",
    "BatchOutcome": "plugin",
    "BatchPlan": "submission",
    "InspectorPlugin": "plugin",
    "InspectorSettings": "settings",
    "Recorded": "writing",
    "StoreUnavailable": "writing",
    "WriteTo": "writing",
    "inspect_across": "submission",
    "inspect_batch": "plugin",
    "local_cluster": "cluster",
    "read_token": "settings",
    "scan": "inventory",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
