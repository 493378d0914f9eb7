"""What a retrain reads: ends past the log end are cut to it."""

from __future__ import annotations

from pipeline.core.read_ranges import clamp


def test_ends_past_the_log_are_clamped_to_it() -> None:
    assert clamp({0: 10**12, 1: 3, 2: -5}, {0: (0, 500), 1: (0, 9), 2: (4, 9)}) == {
        0: 500,
        1: 3,
        2: 4,
    }
