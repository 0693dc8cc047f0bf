"""Helpers the test modules share: waiting with a deadline, threads, expected layouts."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, List, Sequence, Tuple

import pytest

from inspector import Connection, Widget

# Every time bound in the tests is written in units of MS (websockets' tests/utils.py does the
# same), so one variable stretches them all on a slow or loaded machine:
# INSPECTOR_TEST_TIME_SCALE=3 makes every bound, and every test's timeout, three times longer.
TIME_SCALE = float(os.environ.get("INSPECTOR_TEST_TIME_SCALE", "1"))
MS = 0.001 * TIME_SCALE



def wait_until(predicate: Callable[[], bool], timeout: float = 10_000 * MS) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.01)


def run_threads(worker: Callable[[int], None], count: int) -> None:
    """Run ``worker(n)`` for n in range(count) on that many threads at once; join them all."""
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def expected_layout(url: str, document_id: str) -> List[Tuple[str, str]]:
    """(widget id, first container id) in document order, asked one request at a time.

    The oracle for the inspector's results: plain ``call()``s, no pipelining, no retries.
    """
    with Connection(url) as conn:
        document = conn.call("GetDocument", {"id": document_id})
        layout: List[Tuple[str, str]] = []
        seen = set()
        for container_id in document.get("widgetContainerIds") or []:
            container = conn.call("GetWidgetContainer", {"id": container_id})
            for widget_id in container.get("widgetIds") or [container["widgetId"]]:
                if widget_id not in seen:
                    seen.add(widget_id)
                    layout.append((widget_id, container_id))
        return layout


def layout_of(widgets: Sequence[Widget]) -> List[Tuple[str, str]]:
    """(id, container_id) of each widget."""
    return [(w.id, w.container_id or "") for w in widgets]
