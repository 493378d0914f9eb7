"""The quick part of the fault suite (`make chaos` runs the longer one): real broker, processes.

Each test breaks one part of a running pipeline and asserts what must survive it; the scenarios
live in pipeline/chaos so that `make chaos` and these tests inject exactly the same faults.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import mlflow
import pytest

from pipeline.config.settings import Settings
from pipeline.core.topics import TopicSpec
from pipeline.kafka_io import clients
from pipeline.kafka_io.admin import ensure_topics
from pipeline.kafka_io.broker import LocalBroker
from pipeline.kafka_io.clients import make_consumer, require_topic
from pipeline.registry import tracking
from pipeline.tools.chaos import faults
from pipeline.tools.chaos.dead_letters import dlq_refuses_big_letters
from pipeline.tools.chaos.harness import FaultResult
from pipeline.tools.chaos.registry import registry_outage
from pipeline.tools.chaos.rolling import rolling_restart
from pipeline.tools.sample_stream import event_rows


@pytest.fixture
def stage(live: Settings, adult, tmp_path) -> faults.Stage:
    return faults.Stage(
        live, event_rows(adult.test, live.pipeline_spec.schema), tmp_path / "logs", rate=500.0
    )


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker these tests may stop and freeze without disturbing the session's."""
    if shutil.which("java") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the broker faults need Java for a broker of their own")
        pytest.skip("no Java: cannot run a broker these tests may stop")
    with LocalBroker(tmp_path_factory.mktemp("own-kafka")) as broker:
        yield broker


def survived(result: FaultResult, stage: faults.Stage) -> None:
    assert result.injections > 0
    assert result.passed, f"{result}; process logs in {stage.logs}"


@pytest.mark.both_clients
def test_predictor_sigkilled_five_times_loses_no_event(stage) -> None:
    result = faults.predictor_kills(stage, kills=5, exactly_once=False)
    survived(result, stage)
    assert result.injections == 5 and result.events > 1000 and result.lost == 0


@pytest.mark.both_clients
def test_exactly_once_predictor_sigkilled_five_times_commits_each_event_once(stage) -> None:
    result = faults.predictor_kills(stage, kills=5, exactly_once=True)
    survived(result, stage)
    assert result.lost == 0 and result.duplicated == 0


def test_broker_restart_mid_stream(stage, own_broker) -> None:
    moved = replace(
        stage, settings=replace(stage.settings, bootstrap_servers=own_broker.bootstrap_servers)
    )
    result = faults.broker_restart(moved, own_broker, down_s=4.0)
    survived(result, moved)
    assert result.checks["trainer answers a request afterwards"]


@pytest.mark.both_clients
def test_a_service_that_loses_the_broker_before_reading_its_topic_waits_for_it(
    live_topics: Settings, own_broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker restart once caught a starting Trainer between connecting and reading its
    topic's metadata, and it exited; the read waits for the broker now, as the loop does."""
    settings = replace(live_topics, bootstrap_servers=own_broker.bootstrap_servers)
    topic = f"startup-{live_topics.input_topic}"
    consumer = make_consumer(settings, "predictor")
    try:  # made after the consumer connected, so that no metadata it holds names the topic
        ensure_topics(own_broker.bootstrap_servers, [TopicSpec(topic, 3)])
        own_broker.stop()
        with ThreadPoolExecutor(1) as pool, caplog.at_level(logging.WARNING, clients.__name__):
            try:
                found = pool.submit(require_topic, consumer, topic, settings, "predictor")
                deadline = time.monotonic() + 60
                while "the broker is away" not in caplog.text and not found.done():
                    assert time.monotonic() < deadline, "the read neither waited nor failed"
                    time.sleep(0.1)
            finally:
                own_broker.start(timeout_s=120, keep_data=True)
            assert found.result(timeout=120) == 3
        assert "the broker is back" in caplog.text
    finally:
        consumer.close()


def test_frozen_broker_slows_the_pipeline_down_without_loss(stage, own_broker) -> None:
    moved = replace(
        stage, settings=replace(stage.settings, bootstrap_servers=own_broker.bootstrap_servers)
    )
    survived(faults.broker_pause(moved, own_broker, pause_s=4.0), moved)


def test_trainer_sigkilled_mid_training_still_serves_the_request(stage) -> None:
    result = faults.trainer_kill(stage)
    survived(result, stage)
    assert result.checks["the kill hit a running training"]


def test_registry_outage_during_a_retrain(stage, trained_model, adult) -> None:
    result = registry_outage(stage, trained_model, adult.test.head(50))
    survived(result, stage)


def test_corrupt_announcements_are_refused_while_scoring_goes_on(
    stage, live, trained_model, adult
) -> None:
    tracking.connect(live)
    with mlflow.start_run(run_name="test-fault-versions"):
        incompatible = tracking.log_model_version(
            live, trained_model, adult.test.head(5), signature=faults.INCOMPATIBLE
        ).version
        good = tracking.log_model_version(live, trained_model, adult.test.head(5)).version
    result = faults.corrupt_announcements(stage, incompatible, good)
    survived(result, stage)
    assert result.checks["no prediction from a refused version"]
    assert result.checks["the good version announced afterwards was swapped in"]


def test_rolling_restart_never_moves_a_committed_offset_back(stage) -> None:
    result = rolling_restart(stage, rounds=1, exactly_once=False)
    survived(result, stage)
    assert result.injections == 2 and result.lost == 0 and result.offsets_moved_back == 0


def test_exactly_once_rolling_restart_commits_each_event_once(stage) -> None:
    result = rolling_restart(stage, rounds=1, exactly_once=True)
    survived(result, stage)
    assert result.duplicated == 0 and result.offsets_moved_back == 0


def test_a_dlq_that_refuses_big_records_gets_them_cut(stage) -> None:
    result = dlq_refuses_big_letters(stage, count=3)
    survived(result, stage)
    assert result.dlq == 3
