"""inspector.window: the adaptive in-flight window."""

from __future__ import annotations

from inspector.window import INITIAL_WINDOW, FlowWindow


def test_slow_start_doubles_per_round_trip_up_to_the_ceiling() -> None:
    """A window's worth of successes doubles it; it never passes the ceiling."""
    window = FlowWindow(ceiling=300)
    assert window.size == INITIAL_WINDOW
    window.on_success(INITIAL_WINDOW)
    assert window.size == 2 * INITIAL_WINDOW
    window.on_success(10_000)
    assert window.size == 300
    assert window.room(250) == 50 and window.room(400) == 0


def test_no_ceiling_keeps_growing() -> None:
    """None means the window alone limits."""
    window = FlowWindow(ceiling=None)
    window.on_success(10_000)
    assert window.size == INITIAL_WINDOW + 10_000


def test_overload_halves_once_per_round_of_signals() -> None:
    """Many 429s of one burst are one signal; a success re-arms the cut."""
    window = FlowWindow(ceiling=1000, initial=100)
    assert window.on_overload(in_flight=100)
    assert window.size == 50 and not window.slow_start
    assert not window.on_overload(in_flight=50)
    assert window.size == 50
    window.on_success()
    assert window.on_overload(in_flight=40)
    assert window.size == 20


def test_after_a_cut_the_window_grows_by_one_per_window_of_successes() -> None:
    """Additive increase: 20 successes at 20 make 21."""
    window = FlowWindow(ceiling=1000, initial=40)
    window.on_overload(in_flight=40)
    window.on_success(19)
    assert window.size == 20
    window.on_success(1)
    assert window.size == 21
    window.on_success(21 + 22)
    assert window.size == 23


def test_the_window_never_drops_below_one() -> None:
    """At the floor, a request still goes out."""
    window = FlowWindow(ceiling=2, initial=1)
    window.on_overload(in_flight=1)
    assert window.size == 1 and window.at_floor and window.room(0) == 1


def test_stepping_onto_where_the_server_pushed_back_waits_256_windows() -> None:
    """Additive steps back to just below the last overload; the step onto it is 256x slower."""
    window = FlowWindow(ceiling=1000, initial=64)
    window.on_overload(in_flight=64)
    assert window.size == 32
    for size in range(32, 63):
        window.on_success(size)
    assert window.size == 63
    window.on_success(63 * 255)
    assert window.size == 63
    window.on_success(63)
    assert window.size == 64
    window.on_success(64)  # past the old limit without a 429: additive again
    assert window.size == 65
