"""Tests for inspector.sample_catalog's pure cores: the listing, its pages, and changes."""

from __future__ import annotations

import random
import tracemalloc
from typing import List, Optional, Set

import pytest

from inspector import InvalidArgument
from inspector.sample_catalog import (
    MAX_LISTED_GENERATED,
    MUTATION_KINDS,
    DocumentListing,
    LiveCatalog,
    Mutation,
    listed_generated_id,
    load_catalog,
)

NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z, later than every updatedAt the catalog ships


def all_pages(listing: DocumentListing, limit: int) -> List[List[str]]:
    """Every page of the listing, following nextCursor from the start."""
    pages: List[List[str]] = []
    cursor: Optional[str] = None
    while True:
        ids, cursor = listing.page(cursor, limit)
        pages.append(ids)
        if cursor is None:
            return pages


def test_listing_order_is_catalog_then_generated_then_added() -> None:
    """Catalog ids in their order, then generated ones by number, then added ones."""
    listing = DocumentListing(["doc-1", "deck-1"], 3)
    listing.add("added-1")
    assert listing.ids() == ["doc-1", "deck-1", *map(listed_generated_id, (1, 2, 3)), "added-1"]
    assert listed_generated_id(17) == "gen-2x2-n0000017"
    generated = [listed_generated_id(n) for n in (9, 10, 100, 1000)]
    assert sorted(generated) == generated


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 100])
def test_pages_cover_the_listing_once_in_order(limit: int) -> None:
    """Following nextCursor gives every id once, in order, at most limit per page."""
    listing = DocumentListing([f"doc-{n}" for n in range(1, 6)], 2)
    pages = all_pages(listing, limit)
    assert [i for page in pages for i in page] == listing.ids()
    assert all(1 <= len(page) <= limit for page in pages)


def test_a_last_page_exactly_full_has_no_next_cursor() -> None:
    """When the ids run out exactly at the limit, nextCursor is None (no empty page after)."""
    listing = DocumentListing(["a", "b", "c", "d"], 0)
    assert listing.page(None, 2) == (["a", "b"], "b")
    assert listing.page("b", 2) == (["c", "d"], None)
    listing.remove("d")
    assert listing.page(None, 3) == (["a", "b", "c"], None)


def test_a_cursor_without_limit_gives_the_rest() -> None:
    """limit None gives every id after the cursor and no next cursor."""
    listing = DocumentListing(["a", "b", "c"], 1)
    assert listing.page("b", None) == (["c", listed_generated_id(1)], None)


@pytest.mark.parametrize("cursor", ["nope", "gen-2x2-n0000004", "gen-2x2-n4", "gen-2x2-n0000000"])
def test_unknown_cursor_is_invalid(cursor: str) -> None:
    """A cursor that is no id the listing named raises InvalidArgument naming the cursor."""
    listing = DocumentListing(["a"], 3)
    with pytest.raises(InvalidArgument, match="cursor"):
        listing.page(cursor, 2)


def test_cursors_stay_valid_while_documents_come_and_go() -> None:
    """Removals and additions between pages skip and repeat no document present throughout."""
    rng = random.Random(5)
    listing = DocumentListing([f"doc-{n}" for n in range(1, 25)], 60)
    removed: Set[str] = set()
    seen: List[str] = []
    cursor: Optional[str] = None
    while True:
        ids, cursor = listing.page(cursor, 7)
        seen.extend(ids)
        for _ in range(3):
            victim = listing.random_id(rng)
            assert victim is not None
            listing.remove(victim)
            removed.add(victim)
        listing.add(f"added-{len(seen)}")
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    throughout = [f"doc-{n}" for n in range(1, 25)] + [listed_generated_id(n) for n in range(1, 61)]
    assert set(throughout) - removed <= set(seen)
    assert cursor is None and listing.page(seen[-1], None) == ([f"added-{len(seen)}"], None)


def test_removed_cursor_still_works_and_counts_drop() -> None:
    """A cursor naming a removed document still gives the page after it."""
    listing = DocumentListing(["a", "b", "c"], 0)
    listing.remove("b")
    assert "b" not in listing and len(listing) == 2
    assert listing.page("b", 5) == (["c"], None)
    with pytest.raises(InvalidArgument):
        listing.add("b")


def test_a_million_generated_documents_cost_no_memory() -> None:
    """Listing a million generated documents allocates next to nothing until they are read."""
    catalog = load_catalog()
    tracemalloc.start()
    try:
        live = LiveCatalog(catalog, generated=MAX_LISTED_GENERATED, seed=1)
        assert live.listing.page("gen-2x2-n0999999", 10) == (["gen-2x2-n1000000"], None)
        allocated = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert allocated < 100_000
    assert len(live.listing) == len(catalog.document_ids()) + MAX_LISTED_GENERATED


@pytest.mark.parametrize("generated", [-1, MAX_LISTED_GENERATED + 1, 2.0, True])
def test_generated_out_of_range_is_invalid(generated: object) -> None:
    """generated must be an integer from 0 to MAX_LISTED_GENERATED."""
    with pytest.raises(InvalidArgument, match="generated"):
        LiveCatalog(load_catalog(), generated=generated)  # type: ignore[arg-type]


def test_listed_generated_documents_are_small_dashboards_with_updated_at() -> None:
    """Each listed generated document has 2 containers of 2 widgets and a fixed updatedAt."""
    live = LiveCatalog(load_catalog(), generated=3)
    document = live.document(listed_generated_id(3))
    assert document is not None
    assert document["widgetContainerIds"] == [f"{document['id']}/c1", f"{document['id']}/c2"]
    container = live.container(f"{document['id']}/c2")
    assert container is not None and len(container["widgetIds"]) == 2
    assert document["updatedAt"].startswith("2024-") and document["updatedAt"].endswith("Z")
    again = LiveCatalog(load_catalog(), generated=3).document(listed_generated_id(3))
    assert again == document


def test_sql_change_bumps_updated_at_and_leaves_the_shared_catalog_alone() -> None:
    """A new SQL statement on one widget; updatedAt moves on; another LiveCatalog sees none."""
    catalog = load_catalog()
    live = LiveCatalog(catalog, seed=1)
    before = live.document("doc-2")
    assert before is not None
    mutation = live.mutate(NOW, "doc-2", "sql")
    assert (mutation.kind, mutation.document_id) == ("sql", "doc-2")
    assert mutation.object_id is not None and mutation.object_id.startswith("doc-2/")
    changed = live.widget(mutation.object_id)
    original = catalog.widget(mutation.object_id)
    assert changed is not None and original is not None
    assert [s.get("sql") for s in changed["dataSources"]] != [
        s.get("sql") for s in original["dataSources"]
    ]
    document = live.document("doc-2")
    assert document is not None and document["updatedAt"] == mutation.updated_at
    assert mutation.updated_at is not None and mutation.updated_at > before["updatedAt"]
    assert {k: v for k, v in document.items() if k != "updatedAt"} == {
        k: v for k, v in before.items() if k != "updatedAt"
    }
    assert LiveCatalog(catalog).document("doc-2") == before


def test_every_change_gives_a_later_updated_at_even_at_the_same_time() -> None:
    """Changes at the same instant still give strictly increasing updatedAt values."""
    live = LiveCatalog(load_catalog(), seed=2)
    stamps = [live.mutate(NOW, "doc-3", "sql").updated_at for _ in range(5)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    assert stamps[0] == "2026-11-18T11:06:40.000Z"
    # A clock that went back does not make updatedAt go back.
    assert live.mutate(NOW - 3600, "doc-3", "sql").updated_at == "2026-11-18T11:06:40.005Z"


def test_a_document_without_updated_at_gains_one_when_changed() -> None:
    """doc-1 ships without updatedAt (as PROTOCOL.md shows it) and has one once changed."""
    live = LiveCatalog(load_catalog(), seed=3)
    assert "updatedAt" not in (live.document("doc-1") or {})
    mutation = live.mutate(NOW, "doc-1", "add_widget")
    assert (live.document("doc-1") or {})["updatedAt"] == mutation.updated_at


def test_add_widget_lists_a_new_widget_with_sql() -> None:
    """add_widget appends a new id to one container; the widget reads a database."""
    live = LiveCatalog(load_catalog(), seed=4)
    mutation = live.mutate(NOW, "doc-1", "add_widget")
    widget_id = mutation.object_id
    assert widget_id is not None
    container = live.container(widget_id.rsplit("/", 1)[0])
    assert container is not None and container["widgetIds"][-1] == widget_id
    widget = live.widget(widget_id)
    assert widget is not None and widget["dataSources"][0]["kind"] == "database"
    assert "SELECT" in widget["dataSources"][0]["sql"]


def test_remove_widget_drops_it_unless_another_container_lists_it() -> None:
    """A removed widget is gone (404) unless another container of its document still lists it."""
    catalog = load_catalog()
    live = LiveCatalog(catalog, seed=5)
    # The catalog's widget shared by two containers of one document.
    shared = [
        (document_id, widget_id)
        for document_id in catalog.document_ids()
        for widget_id, count in _widget_counts(live, document_id).items()
        if count == 2
    ]
    assert shared
    document_id, widget_id = shared[0]
    while _widget_counts(live, document_id).get(widget_id, 0) == 2:
        live.mutate(NOW, document_id, "remove_widget")
    assert _widget_counts(live, document_id).get(widget_id) == 1
    assert live.widget(widget_id) is not None
    while _widget_counts(live, document_id).get(widget_id, 0):
        live.mutate(NOW, document_id, "remove_widget")
    assert live.widget(widget_id) is None


def _widget_counts(live: LiveCatalog, document_id: str) -> dict:
    """How many containers of the document list each widget id."""
    counts: dict = {}
    document = live.document(document_id) or {}
    for container_id in document.get("widgetContainerIds") or []:
        container = live.container(container_id) or {}
        for widget_id in container.get("widgetIds") or [container.get("widgetId")]:
            counts[widget_id] = counts.get(widget_id, 0) + 1
    return counts


def test_remove_document_takes_its_containers_and_widgets_along() -> None:
    """A removed document, its containers and widgets are all unknown, and no longer listed."""
    live = LiveCatalog(load_catalog(), seed=6)
    mutation = live.mutate(NOW, "doc-1", "remove_document")
    assert mutation == Mutation("remove_document", "doc-1", None)
    assert live.document("doc-1") is None
    assert live.container("doc-1/c1") is None and live.widget("doc-1/c1/w1") is None
    assert "doc-1" not in live.listing.ids()
    assert mutation.notification() == {"method": "DocumentRemoved", "params": {"id": "doc-1"}}


def test_add_document_lists_a_whole_new_document_last() -> None:
    """add_document makes added-<n>, 2 containers x 2 widgets, listed after every other."""
    live = LiveCatalog(load_catalog(), seed=7)
    mutation = live.mutate(NOW, None, "add_document")
    document_id = mutation.document_id
    assert document_id.startswith("added-") and live.listing.ids()[-1] == document_id
    document = live.document(document_id)
    assert document is not None and document["updatedAt"] == mutation.updated_at
    for container_id in document["widgetContainerIds"]:
        container = live.container(container_id)
        assert container is not None and len(container["widgetIds"]) == 2
        assert all(live.widget(w) is not None for w in container["widgetIds"])
    assert mutation.notification() == {
        "method": "DocumentChanged",
        "params": {"id": document_id, "updatedAt": mutation.updated_at},
    }


@pytest.mark.parametrize(
    ("document_id", "kind", "named"),
    [
        ("doc-1", "rename", "kind"),
        ("nope", "sql", "document_id"),
        ("ds-1", "sql", "kind"),
        ("folder-1", "add_widget", "kind"),
        ("doc-1", "add_document", "document_id"),
    ],
)
def test_bad_mutations_are_invalid_and_change_nothing(
    document_id: str, kind: str, named: str
) -> None:
    """An unknown kind or document, or a kind that does not fit, names what was wrong."""
    live = LiveCatalog(load_catalog(), seed=8)
    before = [live.document(d) for d in live.listing.ids()]
    with pytest.raises(InvalidArgument, match=named):
        live.mutate(NOW, document_id, kind)
    assert [live.document(d) for d in live.listing.ids()] == before


def test_random_changes_are_repeatable_with_a_seed_and_cover_every_kind() -> None:
    """The same seed gives the same changes; enough of them use every kind."""

    def run(seed: int) -> List[Mutation]:
        live = LiveCatalog(load_catalog(), generated=50, seed=seed)
        return [live.mutate(NOW + n) for n in range(200)]

    first = run(11)
    assert first == run(11)
    assert first != run(12)
    assert {m.kind for m in first} == set(MUTATION_KINDS)


def test_random_changes_only_touch_listed_documents() -> None:
    """Random changes pick documents that are listed (not removed, not unlisted gen- ids)."""
    live = LiveCatalog(load_catalog(), generated=5, seed=13)
    for n in range(300):
        listed = set(live.listing.ids())
        mutation = live.mutate(NOW + n)
        if mutation.kind != "add_document":
            assert mutation.document_id in listed
