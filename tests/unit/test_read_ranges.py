"""The retrain window: bounded, proportional, ending where it was asked to end."""

from __future__ import annotations

from pipeline.core.read_ranges import clamp, window_starts


def test_a_short_history_is_read_whole() -> None:
    assert window_starts({0: (0, 100), 1: (5, 50)}, 1000) == {0: 0, 1: 5}


def test_a_long_history_is_cut_to_the_window_in_proportion() -> None:
    bounds = {0: (0, 600_000), 1: (100_000, 400_000), 2: (0, 0)}
    starts = window_starts(bounds, 50_000)
    read = {p: bounds[p][1] - starts[p] for p in bounds}
    assert sum(read.values()) == 50_000
    assert abs(read[0] - 2 * read[1]) <= 2 and read[2] == 0
    assert all(bounds[p][0] <= starts[p] <= bounds[p][1] for p in bounds)


def test_uneven_shares_still_add_up_to_the_window() -> None:
    bounds = {p: (0, 1000 + p) for p in range(7)}
    starts = window_starts(bounds, 100)
    assert sum(bounds[p][1] - starts[p] for p in bounds) == 100


def test_ends_past_the_log_are_clamped_to_it() -> None:
    assert clamp({0: 10**12, 1: 3, 2: -5}, {0: (0, 500), 1: (0, 9), 2: (4, 9)}) == {
        0: 500,
        1: 3,
        2: 4,
    }
