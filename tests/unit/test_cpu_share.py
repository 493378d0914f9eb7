"""CPU an event from /proc: the figures `make profile` bounds a Predictor's loop with."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipeline.tools.bench import cpu_share
from pipeline.tools.bench.cpu_share import LOOP, Reading, Usage, cpu_seconds, markdown, usage

# /proc/<pid>/task/<tid>/stat of a thread whose name holds a space and a bracket
STAT = "4242 (rdk:broker1 (x)) S 1 2 3 4 5 6 7 8 9 10 {utime} {stime} 0 0 20 0 9 0 100 0 0"


def test_a_stat_line_gives_user_plus_system_seconds() -> None:
    line = STAT.format(utime=3 * cpu_share.TICK, stime=cpu_share.TICK // 2)
    assert cpu_seconds(line) == pytest.approx(3.5)


def test_this_threads_cpu_is_read_as_the_loops() -> None:
    spent = threading.Event()

    def other() -> None:
        sum(range(2_000_000))
        spent.set()

    threading.Thread(target=other, name="other", daemon=True).start()
    spent.wait(30)
    sum(range(2_000_000))
    reading = cpu_share.read_here(None)
    assert reading.threads[LOOP] > 0 and reading.broker is None
    assert reading.process >= sum(reading.threads.values()) - 0.05
    assert len(reading.threads) >= 2  # the rest under their names


def test_usage_is_microseconds_an_event_per_thread_and_broker() -> None:
    before = Reading(10.0, 2.0, {LOOP: 1.0, "rdk:broker1": 0.5}, 100.0)
    # a thread that ended in between is in the process's figure only
    after = Reading(14.0, 4.0, {LOOP: 2.6, "rdk:broker1": 0.7, "new": 0.1}, 100.8)
    used = usage(before, after, 100_000)
    assert used.loop_us == pytest.approx(16.0)
    assert used.others_us == pytest.approx(4.0)
    assert used.threads_us["rdk:broker1"] == pytest.approx(2.0)
    assert used.broker_us == pytest.approx(8.0)
    assert used.loop_bound_eps == pytest.approx(62_500)
    assert used.seconds == pytest.approx(4.0)


def test_no_events_between_readings_is_refused() -> None:
    reading = Reading(0.0, 0.0, {LOOP: 0.0}, None)
    with pytest.raises(ValueError, match="needs events"):
        usage(reading, reading, 0)


def test_the_table_bounds_the_predictor_against_the_ceiling() -> None:
    ceiling = Usage(100_000, 1.1, 8.6, {LOOP: 7.0}, 8.0)  # its client threads ended
    predictor = Usage(100_000, 2.5, 18.8, {LOOP: 16.0, "rdk:broker1": 2.6, "python": 0.2}, None)
    text = markdown(ceiling, 90_000.0, predictor, "confluent-kafka")
    assert "| the loop's thread (all its Python, under the GIL) | 7.0 | 16.0 |" in text
    assert "| the client's other threads | 1.6 | 2.8 (rdk:broker1 2.6, python 0.2) |" in text
    assert "| the broker | 8.0 | not on this machine |" in text
    assert "| events a second, measured | 90,000 | 40,000 |" in text
    assert text.rstrip().endswith("0.69x this ceiling.")  # 62,500 / 90,000


def test_no_broker_is_found_where_none_was_started(tmp_path: Path) -> None:
    assert cpu_share.broker_pid(tmp_path) is None
