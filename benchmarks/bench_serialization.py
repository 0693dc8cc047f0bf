"""How long from_wire takes per widget reply, next to json.loads of the same reply.

A large inspection structures about 20,000 widget replies, so this is the serialization cost that
matters. json.loads of the same text, timed in the same process, is the reference: the ratio is
steadier across machines than the absolute figure.

Run: ``python benchmarks/bench_serialization.py [--count N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable, Dict, List

from inspector.models import Widget
from inspector.sample_catalog import load_catalog
from inspector.serialization import from_wire

# docs/protocol.md's example widget, as the sample catalog holds it (two data sources), plus one
# field this client does not know.
WIDGET_REPLY: Dict[str, Any] = {
    **(load_catalog().widget("doc-1/c1/w1") or {}),
    "refreshSeconds": 300,
}


def _best_per_item(run: Callable[[], None], count: int, repeat: int) -> float:
    """The fastest of ``repeat`` runs, in microseconds per item (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="widgets per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the fastest is reported")
    args = parser.parse_args()

    # Distinct ids, and distinct dicts as the connection would hand over, one per reply.
    texts: List[str] = [
        json.dumps({**WIDGET_REPLY, "id": f"doc-1/c{i // 20}/w{i}"}) for i in range(args.count)
    ]
    replies: List[Dict[str, Any]] = [json.loads(text) for text in texts]

    def structure_all() -> None:
        for reply in replies:
            from_wire(reply, Widget, method="GetWidgetProperties", container_id="doc-1/c1")

    def decode_all() -> None:
        for text in texts:
            json.loads(text)

    structure_all()  # warm up: first-use costs are not what is measured
    from_wire_us = _best_per_item(structure_all, args.count, args.repeat)
    json_loads_us = _best_per_item(decode_all, args.count, args.repeat)

    print(f"widgets:     {args.count} x {len(texts[0])} bytes, best of {args.repeat} runs")
    print(f"from_wire:   {from_wire_us:6.2f} us/widget")
    print(f"json.loads:  {json_loads_us:6.2f} us/widget")
    print(f"ratio:       {from_wire_us / json_loads_us:6.2f} x json.loads")


if __name__ == "__main__":
    main()
