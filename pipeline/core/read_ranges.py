"""Which offsets a retrain reads: up to the requested ends, cut to the log end.

A request's end past the log end cannot be honoured by waiting (nothing guarantees those
offsets will ever exist): it is cut to the log end.
"""

from __future__ import annotations

from collections.abc import Mapping

Bounds = Mapping[int, tuple[int, int]]  # partition -> (first offset kept, end offset)


def clamp(requested: Mapping[int, int], log: Bounds) -> dict[int, int]:
    """An end past the log end cannot be honoured by waiting: it is cut to the log end."""
    return {p: max(min(end, log[p][1]), log[p][0]) for p, end in requested.items()}
