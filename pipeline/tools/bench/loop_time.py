"""Where the loop's thread spends its wall time, and how steady its CPU an event is over a run.

`cpu_share.py` gives one figure for a whole run: CPU an event, which caps the events a second.
It cannot say whether a Predictor that falls short of that cap waited (for the GIL, the broker,
its acknowledgement window), stood runnable while other threads held the cores, or simply did
the same work more slowly in one part of the run than in another, which is how this 2-core VM
varies. The kernel's scheduler statistics tell these apart: /proc/<pid>/task/<tid>/schedstat
holds, in nanoseconds, the time a thread has run on a core and the time it has been runnable
but waiting for one; the rest of its wall time it slept. Read a few times a second beside the
number of outputs, they give the loop's CPU an event per interval, not only on average.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

EVERY_S = 0.25  # one point a quarter of a second: a handful of micro-batches at any speed
MIN_EVENTS = 1_000  # an interval with fewer outputs (the run's first and last) says little


@dataclass(frozen=True)
class Point:
    at: float  # monotonic seconds
    events: int  # outputs written so far
    on_core: float  # seconds the thread has run on a core
    runnable: float  # seconds it has waited, runnable, for a core


@dataclass(frozen=True)
class LoopTime:
    """Shares of the wall time between the first point and the last, and the CPU an event
    (microseconds) over each interval of at least MIN_EVENTS outputs."""

    seconds: float
    on_core: float
    runnable: float
    per_event_us: tuple[float, ...]
    spacing_s: float = EVERY_S  # the mean time between two points, as they were taken

    @property
    def asleep(self) -> float:
        return max(0.0, 1.0 - self.on_core - self.runnable)


def point(pid: int, tid: int, events: int) -> Point | None:
    """None where the kernel keeps no scheduler statistics (or the thread has ended)."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
        on_core_ns, runnable_ns = int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return None
    return Point(time.monotonic(), events, on_core_ns / 1e9, runnable_ns / 1e9)


class Recorder:
    """Keeps a point every EVERY_S, however often it is offered the count of outputs."""

    def __init__(self, pid: int, tid: int | None = None, every_s: float = EVERY_S) -> None:
        self.pid, self.tid, self.every_s = pid, pid if tid is None else tid, every_s
        self.points: list[Point] = []

    def offer(self, events: int) -> None:
        if self.points and time.monotonic() - self.points[-1].at < self.every_s:
            return
        taken = point(self.pid, self.tid, events)
        if taken is not None:
            self.points.append(taken)

    def finish(self, events: int) -> LoopTime | None:
        taken = point(self.pid, self.tid, events)
        return loop_time([*self.points, taken] if taken is not None else self.points)


def loop_time(points: list[Point], min_events: int = MIN_EVENTS) -> LoopTime | None:
    if len(points) < 2 or points[-1].at <= points[0].at:
        return None
    first, last = points[0], points[-1]
    wall = last.at - first.at
    per_event = tuple(
        (b.on_core - a.on_core) * 1e6 / (b.events - a.events)
        for a, b in itertools.pairwise(points)
        if b.events - a.events >= min_events
    )
    return LoopTime(
        wall,
        (last.on_core - first.on_core) / wall,
        (last.runnable - first.runnable) / wall,
        per_event,
        wall / (len(points) - 1),
    )


def markdown(measured: LoopTime | None) -> str:
    if measured is None:
        return "The loop's thread over time: no scheduler statistics here (/proc/.../schedstat).\n"
    lines = [
        f"The loop's thread from the first output to the last ({measured.seconds:.1f} s): on a "
        f"core {measured.on_core:.0%} of the time, runnable and waiting for a core "
        f"{measured.runnable:.0%}, asleep (the GIL, the broker, the acknowledgement window) "
        f"{measured.asleep:.0%}."
    ]
    spread = sorted(measured.per_event_us)
    if spread:
        lines.append(
            f"Its CPU an event over each {measured.spacing_s:.2g} s ({len(spread)} intervals): "
            f"{spread[0]:.1f} / {statistics.median(spread):.1f} / {spread[-1]:.1f} us "
            "(least / median / most)."
        )
    return " ".join(lines) + "\n"
