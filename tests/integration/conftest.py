"""A real Kafka broker for the whole session.

Order: an explicit KAFKA_BOOTSTRAP_SERVERS; else testcontainers (KRaft) where a Docker engine
answers; else the project's own launcher (Maven jars + Java). Under CI=true a missing broker
fails the run loudly instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.config.settings import KAFKA_CLIENTS, Settings, settings_to_argv
from pipeline.core.scoring import ScoringModel
from pipeline.core.training import train_model
from pipeline.core.tuning import TuningConfig
from pipeline.kafka_io.admin import ensure_topics, wait_for_broker
from pipeline.kafka_io.broker import LocalBroker
from pipeline.kafka_io.security import kafka_security
from pipeline.registry import tracking

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kafka_client() -> str:
    """The client the services use; tests marked `both_clients` run once with each."""
    return KAFKA_CLIENTS[0]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_clients") and (
        "kafka_client" in metafunc.fixturenames
    ):
        metafunc.parametrize("kafka_client", KAFKA_CLIENTS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


def _no_broker(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"integration tests need a Kafka broker and none could be started: {reason}")
    pytest.skip(f"no Kafka broker: {reason}")


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    explicit = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if explicit:
        wait_for_broker(explicit, timeout_s=30)
        yield explicit
        return
    if _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    if shutil.which("java") is None:
        _no_broker(
            "no KAFKA_BOOTSTRAP_SERVERS, no Docker engine and no Java for the local launcher"
        )
    try:
        broker = LocalBroker(tmp_path_factory.mktemp("kafka")).start(timeout_s=120)
    except Exception as exc:  # any failure here must surface as the reason
        _no_broker(f"the local launcher failed: {exc}")
        raise
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def unique() -> str:
    """A suffix for topic and group names so tests never see each other's messages."""
    return uuid.uuid4().hex[:10]


# ---- the live loop: per-test settings, a registered champion, running processes ----

TINY = TuningConfig(max_evals=2, folds=2, max_rounds=150, early_stopping_rounds=20, seed=3)


@pytest.fixture(scope="session")
def mlflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-home")


@pytest.fixture(scope="session")
def trained_model(adult, schema) -> ScoringModel:
    return train_model(adult.train, TINY, schema).model


def register(settings: Settings, model: ScoringModel, holdout) -> int:
    """A new registry version of `model` under the test's own model name."""
    tracking.connect(settings)
    with mlflow.start_run(run_name="test-fixture"):
        return tracking.log_model_version(settings, model, holdout).version


def live_settings(bootstrap: str, unique: str, mlflow_home: Path, data_dir: Path) -> Settings:
    """Settings of one test: its own topics, groups and model name."""
    return Settings(
        bootstrap_servers=bootstrap,
        home=mlflow_home,
        data_dir=data_dir,
        allow_download=False,
        model_name=f"adult-{unique}",
        experiment=f"exp-{unique}",
        input_topic=f"in-{unique}",
        predictions_topic=f"out-{unique}",
        dlq_topic=f"dlq-{unique}",
        retrain_topic=f"retrain-{unique}",
        labels_topic=f"labels-{unique}",
        shadow_topic=f"shadow-{unique}",
        input_partitions=2,
        predictor_group=f"predictor-{unique}",
        trainer_group=f"trainer-{unique}",
        instance_id=f"p-{unique}",
        batch_wait_ms=10,
        retrain_every=0,
        retrain_evals=1,
        cv_folds=2,
        retrain_folds=2,
        retry_backoff_s=1.0,
        log_level="INFO",
    )


@pytest.fixture
def live_topics(kafka_bootstrap, unique, mlflow_home, data_dir, kafka_client) -> Settings:
    """Settings of one test: its own topics (created) and groups, and no model yet."""
    settings = replace(
        live_settings(kafka_bootstrap, unique, mlflow_home, data_dir), kafka_client=kafka_client
    )
    ensure_topics(settings.bootstrap_servers, settings.topic_specs())
    return settings


@pytest.fixture
def live(live_topics: Settings, trained_model, adult) -> Settings:
    """Settings of one test: its own topics, groups and model name, with a champion (v1)."""
    tracking.set_champion(live_topics, register(live_topics, trained_model, adult.test.head(50)))
    return live_topics


@contextmanager
def in_thread(target: Callable[[threading.Event, threading.Event], None]):
    """Run a Predictor or Trainer loop in a thread; re-raise its error at the end."""
    stop, ready, errors = threading.Event(), threading.Event(), []

    def body() -> None:
        try:
            target(stop, ready)
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    assert ready.wait(60), "the loop did not start"
    try:
        yield
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "the loop did not stop"
    if errors:
        raise errors[0]


def start_script(script: str, settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(REPO_ROOT / script), *settings_to_argv(settings, script[:-3])]
    with log_path.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def produce(settings: Settings, values: list[tuple[str, bytes]], topic: str | None = None) -> None:
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", **kafka_security(settings)
    )
    for key, value in values:
        producer.send(topic or settings.input_topic, value=value, key=key.encode())
    producer.flush(30)
    producer.close()


class TopicReader:
    """Reads a topic from the beginning, read_committed, and keeps everything it saw."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            isolation_level="read_committed",
            enable_auto_commit=False,
            **kafka_security(settings),
        )
        partitions = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.records: list = []

    def poll(self) -> list:
        for records in self.consumer.poll(timeout_ms=200).values():
            self.records.extend(records)
        return self.records

    def json(self) -> list[dict]:
        return [json.loads(r.value) for r in self.records]

    def wait_for(
        self, condition: Callable[[list], bool], timeout_s: float = 60, what: str = ""
    ) -> list:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if condition(self.records):
                return self.records
        raise AssertionError(
            f"timed out after {timeout_s}s waiting for {what}; saw {len(self.records)} records"
        )

    def close(self) -> None:
        self.consumer.close()


def await_true(condition: Callable[[], bool], timeout_s: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def with_instance(settings: Settings, instance_id: str) -> Settings:
    return replace(settings, instance_id=instance_id)
