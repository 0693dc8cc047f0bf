"""inspect_many() with several values of max_documents_in_flight, against the old default of 8.

    python benchmarks/bench_documents_in_flight.py [--documents 20000] [--runs 3]

What chose the default (32): each line is the rate of ``inspect_many`` over ``--documents``
generated ``gen-2x2`` documents (7 requests each, in three round trips) with that many
documents in flight, as a ratio to 8 in flight, the median of runs that alternate them in this
process against the sample server in a process of its own; and the client's CPU per document.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import server_process  # noqa: E402

from inspector import DocumentInspector  # noqa: E402

SETTINGS = (8, 16, 32, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ids = [f"gen-2x2-f{n}" for n in range(args.documents)]
    with server_process() as url:
        inspectors = {n: DocumentInspector(url, max_documents_in_flight=n) for n in SETTINGS}
        measured: Dict[int, List[Tuple[float, float]]] = {n: [] for n in SETTINGS}
        for _ in range(args.runs):
            for n, inspector in inspectors.items():
                started, cpu = time.perf_counter(), time.process_time()
                for _ in inspector.inspect_many(ids, return_exceptions=True):
                    pass
                measured[n].append((time.perf_counter() - started, time.process_time() - cpu))
        for inspector in inspectors.values():
            inspector.close()
    print(f"{args.documents} gen-2x2 documents, {args.runs} runs each", flush=True)
    for n in SETTINGS:
        ratios = [old / new for (old, _), (new, _) in zip(measured[8], measured[n])]
        rate = args.documents / statistics.median(t for t, _ in measured[n])
        cpu_ms = statistics.median(c for _, c in measured[n]) * 1000 / args.documents
        print(f"max_documents_in_flight={n}: {rate:.0f} docs/s, rate ratio to 8: "
              f"{statistics.median(ratios):.3f}, client CPU {cpu_ms:.3f} ms per document",
              flush=True)


if __name__ == "__main__":
    main()
