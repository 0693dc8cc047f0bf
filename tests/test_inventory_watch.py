"""Watching: the plan with plain values, and a watcher kept current by a real server."""

from __future__ import annotations

import threading
from typing import Iterator, List

import pytest
from support import MS, wait_until

from inspector import DocumentInspector, InvalidArgument
from inspector.inventory import Inventory
from inspector.inventory.watch import Action, Watcher, WatchPlan
from inspector.server import SampleServer, run_sample_server


def test_first_action_is_a_relist_then_on_the_timer():
    """A relist at once, then every `relist` seconds; nothing to do in between."""
    plan = WatchPlan(60.0, now=100.0)
    assert plan.next_action(100.0) == Action("relist")
    assert plan.next_action(100.0) is None
    assert plan.wait_time(130.0) == 30.0
    assert plan.next_action(160.0) == Action("relist")


def test_changed_documents_are_inspected_once_each():
    """DocumentChanged ids are batched, each once, in the order notified."""
    plan = WatchPlan(60.0, now=0.0)
    plan.next_action(0.0)
    for document_id in ("doc-1", "doc-2", "doc-1"):
        assert plan.notified("DocumentChanged", {"id": document_id, "updatedAt": "x"})
    assert plan.next_action(1.0) == Action("inspect", ("doc-1", "doc-2"))
    assert plan.next_action(1.0) is None


def test_removed_documents_are_checked():
    """DocumentRemoved ids are checked; a later DocumentChanged for one wins."""
    plan = WatchPlan(60.0, now=0.0)
    plan.next_action(0.0)
    plan.notified("DocumentRemoved", {"id": "doc-3"})
    plan.notified("DocumentRemoved", {"id": "doc-4"})
    plan.notified("DocumentChanged", {"id": "doc-4"})
    assert plan.next_action(1.0) == Action("inspect", ("doc-4",))
    assert plan.next_action(1.0) == Action("check_removed", ("doc-3",))


def test_a_reconnection_makes_the_relist_due_now():
    """After a reconnection a relist comes first: what was notified meanwhile is lost."""
    plan = WatchPlan(600.0, now=0.0)
    plan.next_action(0.0)
    plan.notified("DocumentChanged", {"id": "doc-1"})
    plan.reconnected(5.0)
    assert plan.next_action(5.0) == Action("relist")
    assert plan.next_action(5.0) is None  # the relist covered doc-1


def test_bad_notifications_are_ignored():
    """Notifications of other methods, or without an id, ask for nothing."""
    plan = WatchPlan(60.0, now=0.0)
    plan.next_action(0.0)
    for method, params in (("Other", {"id": "x"}), ("DocumentChanged", {}),
                           ("DocumentChanged", ["doc-1"]), ("DocumentChanged", {"id": 5})):
        assert not plan.notified(method, params)
    assert plan.next_action(1.0) is None


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "5", True])
def test_relist_must_be_positive(bad):
    """A relist period that is not a positive number is an InvalidArgument naming it."""
    with pytest.raises(InvalidArgument, match="relist"):
        WatchPlan(bad, now=0.0)


@pytest.fixture
def server() -> Iterator[SampleServer]:
    """A sample server with 20 generated documents."""
    with run_sample_server(generated=20, seed=5) as running:
        yield running


class _Running:
    """A watcher on its own thread; its runs are collected."""

    def __init__(self, inventory: Inventory, inspector: DocumentInspector, relist: float):
        self.runs: List[int] = []
        self.watcher = Watcher(inventory.store, inspector, relist=relist,
                               on_run=self.runs.append, probe=200 * MS)
        self.thread = threading.Thread(target=self.watcher.run, name="watcher")

    def __enter__(self) -> _Running:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.watcher.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_watch_stores_what_the_server_says_changed(inventory_db, server):
    """A DocumentChanged notification gets the document re-inspected and a new version stored."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        with _Running(inventory, inspector, relist=3600.0) as running:
            wait_until(lambda: len(running.runs) >= 1)
            assert inventory.run(running.runs[0]).new == len(server.document_ids())
            mutation = server.mutate("doc-6", kind="sql")
            wait_until(lambda: (inventory.sources_of("doc-6") or None) is not None
                       and inventory.sources_of("doc-6").version == 2)
            removed = server.mutate("doc-7", kind="remove_document")
            wait_until(lambda: inventory.sources_of(removed.document_id) is None)
        watched = [inventory.run(r) for r in running.runs]
        assert all(run.trigger == "watch" for run in watched)
        assert mutation.object_id in {s.widget_id for s in inventory.sources_of("doc-6").sources}


def test_watch_relists_after_a_reconnection(inventory_db, server):
    """Changes made while the connection was down are caught by the relist after reopening."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        with _Running(inventory, inspector, relist=3600.0) as running:
            wait_until(lambda: len(running.runs) >= 1)
            # A change whose notification is lost, then the connection: the gap to close.
            silent = server.mutate("doc-2", kind="sql", notify=False)
            server.drop_connections()
            # The watcher's probe reopens the connection; a relist follows it.
            wait_until(lambda: inventory.sources_of("doc-2").version == 2,
                       timeout=20_000 * MS)
        assert silent.document_id == "doc-2"


def test_watch_relists_on_its_timer(inventory_db, server):
    """Deletions nobody notified are caught by the periodic relist."""
    with Inventory(inventory_db) as inventory, DocumentInspector(server.url) as inspector:
        with _Running(inventory, inspector, relist=500 * MS) as running:
            wait_until(lambda: len(running.runs) >= 1)
            gone = server.mutate(kind="remove_document", notify=False).document_id
            # Marked deleted when the relist starts; counted in its record when it ends.
            wait_until(lambda: any(inventory.run(r).deleted == 1 for r in list(running.runs)))
            assert inventory.sources_of(gone) is None
