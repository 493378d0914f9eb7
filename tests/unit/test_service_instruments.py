"""What the Trainer counts and when a Predictor's heartbeat goes out, without a broker."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import generate_latest

from pipeline.config.settings import Settings
from pipeline.core.messages import ModelReady, RetrainRequest
from pipeline.errors import RegistryError
from pipeline.services import heartbeat as heartbeat_module
from pipeline.services import trainer as trainer_module
from pipeline.services.heartbeat import HeartbeatPublisher
from pipeline.services.trainer import Trainer


def exposed(trainer: Trainer) -> str:
    return generate_latest(trainer.metrics.registry).decode()


def test_the_trainer_counts_requests_by_bounded_reason_and_trainings_by_outcome(
    monkeypatch,
) -> None:
    monkeypatch.setattr(trainer_module.tracking, "champion_version", lambda settings: 7)
    trainer = Trainer(Settings())
    trainer._received(
        [
            RetrainRequest("p", "in", {}, 1, reason="drift"),
            RetrainRequest("p", "in", {}, 1, reason="free text from anyone"),
        ]
    )
    ready = ModelReady("m", 7, "models:/m/7", {"auc": 0.93}, {"auc": 0.92}, True, 1, {})
    trainer._measure(ready)
    trainer._measure(replace(ready, version=8, promoted=False))
    text = exposed(trainer)
    assert 'pipeline_trainer_requests_total{reason="drift"} 1.0' in text
    assert 'pipeline_trainer_requests_total{reason="other"} 1.0' in text
    assert 'pipeline_trainings_total{outcome="promoted"} 1.0' in text
    assert 'pipeline_trainings_total{outcome="kept"} 1.0' in text
    assert 'pipeline_last_holdout_auc{model="champion"} 0.92' in text
    assert "pipeline_champion_version 7.0" in text


def test_a_registry_away_after_a_training_leaves_only_the_champion_gauge_unset(
    monkeypatch,
) -> None:
    def away(settings: Settings) -> int:
        raise RegistryError("cannot read alias champion of m: connection refused")

    monkeypatch.setattr(trainer_module.tracking, "champion_version", away)
    trainer = Trainer(Settings())
    trainer._measure(ModelReady("m", 7, "models:/m/7", {"auc": 0.93}, {}, True, 1, {}))
    text = exposed(trainer)
    assert 'pipeline_trainings_total{outcome="promoted"} 1.0' in text
    assert "pipeline_champion_version NaN" in text  # never set: unknown, not 0


class Partition:
    def __init__(self, number: int) -> None:
        self.partition = number


class Consumer:
    """What maybe_send reads of a KafkaConsumer."""

    def __init__(self) -> None:
        self.owned: set[int] = set()

    def assignment(self) -> set[Partition]:
        return {Partition(p) for p in self.owned}

    def highwater(self, tp: Partition) -> None:
        return None


class Producer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append(value)


def test_a_heartbeat_goes_out_at_once_after_a_rebalance(monkeypatch) -> None:
    producer = Producer()
    monkeypatch.setattr(heartbeat_module, "make_producer", lambda *args, **kwargs: producer)
    beats = HeartbeatPublisher(Settings(heartbeat_interval_s=3600))
    consumer = Consumer()
    assert beats.maybe_send(consumer, 1) == {}  # the first one
    assert beats.maybe_send(consumer, 1) is None  # within the interval, nothing new
    consumer.owned = {0, 1}
    assert beats.maybe_send(consumer, 1) == {0: 0, 1: 0}  # partitions came: at once
    assert beats.maybe_send(consumer, 1) is None
    assert len(producer.sent) == 2
