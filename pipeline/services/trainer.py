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
from pipeline.core.datasets import build_retrain_dataset, holdout_of, merge_end_offsets
from pipeline.core.messages import (
    MessageError,
    ModelReady,
    RetrainRequest,
    TrainingFailed,
    TrainingStarted,
    parse_retrain_message,
    to_json,
)
from pipeline.core.training import evaluate
from pipeline.core.tuning import TuningConfig
from pipeline.kafka_io.clients import (
    failure,
    finish_stalled_rebalance,
    group_membership,
    make_consumer,
    make_producer,
    require_topic,
)
from pipeline.kafka_io.event_reader import read_events, scored_offsets
from pipeline.registry import tracking
from pipeline.registry.train_job import run_training

log = logging.getLogger(__name__)

ROLE = "trainer"  # its ACLs: python -m pipeline.kafka_io.acls --role trainer
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
        )
        producer = make_producer(settings, "trainer")
        pending = Pending()
        try:
            require_topic(consumer, settings.retrain_topic, settings, ROLE)
            consumer.subscribe([settings.retrain_topic])
            if ready is not None:
                ready.set()
            while not stop.is_set():
                self._collect(consumer.poll(timeout_ms=300), pending)
                finish_stalled_rebalance(consumer)
                if pending.requests and time.monotonic() >= pending.retry_at:
                    self._serve(pending, data, consumer, producer)
        except KafkaError as exc:
            doing = (
                f"serving requests from {settings.retrain_topic} in group {settings.trainer_group}"
            )
            raise failure(exc, settings, doing, ROLE, group=settings.trainer_group) from exc
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
            outcome = self.train(requests, data, producer)
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
                    reason=f"{type(exc).__name__}: {exc}"[:2000], requests=len(requests)
                ),
            )
            return
        self._announce(producer, outcome)
        consumer.commit(dict(pending.commit))
        pending.requests.clear()
        pending.commit.clear()
        pending.backoff_s = 0.0
        pending.retry_at = 0.0

    def train(
        self, requests: list[RetrainRequest], data: AdultData, producer: KafkaProducer
    ) -> ModelReady:
        settings = self.settings
        end_offsets = {
            **scored_offsets(settings),
            **merge_end_offsets(r.end_offsets for r in requests),
        }
        self._announce(producer, TrainingStarted(requests=len(requests), end_offsets=end_offsets))
        log.info("training for %d merged request(s) up to offsets %s", len(requests), end_offsets)
        events = read_events(settings, end_offsets)
        holdout = holdout_of(data.test)
        dataset = build_retrain_dataset(data.train, events.events, holdout, events.offset_ranges)
        lineage = {
            **dataset.lineage,
            "invalid_events_skipped": events.invalid,
            "requests_merged": len(requests),
        }
        config = TuningConfig(
            max_evals=settings.retrain_evals,
            folds=settings.retrain_folds,
            seed=settings.seed + self.trainings + 1,
            num_threads=settings.threads,
        )
        result = run_training(
            settings,
            dataset.frame,
            holdout,
            config,
            run_name=f"retrain-{dataset.lineage['dataset_sha256'][:8]}",
            tags={"pipeline.stage": "retrain"},
            lineage=lineage,
        )
        self.trainings += 1
        champion_metrics = self._champion_metrics(holdout)
        promoted = (
            not champion_metrics
            or result.metrics["auc"] >= champion_metrics["auc"] - settings.promote_tolerance
        )
        tracking.record_decision(result.registered.run_id, promoted, champion_metrics)
        if promoted:
            tracking.set_champion(settings, result.registered.version)
        log.info(
            "version %d: auc %.4f vs champion %.4f -> %s",
            result.registered.version,
            result.metrics["auc"],
            champion_metrics.get("auc", float("nan")),
            "promoted" if promoted else "kept the champion",
        )
        return ModelReady(
            model_name=settings.model_name,
            version=result.registered.version,
            uri=result.registered.uri,
            metrics=result.metrics,
            champion_metrics=champion_metrics,
            promoted=promoted,
            requests=len(requests),
            end_offsets=end_offsets,
        )

    def _champion_metrics(self, holdout) -> dict[str, float]:
        version = tracking.champion_version(self.settings)
        if version is None:
            return {}
        model = tracking.load_scoring_model(tracking.model_uri(self.settings.model_name, version))
        return {**evaluate(model, holdout), "version": float(version)}

    def _announce(self, producer: KafkaProducer, message: object) -> None:
        producer.send(
            self.settings.retrain_topic,
            value=to_json(message),
            key=self.settings.model_name.encode(),
        ).get(timeout=30)
