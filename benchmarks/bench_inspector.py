"""DocumentInspector.get_widgets() against a stage-pipelining reference client.

    python benchmarks/bench_inspector.py [--runs 11] [--case NAME ...]

The reference, written here with plain websocket-client, pipelines each stage: it sends every
request of a stage (the document, then all containers, then all widgets), then reads every
reply, parsing each with json.loads but building no objects. It has no limit on requests in
flight, so DocumentInspector runs with ``max_in_flight=None`` too (the default of 256 is
reported beside it where it matters). Runs alternate in this process against the sample
server in another process, and each line prints the median of the per-run ratios.

Also printed: the scaling of time per widget from 2,000 to 20,000 widgets, the speedup over a
naive client that sends one request at a time, and peak RSS of a process that inspects a
20,000-widget document.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List

import websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import alternate, describe, server_process  # noqa: E402

from inspector import DocumentInspector  # noqa: E402


class Reference:
    """Plain websocket-client, each stage sent whole and then read whole."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, skip_utf8_validation=True)
        self.next_id = 0

    def _stage(self, method: str, ids: List[str]) -> List[Dict[str, Any]]:
        first = self.next_id + 1
        for object_id in ids:
            self.next_id += 1
            self.ws.send(json.dumps({"id": self.next_id, "method": method,
                                     "params": {"id": object_id}}))
        replies: Dict[int, Dict[str, Any]] = {}
        for _ in ids:
            message = json.loads(self.ws.recv())
            replies[message["id"]] = message["result"]
        return [replies[first + i] for i in range(len(ids))]

    def get_widgets(self, document_id: str) -> List[Dict[str, Any]]:
        document = self._stage("GetDocument", [document_id])[0]
        containers = self._stage("GetWidgetContainer", document.get("widgetContainerIds") or [])
        widget_ids = list(dict.fromkeys(
            w for c in containers for w in (c.get("widgetIds") or [c["widgetId"]])
        ))
        return self._stage("GetWidgetProperties", widget_ids)

    def close(self) -> None:
        self.ws.close()


class Naive:
    """One request at a time: what a client that never pipelines costs."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, skip_utf8_validation=True)
        self.next_id = 0

    def _call(self, method: str, object_id: str) -> Dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method,
                                 "params": {"id": object_id}}))
        result: Dict[str, Any] = json.loads(self.ws.recv())["result"]
        return result

    def get_widgets(self, document_id: str) -> List[Dict[str, Any]]:
        document = self._call("GetDocument", document_id)
        widgets = []
        for container_id in document.get("widgetContainerIds") or []:
            container = self._call("GetWidgetContainer", container_id)
            for widget_id in container.get("widgetIds") or [container["widgetId"]]:
                widgets.append(self._call("GetWidgetProperties", widget_id))
        return widgets

    def close(self) -> None:
        self.ws.close()


def compare(url: str, name: str, documents: List[str], runs: int, **settings: Any) -> float:
    """Print and return the median ratio of DocumentInspector (default settings) to the
    reference."""
    inspector = DocumentInspector(url, **settings)
    reference = Reference(url)
    expected = sum(len(reference.get_widgets(d)) for d in documents)
    assert sum(len(inspector.get_widgets(d)) for d in documents) == expected

    def ours() -> None:
        for document_id in documents:
            inspector.get_widgets(document_id)

    def theirs() -> None:
        for document_id in documents:
            reference.get_widgets(document_id)

    ratio, mine, other = alternate(ours, theirs, runs)
    print(describe(name, ratio, mine, other), flush=True)
    inspector.close()
    reference.close()
    return ratio


def per_widget_scaling(url: str, runs: int) -> None:
    """Time per widget at 20,000 widgets over time per widget at 2,000."""
    inspector = DocumentInspector(url, max_in_flight=None, timeout=None)
    small, large = "gen-40x50", "gen-400x50"

    def timed(document_id: str) -> float:
        started = time.perf_counter()
        count = len(inspector.get_widgets(document_id))
        return (time.perf_counter() - started) / count

    timed(small)
    timed(large)
    ratios = []
    for _ in range(runs):
        ratios.append(timed(large) / timed(small))
    print(f"time per widget, 20,000 over 2,000 widgets: median ratio "
          f"{statistics.median(ratios):.3f} ({runs} pairs)", flush=True)
    inspector.close()


def speedup_over_naive(url: str, name: str, document_id: str, runs: int) -> None:
    """How many times faster than one request at a time."""
    inspector = DocumentInspector(url, max_in_flight=None, timeout=None)
    naive = Naive(url)
    ratio, mine, other = alternate(lambda: inspector.get_widgets(document_id),
                                   lambda: naive.get_widgets(document_id), runs, warmup=1)
    print(f"{name}: speedup over a naive one-at-a-time client {1 / ratio:.1f}x "
          f"(ours {statistics.median(mine) * 1000:.1f} ms, "
          f"naive {statistics.median(other) * 1000:.1f} ms)", flush=True)
    inspector.close()
    naive.close()


def peak_rss(url: str) -> None:
    """Peak RSS of a fresh process that imports inspector and inspects 20,000 widgets."""
    # VmHWM, not ru_maxrss: a child started by fork and exec inherits the parent's
    # ru_maxrss, so this benchmark's own size would be reported instead.
    script = (
        "import sys\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1])\n"
        "from inspector import DocumentInspector\n"
        "base = hwm()\n"
        "with DocumentInspector(sys.argv[1], max_in_flight=None, timeout=None) as di:\n"
        "    widgets = di.get_widgets('gen-400x50')\n"
        "print(len(widgets), base, hwm())\n"
    )
    out = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                         check=True).stdout.split()
    count, base, peak = (int(x) for x in out)
    print(f"peak RSS inspecting {count} widgets: {peak / 1024:.1f} MiB "
          f"(after import {base / 1024:.1f} MiB)", flush=True)


CASES: Dict[str, Callable[[argparse.Namespace], None]] = {}


def case(function: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    CASES[function.__name__] = function
    return function


@case
def large(args: argparse.Namespace) -> None:
    with server_process() as url:
        compare(url, "100 containers x 50 widgets, no latency (goal <= 1.2)", ["gen-100x50"],
                args.runs)
        compare(url, "  the same with the default max_in_flight=256", ["gen-100x50"],
                args.runs, max_in_flight=256)
        compare(url, "2,000 containers x 1 widget (widgetId), no latency (goal <= 1.3)",
                ["gen-2000x1-legacy"], args.runs)
        per_widget_scaling(url, max(3, args.runs // 2))
        speedup_over_naive(url, "100 x 50, no latency", "gen-100x50", max(3, args.runs // 3))
        peak_rss(url)


@case
def latency(args: argparse.Namespace) -> None:
    with server_process("--latency", "0.02", "--jitter", "0.01") as url:
        compare(url, "100 x 20, 20 ms + up to 10 ms jitter (goal <= 1.05)", ["gen-100x20"],
                args.runs)
        compare(url, "  the same with the default max_in_flight=256", ["gen-100x20"],
                args.runs, max_in_flight=256)
        speedup_over_naive(url, "100 x 20 at 20 ms", "gen-10x20", 3)


@case
def many(args: argparse.Namespace) -> None:
    with server_process("--latency", "0.002") as url:
        documents = [f"gen-5x2-n{i}" for i in range(200)]
        compare(url, "200 documents of 5 x 2 one after another, 2 ms (goal <= 1.2)", documents,
                max(5, args.runs // 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    args = parser.parse_args()
    for name in args.case or list(CASES):
        CASES[name](args)


if __name__ == "__main__":
    main()
