"""Which offsets a retrain reads: up to the requested ends, cut to the log end, and only a
bounded window of the most recent events, not the whole history.

A request's end past the log end cannot be honoured by waiting (nothing guarantees those
offsets will ever exist): it is cut to the log end. A retrain used to read every partition from
its beginning, so its cost grew with the topic. Now it reads at most `window` events overall,
ending at the requested offsets; the window is shared among the partitions in proportion to
what each holds below its end, so partitions that fill at the same rate contribute their most
recent events alike.
"""

from __future__ import annotations

from collections.abc import Mapping

Bounds = Mapping[int, tuple[int, int]]  # partition -> (first offset kept, end offset)


def clamp(requested: Mapping[int, int], log: Bounds) -> dict[int, int]:
    """An end past the log end cannot be honoured by waiting: it is cut to the log end."""
    return {p: max(min(end, log[p][1]), log[p][0]) for p, end in requested.items()}


def window_starts(bounds: Bounds, window: int) -> dict[int, int]:
    """Where each partition's read starts so that at most `window` events are read in all."""
    spans = {p: max(end - begin, 0) for p, (begin, end) in bounds.items()}
    total = sum(spans.values())
    if total <= window:
        return {p: begin for p, (begin, _) in bounds.items()}
    shares = {p: window * span // total for p, span in spans.items()}
    # the integer division leaves up to one event per partition unread: hand it out in order
    for p in sorted(spans, key=lambda p: spans[p] - shares[p], reverse=True):
        if sum(shares.values()) >= window:
            break
        if shares[p] < spans[p]:
            shares[p] += 1
    return {p: end - shares[p] for p, (_, end) in bounds.items()}
