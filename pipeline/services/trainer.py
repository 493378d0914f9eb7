"""The Trainer loop: merge retrain requests, train on original + labelled events, gate, announce.

Requests are committed only after the training that answers them is announced, so a Trainer
killed mid-training serves the same requests again after its restart. Requests that arrive
while a training runs wait in Kafka and are merged into one follow-up run.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from pipeline.config.settings import Settings
from pipeline.core.data import AdultData, load_adult
from pipeline.core.messages import (
    MessageError,
    ModelReady,
    RetrainRequest,
    TrainingFailed,
    TrainingStarted,
    parse_retrain_message,
    to_json,
)
from pipeline.errors import BrokerError
from pipeline.kafka_io.clients import (
    finish_stalled_rebalance,
    group_membership,
    make_consumer,
    make_producer,
    require_topic,
)
from pipeline.registry import lifecycle, tracking
from pipeline.services import retrain

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


@dataclass
class Pending:
    requests: list[RetrainRequest] = field(default_factory=list)
    commit: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    retry_at: float = 0.0
    backoff_s: float = 0.0


class Trainer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trainings = 0
        self.failures = 0

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        settings = self.settings
        data = load_adult(settings.data_dir, allow_download=settings.allow_download)
        tracking.connect(settings)
        consumer = make_consumer(
            settings,
            "trainer",
            **group_membership(settings, settings.trainer_group),
            max_poll_interval_ms=60 * 60 * 1000,
            # a request in an aborted transaction was never made
            isolation_level="read_committed",
        )
        producer = make_producer(settings, "trainer")
        require_topic(consumer, settings.retrain_topic)
        consumer.subscribe([settings.retrain_topic])
        pending = Pending()
        if ready is not None:
            ready.set()
        try:
            while not stop.is_set():
                self._collect(consumer.poll(timeout_ms=300), pending)
                finish_stalled_rebalance(consumer)
                if pending.requests and time.monotonic() >= pending.retry_at:
                    self._serve(pending, data, consumer, producer)
        except KafkaError as exc:
            raise BrokerError(f"the trainer lost Kafka: {exc}") from exc
        finally:
            producer.close(timeout=10)
            consumer.close(autocommit=False)

    def _collect(self, polled: dict, pending: Pending) -> None:
        for tp, records in polled.items():
            for record in records:
                pending.commit[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
                try:
                    message = parse_retrain_message(record.value)
                except MessageError as exc:
                    log.warning("ignored a message on %s: %s", tp.topic, exc)
                    continue
                if isinstance(message, RetrainRequest):
                    pending.requests.append(message)
                    log.info(
                        "retrain requested by %s (%d pending)",
                        message.instance_id,
                        len(pending.requests),
                    )

    def _serve(
        self, pending: Pending, data: AdultData, consumer: KafkaConsumer, producer: KafkaProducer
    ) -> None:
        requests = list(pending.requests)
        try:
            outcomes = self._answer(requests, data, producer)
        except Exception as exc:  # a failed training is news, not a crash: announce and retry
            self.failures += 1
            pending.backoff_s = min(
                max(pending.backoff_s * 2, self.settings.retry_backoff_s), MAX_BACKOFF_S
            )
            pending.retry_at = time.monotonic() + pending.backoff_s
            log.exception("training failed; retrying in %.0fs", pending.backoff_s)
            self._announce(
                producer,
                TrainingFailed(
                    reason=f"{type(exc).__name__}: {exc}"[:2000],
                    requests=len(requests),
                    request_ids=retrain.request_ids(requests),
                ),
            )
            return
        for outcome in outcomes:
            self._announce(producer, outcome)
        consumer.commit(dict(pending.commit))
        pending.requests.clear()
        pending.commit.clear()
        pending.backoff_s = 0.0
        pending.retry_at = 0.0

    def _answer(
        self, requests: list[RetrainRequest], data: AdultData, producer: KafkaProducer
    ) -> list[ModelReady]:
        """Requests a version already answers (a replay, or a restart after registering) are
        answered with that version again; only the others are trained for."""
        answered = lifecycle.answered_requests(self.settings, retrain.request_ids(requests))
        outcomes = [
            self._reannounce(info) for info in {a.version: a for a in answered.values()}.values()
        ]
        fresh = [r for r in requests if r.request_id not in answered]
        if answered:
            log.info(
                "%d request(s) already answered by version(s) %s; not training for them again",
                len(requests) - len(fresh),
                sorted({a.version for a in answered.values()}),
            )
        if fresh:
            self._announce(producer, TrainingStarted(requests=len(fresh), end_offsets={}))
            outcomes.append(retrain.retrain(self.settings, fresh, data, self.trainings + 1))
            self.trainings += 1
        return outcomes

    def _reannounce(self, info: lifecycle.VersionInfo) -> ModelReady:
        if info.promoted and (tracking.champion_version(self.settings) or 0) < info.version:
            # Killed between the gate's verdict and the alias move: finish the move.
            tracking.set_champion(self.settings, info.version, by="trainer", reason="resumed")
        return ModelReady(
            model_name=self.settings.model_name,
            version=info.version,
            uri=tracking.model_uri(self.settings.model_name, info.version),
            metrics=info.metrics(),
            champion_metrics={},
            promoted=info.promoted,
            requests=len(info.request_ids),
            end_offsets={},
            request_ids=info.request_ids,
            gate={"promoted": info.promoted, "reason": info.tags.get("gate.reason", "")},
        )

    def _announce(self, producer: KafkaProducer, message: object) -> None:
        producer.send(
            self.settings.retrain_topic,
            value=to_json(message),
            key=self.settings.model_name.encode(),
        ).get(timeout=30)
