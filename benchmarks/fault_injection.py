"""Fault injection: many inspections against a sample server that drops, stalls and refuses.

    python benchmarks/fault_injection.py [--inspections 600] [--seed 7]

The sample server runs in another process with every fault at once: connections aborted
after N requests, every Nth request unanswered, 429 beyond a small in-flight limit (with
latency and jitter so that the limit bites), and idle connections closed. The script pauses
now and then so that the idle close fires. Each inspection's widgets are checked against the
ids the generated document must have. Printed: how many inspections completed exactly, how
many failed (each with its error), widgets lost or repeated (the goal is 0), and the threads,
RSS and live objects at the start and at the end (the goal is no growth). RSS is also shown
every hundred inspections: the allocator keeps some of what it was given, so RSS settles
rather than staying flat from the first inspection; the object count shows what is held.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import random
import sys
import threading
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import server_process  # noqa: E402

from inspector import DocumentInspector, Inspection, InspectorError  # noqa: E402


def rss_mib() -> float:
    """Resident set size of this process, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def expected_ids(document_id: str) -> List[str]:
    """The widget ids a generated document ``gen-CxW-tag`` must have, in order."""
    shape = document_id.split("-")[1]
    containers, widgets = (int(n) for n in shape.split("x"))
    return [f"{document_id}/c{c}/w{w}" for c in range(1, containers + 1)
            for w in range(1, widgets + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inspections", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    chooser = random.Random(args.seed)
    faults = [
        "--drop-after", "450",
        "--silent-every", "173",
        "--max-in-flight", "40",
        "--latency", "0.001", "--jitter", "0.004",
        "--idle-timeout", "0.4",
    ]
    print("sample server faults:", " ".join(faults))
    outcomes: Dict[str, int] = collections.Counter()
    errors: Dict[str, int] = collections.Counter()
    lost = repeated = widgets_total = 0
    with server_process(*faults) as url:
        inspector = DocumentInspector(url, request_timeout=0.5, timeout=60, backoff=0.02)
        inspector.get_widgets("gen-2x2-warmup")
        gc.collect()
        start_threads, start_rss, start_objects = (
            threading.active_count(), rss_mib(), len(gc.get_objects())
        )
        started = time.monotonic()
        done = 0
        batch_no = 0
        checkpoint = 0
        rss_trace: List[str] = []
        while done < args.inspections:
            batch_no += 1
            size = min(args.inspections - done, chooser.choice([1, 1, 5, 10, 20]))
            ids = [f"gen-{chooser.randint(1, 12)}x{chooser.randint(1, 12)}-b{batch_no}n{i}"
                   for i in range(size)]
            for document_id, result in zip(
                ids, inspector.inspect_many(ids, return_exceptions=True)
            ):
                done += 1
                if isinstance(result, InspectorError):
                    outcomes["failed"] += 1
                    errors[f"{type(result).__name__}: {result}"] += 1
                    continue
                assert isinstance(result, Inspection)
                got = [w.id for w in result.widgets]
                want = expected_ids(document_id)
                widgets_total += len(want)
                lost += len(set(want) - set(got))
                repeated += len(got) - len(set(got))
                outcomes["exact" if got == want else "inexact"] += 1
            if chooser.random() < 0.08:
                time.sleep(0.5)  # long enough for the server's idle close
            if done // 100 > checkpoint:
                checkpoint = done // 100
                rss_trace.append(f"{done}: {rss_mib():.1f}")
        elapsed = time.monotonic() - started
        gc.collect()
        end_threads, end_rss, end_objects = (
            threading.active_count(), rss_mib(), len(gc.get_objects())
        )
        stats = inspector.stats
        inspector.close()
        closed_threads = threading.active_count()
    print(f"inspections: {done} in {elapsed:.1f}s; completed exactly: {outcomes['exact']}; "
          f"inexact: {outcomes['inexact']}; failed: {outcomes['failed']}")
    for error, count in errors.most_common():
        print(f"  failed x{count}: {error}")
    print(f"widgets checked: {widgets_total}; lost: {lost}; repeated: {repeated}")
    print(f"what it took: {stats.connections_opened} connections opened, "
          f"{stats.resent_after_loss} requests resent after a loss, "
          f"{stats.resent_after_silence} after silence, {stats.resent_after_busy} after 429")
    print(f"threads: {start_threads} at the start, {end_threads} at the end, "
          f"{closed_threads} after close()")
    print(f"RSS: {start_rss:.1f} MiB at the start, {end_rss:.1f} MiB at the end; "
          f"by inspections done: {', '.join(rss_trace)} MiB")
    print(f"objects the garbage collector tracks: {start_objects} at the start, "
          f"{end_objects} at the end")


if __name__ == "__main__":
    main()
