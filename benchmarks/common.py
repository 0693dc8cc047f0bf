"""What the benchmarks share: the sample server in another process, and medians of ratios.

Machines here are noisy, so no benchmark reports a bare time: each alternates the measured
client with a reference in the same process, run after run, and reports the median of the
per-pair ratios.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from typing import Callable, Iterator, List, Sequence, Tuple


@contextlib.contextmanager
def server_process(*options: str) -> Iterator[str]:
    """Run ``document-inspector serve --port 0 OPTIONS`` in a child process; yield its URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "inspector", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the sample server did not start: {line!r}")
        yield line.split()[-1]
    finally:
        child.terminate()
        child.wait(10)


def alternate(
    measured: Callable[[], object],
    reference: Callable[[], object],
    runs: int,
    warmup: int = 2,
) -> Tuple[float, List[float], List[float]]:
    """Time ``measured`` and ``reference`` alternately; return (median ratio, times, times)."""
    for _ in range(warmup):
        measured()
        reference()
    ours: List[float] = []
    theirs: List[float] = []
    for run in range(runs):
        # Alternate which goes first, so neither always enjoys a warm cache.
        pair = (measured, reference) if run % 2 == 0 else (reference, measured)
        for function in pair:
            started = time.perf_counter()
            function()
            elapsed = time.perf_counter() - started
            (ours if function is measured else theirs).append(elapsed)
    ratios = [a / b for a, b in zip(ours, theirs)]
    return statistics.median(ratios), ours, theirs


def describe(name: str, ratio: float, ours: Sequence[float], theirs: Sequence[float]) -> str:
    """One line: the median ratio and the median times behind it."""
    return (
        f"{name}: median ratio {ratio:.3f} "
        f"(ours {statistics.median(ours) * 1000:.1f} ms, "
        f"reference {statistics.median(theirs) * 1000:.1f} ms, {len(ours)} runs each)"
    )
