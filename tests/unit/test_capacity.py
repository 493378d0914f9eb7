"""The capacity model: its arithmetic, its bounds, and `python -m pipeline.ops capacity`."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from pipeline.ops import capacity
from pipeline.ops.__main__ import main


def test_one_predictor_is_planned_below_what_it_measured() -> None:
    assert capacity.planned_eps() == pytest.approx(capacity.PREDICTOR_EPS * capacity.UTILISATION)
    assert capacity.planned_eps() < capacity.PREDICTOR_EPS <= capacity.CEILING_EPS


@pytest.mark.parametrize("rate", [1, 1_000, 10_000, 50_000, 100_000, 1_000_000])
def test_a_plan_has_enough_predictors_and_partitions_for_its_rate(rate) -> None:
    plan = capacity.plan(rate)
    assert plan.replicas >= capacity.MIN_REPLICAS
    assert plan.replicas * capacity.planned_eps() >= rate  # the rate fits with headroom
    assert plan.partitions >= max(capacity.MIN_PARTITIONS, 2 * plan.replicas)
    # one partition is read by one Predictor: none may need more than one can do
    assert rate / plan.partitions <= capacity.PREDICTOR_EPS
    assert plan.predictor_memory_mb == plan.replicas * capacity.PREDICTOR_PEAK_RSS_MB


def test_more_events_never_need_fewer_resources() -> None:
    plans = [capacity.plan(rate) for rate in (500, 5_000, 20_000, 45_000, 90_000, 200_000)]
    for smaller, larger in itertools.pairwise(plans):
        assert larger.replicas >= smaller.replicas
        assert larger.partitions >= smaller.partitions
        assert larger.broker_cores > smaller.broker_cores
        assert larger.retrain_s >= smaller.retrain_s  # equal once the window is full


def test_the_lag_threshold_is_a_second_of_planned_work_well_above_a_batch() -> None:
    threshold = capacity.lag_threshold()
    assert threshold % 1000 == 0
    assert capacity.planned_eps() - 1000 < threshold <= capacity.planned_eps()
    assert threshold > 10 * 500  # far above one --batch-size of steady lag per partition


def test_the_trainer_window_grows_with_rate_and_retention_up_to_the_retrain_window() -> None:
    small = capacity.plan(10, retention_s=3600)  # 36,000 retained: all of them
    assert small.window_events == 36_000
    assert capacity.plan(10, retention_s=1800).window_events == 18_000
    assert capacity.plan(1_000).window_events == 50_000  # the default --retrain-window-events
    assert capacity.plan(1_000, retrain_window_events=200_000).window_events == 200_000
    assert capacity.plan(1_000, retrain_window_events=0).window_events == 0
    full = capacity.plan(1_000)
    assert full.trainer_read_s == pytest.approx(50_000 / capacity.trainer_read_eps())
    # the measured retrain, for the window it was measured with; fewer labelled rows cost less
    assert full.retrain_s == pytest.approx(full.trainer_read_s + capacity.RETRAIN_TURNAROUND_S)
    assert capacity.plan(1_000, labelled_fraction=0.1).retrain_s < full.retrain_s
    # the cost of training grows with the rows as measured: about linearly
    assert capacity.train_growth(capacity.ADULT_TRAIN_ROWS) == pytest.approx(1.0)
    assert 7 < capacity.train_growth(8 * capacity.ADULT_TRAIN_ROWS) < 10


def test_the_first_bottleneck_is_the_part_that_fills_first() -> None:
    # with the bounded window the Trainer never fills, whatever the rate
    bounded = capacity.plan(10_000)
    assert math.isinf(bounded.saturates_at["trainer window"])
    assert math.isinf(bounded.saturates_at["trainer memory"])
    assert bounded.first_bottleneck == "broker"  # 6 broker cores, a conservative figure
    # an unbounded window (a topic's whole hour) outgrows the Trainer's memory, then its reader
    hour = capacity.plan(10_000, retrain_window_events=10**9)
    assert hour.first_bottleneck == "trainer memory"
    assert hour.trainer_memory_mb > capacity.TRAINER_MEMORY_LIMIT_MB
    assert hour.trainer_read_s > 120 and hour.saturates_at["trainer window"] < 10_000
    many_cores = capacity.plan(10_000, broker_cores=1000)
    assert many_cores.first_bottleneck == "predictor CPU"
    assert math.isinf(bounded.saturates_at["registry"])


def test_p99_comes_from_the_nearest_measured_load_above() -> None:
    assert capacity.p99_ms(400) == 13.7
    assert capacity.p99_ms(1_000) == 14.1
    assert capacity.p99_ms(5_000) == 26.0
    assert capacity.p99_ms(20_000) is None  # not measured: not guessed


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        capacity.plan(0)


def test_the_command_prints_a_plan_without_broker_or_registry(capsys) -> None:
    # no broker or MLflow at these addresses: the verb must not need them
    argv = ["--bootstrap-servers", "127.0.0.1:1", "--tracking-uri", "http://127.0.0.1:9"]
    assert main(["capacity", "--events-per-s", "10000", *argv]) == 0
    text = capsys.readouterr().out
    assert "capacity for 10,000 events/s" in text and "first bottleneck: broker" in text
    assert main(["capacity", "--events-per-s", "10000", "--retrain-window-events", "-1"]) == 2
    capsys.readouterr()
    assert main(["capacity", "--events-per-s", "50000", "--retention-s", "600", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["replicas"] == 3 and report["partitions"] == 6
    assert report["lag_threshold"] == capacity.lag_threshold()
    assert report["saturates_at"]["registry"] is None  # JSON has no Infinity


@pytest.mark.parametrize(
    "argv",
    [
        ["--events-per-s", "0"],
        ["--events-per-s", "100", "--labelled-fraction", "1.5"],
        ["--events-per-s", "100", "--broker-cores", "0"],
    ],
)
def test_the_command_exits_2_on_bad_arguments(argv, capsys) -> None:
    assert main(["capacity", *argv]) == 2
    assert "error:" in capsys.readouterr().err
