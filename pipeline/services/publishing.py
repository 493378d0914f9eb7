"""Writing one scored batch: its outputs, then its input offsets, in the mode chosen.

At-least-once (default): the broker acknowledges every output before the input offsets are
committed, asynchronously; the OffsetKeeper holds them as owed until a revocation settles them.
Exactly-once: outputs and input offsets go in one Kafka transaction; readers use read_committed.
"""

from __future__ import annotations

import logging

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from pipeline.config.settings import Settings
from pipeline.core.batching import BatchResult, Output
from pipeline.errors import BrokerError
from pipeline.kafka_io.clients import make_producer
from pipeline.services.offsets import OffsetKeeper, Offsets, log_failed_commit

log = logging.getLogger(__name__)


class BatchPublisher:
    def __init__(self, settings: Settings, producer: KafkaProducer, keeper: OffsetKeeper) -> None:
        self.settings = settings
        self.producer = producer
        self.keeper = keeper

    @classmethod
    def create(cls, settings: Settings, keeper: OffsetKeeper) -> BatchPublisher:
        if not settings.exactly_once:
            return cls(settings, make_producer(settings, "predictor"), keeper)
        transactional_id = f"{settings.predictor_group}-{settings.instance_name}"
        producer = make_producer(settings, "predictor", transactional_id=transactional_id)
        producer.init_transactions()  # fences a previous incarnation and aborts its open work
        return cls(settings, producer, keeper)

    def publish(
        self,
        consumer: KafkaConsumer,
        result: BatchResult,
        retrain: Output | None,
        offsets: Offsets,
    ) -> None:
        try:
            if self.settings.exactly_once:
                self._in_transaction(consumer, result, retrain, offsets)
            else:
                self._then_commit(consumer, result, retrain, offsets)
        except KafkaError as exc:
            raise BrokerError(
                f"publishing a batch failed; its offsets stay uncommitted: {exc}"
            ) from exc

    def _send_all(self, result: BatchResult, retrain: Output | None) -> list[FutureRecordMetadata]:
        s, producer = self.settings, self.producer
        futures = [
            producer.send(s.predictions_topic, value=o.value, key=o.key) for o in result.predictions
        ]
        futures += [
            producer.send(s.dlq_topic, value=o.value, key=o.key, headers=o.headers)
            for o in result.dead_letters
        ]
        if retrain is not None:
            futures.append(producer.send(s.retrain_topic, value=retrain.value, key=retrain.key))
        return futures

    def _then_commit(
        self,
        consumer: KafkaConsumer,
        result: BatchResult,
        retrain: Output | None,
        offsets: Offsets,
    ) -> None:
        futures = self._send_all(result, retrain)
        self.producer.flush()
        for future in futures:
            future.get(timeout=0)  # raises the send's error, if any
        # Asynchronous: it is sent after the acknowledgements above, so the order that makes
        # this at-least-once holds, and the loop does not wait a round trip per batch.
        consumer.commit_async(offsets, callback=log_failed_commit)
        self.keeper.owe(offsets)

    def _in_transaction(
        self,
        consumer: KafkaConsumer,
        result: BatchResult,
        retrain: Output | None,
        offsets: Offsets,
    ) -> None:
        self.producer.begin_transaction()
        try:
            self._send_all(result, retrain)
            self.producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            self.producer.commit_transaction()
        except KafkaError:
            self.producer.abort_transaction()
            raise

    def close(self) -> None:
        self.producer.flush(timeout=10)
        self.producer.close(timeout=10)
