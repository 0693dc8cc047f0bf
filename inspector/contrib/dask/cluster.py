"""The local cluster ``scan --workers N`` starts, and the batch size scans use by default.

Both were chosen by measurement (``benchmarks/bench_dask.py``, 20,000 small documents, one
worker against one process on 2 cores):

* **Two batches at once per worker process.** With one task thread, a worker's pipeline
  drained at the end of every batch: the last documents' replies came back one by one, then
  the batch was handed back and the next one started, and meanwhile the server and the
  worker idled (a quarter of the time with batches of 200). With two threads the next batch
  is under way while the last one finishes. Both share the worker's one inspector, so there
  is still one connection per worker process (what ``connection_cap`` counts).
* **Batches of 1,000 documents.** Each task costs the scheduler, the client and the worker a
  few milliseconds whatever its size: at 200 documents that was two fifths of the client's
  time (0.047 ms a document against 0.027 at 1,000) and a seventh of the worker's. At 1,000,
  a batch of small documents still finishes in a fraction of a second, so progress and a lost
  worker's re-run stay fine-grained.
* **No sampling profiler on the workers.** Dask samples every worker thread's stack 100 times
  a second for its dashboard; nobody reads it on a cluster started for one scan, and it cost
  a worker 3.5% of its rate.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BATCHES_PER_WORKER", "DEFAULT_BATCH_SIZE", "local_cluster"]

#: Task threads per worker process of a local cluster: batches that run at once on its
#: one inspector.
BATCHES_PER_WORKER = 2

#: Document ids per task.
DEFAULT_BATCH_SIZE = 1000


def local_cluster(workers: int, **options: Any) -> Any:
    """Start a ``distributed.LocalCluster`` of ``workers`` processes, set up for scans.

    Args:
        workers: Worker processes (each opens one inspector, one connection).
        options: More keyword arguments for ``LocalCluster``.

    Returns:
        The cluster; close it (or use it as a context manager) when done.
    """
    import dask
    import distributed

    settings = {"n_workers": workers, "threads_per_worker": BATCHES_PER_WORKER,
                "processes": True, "dashboard_address": ":0", **options}
    # The workers' processes take the configuration in force when they are started.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return distributed.LocalCluster(**settings)  # type: ignore[no-untyped-call]
