"""The loop's wall time from the scheduler's statistics: on a core, runnable, asleep."""

from __future__ import annotations

import os
import threading
import time

import pytest

from pipeline.tools.bench import loop_time
from pipeline.tools.bench.loop_time import LoopTime, Point, Recorder, markdown


def test_shares_of_the_wall_time_and_cpu_an_event_per_interval() -> None:
    points = [
        Point(at=10.0, events=0, on_core=5.0, runnable=1.0),
        Point(at=10.5, events=50_000, on_core=5.45, runnable=1.02),  # 9 us an event
        Point(at=11.0, events=75_000, on_core=5.9, runnable=1.05),  # 18 us: a slow half second
        Point(at=11.1, events=75_400, on_core=5.95, runnable=1.05),  # too few to say
    ]
    measured = loop_time.loop_time(points)
    assert measured is not None
    assert measured.seconds == pytest.approx(1.1)
    assert measured.on_core == pytest.approx(0.95 / 1.1)
    assert measured.runnable == pytest.approx(0.05 / 1.1)
    assert measured.asleep == pytest.approx(0.1 / 1.1)
    assert measured.per_event_us == pytest.approx((9.0, 18.0))
    assert measured.spacing_s == pytest.approx(1.1 / 3)
    assert "over each 0.37 s (2 intervals)" in markdown(measured)


def test_one_point_says_nothing() -> None:
    assert loop_time.loop_time([Point(1.0, 0, 0.0, 0.0)]) is None
    assert "no scheduler statistics" in markdown(None)


def test_the_report_names_the_shares_and_the_spread() -> None:
    text = markdown(LoopTime(7.5, 0.955, 0.03, (9.41, 16.02, 11.0)))
    assert "(7.5 s): on a core 96% of the time" in text
    assert "waiting for a core 3%" in text
    assert "asleep (the GIL, the broker, the acknowledgement window) 2%" in text
    assert "(3 intervals): 9.4 / 11.0 / 16.0 us (least / median / most)" in text


def test_a_busy_thread_reads_on_a_core_and_a_sleeping_one_asleep() -> None:
    """Against this machine's own /proc: a thread that computes, then one that sleeps."""
    if loop_time.point(threading.get_native_id(), threading.get_native_id(), 0) is None:
        pytest.skip("this kernel keeps no scheduler statistics")

    def measured(work: object) -> LoopTime | None:
        result: list[LoopTime | None] = []

        def run() -> None:
            tid = threading.get_native_id()
            recorder = Recorder(os.getpid(), tid, every_s=0.0)
            recorder.offer(0)
            deadline = time.monotonic() + 0.4
            while time.monotonic() < deadline:
                work()  # type: ignore[operator]
            result.append(recorder.finish(10_000))

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
        return result[0]

    busy = measured(lambda: sum(range(10_000)))
    idle = measured(lambda: time.sleep(0.05))
    assert busy is not None and idle is not None
    assert busy.on_core + busy.runnable > 0.8 and busy.on_core > busy.runnable
    assert idle.asleep > 0.8 and idle.on_core < 0.2
    assert busy.per_event_us and busy.per_event_us[0] > idle.per_event_us[0]


def test_the_recorder_keeps_a_point_a_quarter_second_however_often_it_is_offered() -> None:
    if loop_time.point(os.getpid(), threading.get_native_id(), 0) is None:
        pytest.skip("this kernel keeps no scheduler statistics")
    recorder = Recorder(os.getpid(), threading.get_native_id(), every_s=0.2)
    deadline = time.monotonic() + 0.5
    offered = 0
    while time.monotonic() < deadline:
        offered += 1
        recorder.offer(offered)
        time.sleep(0.01)
    assert offered > 20 and 2 <= len(recorder.points) <= 4
