"""Writing one scored batch: its outputs, then its input offsets, in the mode chosen.

At-least-once (default): the broker acknowledges every output before the input offsets are
committed, asynchronously and at most every --commit-interval-ms. The loop does not wait for
the acknowledgements: the AckWindow holds the batches in flight, in order, and the OffsetKeeper
holds the offsets of acknowledged batches as owed until a revocation settles them.
Exactly-once: outputs and input offsets go in one Kafka transaction; readers use read_committed.
Dead letters are cut to what the DLQ topic takes, so one big bad event cannot stop the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from pipeline.config.settings import Settings
from pipeline.core.batching import BatchResult, Output
from pipeline.core.dead_letters import batches_that_fit, fit_dead_letter
from pipeline.errors import BrokerError
from pipeline.kafka_io.admin import max_message_bytes
from pipeline.kafka_io.clients import (
    MAX_REQUEST_SIZE,
    kafka_security,
    make_producer,
    send_records,
)
from pipeline.services.ack_window import AckWindow, SendResult
from pipeline.services.offsets import OffsetKeeper, Offsets, log_failed_commit

log = logging.getLogger(__name__)

# Kafka's default message.max.bytes, when the DLQ topic's own limit cannot be read.
DEFAULT_LIMIT = 1_048_588
# Batches sent and not yet acknowledged before the loop waits: enough to keep scoring while
# the broker answers, few enough that a crash replays little.
BATCHES_IN_FLIGHT = 8
# How long a revocation or a close waits for the outputs in flight.
ACKNOWLEDGE_TIMEOUT_S = 10.0

Failure = Callable[[BaseException, str], BrokerError]


def _plain_failure(exc: BaseException, doing: str) -> BrokerError:
    return BrokerError(f"{doing} failed: {exc}")


def dead_letter_limit(settings: Settings) -> int:
    """What one dead letter may weigh: the DLQ topic's limit, and the producer's own."""
    try:
        topic_limit = max_message_bytes(
            settings.bootstrap_servers, settings.dlq_topic, kafka_security(settings)
        )
    except BrokerError as exc:  # e.g. no DescribeConfigs grant: assume Kafka's default
        log.warning("%s; dead letters are cut to Kafka's default %d bytes", exc, DEFAULT_LIMIT)
        topic_limit = DEFAULT_LIMIT
    return min(topic_limit, MAX_REQUEST_SIZE)


class BatchPublisher:
    def __init__(
        self,
        settings: Settings,
        producer: KafkaProducer,
        keeper: OffsetKeeper,
        dlq_limit: int,
        fail: Failure = _plain_failure,
    ) -> None:
        self.settings = settings
        self.fail = fail
        self.producer = producer
        self.keeper = keeper
        self.dlq_limit = dlq_limit
        self.truncated = 0
        self.window = AckWindow(BATCHES_IN_FLIGHT)
        self._closed = False
        self._uncommitted = False
        self._commit_due = 0.0
        if not settings.exactly_once:
            keeper.acknowledge_first(self._acknowledge_all)

    @classmethod
    def create(
        cls, settings: Settings, keeper: OffsetKeeper, fail: Failure = _plain_failure
    ) -> BatchPublisher:
        """`fail` turns a Kafka error into the BrokerError that names the principal and what it
        was refused (the Predictor's)."""
        limit = dead_letter_limit(settings)
        log.info("dead letters are cut to fit %s: %d bytes", settings.dlq_topic, limit)
        linger_ms = settings.output_linger_ms
        if not settings.exactly_once:
            producer = make_producer(settings, "predictor", linger_ms=linger_ms)
            return cls(settings, producer, keeper, limit, fail)
        transactional_id = f"{settings.predictor_group}-{settings.instance_name}"
        producer = make_producer(
            settings, "predictor", transactional_id=transactional_id, linger_ms=linger_ms
        )
        try:
            producer.init_transactions()  # fences a previous incarnation and aborts its open work
        except KafkaError as exc:
            producer.close(timeout=0)
            raise fail(exc, "initializing transactions") from exc
        return cls(settings, producer, keeper, limit, fail)

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
            raise self.fail(exc, "publishing a batch (its offsets stay uncommitted)") from exc

    def _send_all(self, result: BatchResult, retrain: Output | None) -> list[SendResult]:
        s, producer = self.settings, self.producer
        futures = send_records(producer, s.predictions_topic, result.predictions)
        futures += send_records(producer, s.shadow_topic, result.shadow)
        futures += self._send_dead_letters(result.dead_letters)
        if retrain is not None:
            futures.append(producer.send(s.retrain_topic, value=retrain.value, key=retrain.key))
        return futures

    def _send_dead_letters(self, letters: list[Output]) -> list[FutureRecordMetadata]:
        """Each letter cut to fit the DLQ topic, and never more of them in flight than fit in
        one of its batches: kafka-python 3.0.12 splits a batch the broker refuses as too big,
        but its flush() then raises "Future not done" and the batch stays uncommitted."""
        fitted = [fit_dead_letter(letter, self.dlq_limit) for letter in letters]
        cut = sum(f is not letter for f, letter in zip(fitted, letters, strict=True))
        if cut:
            self.truncated += cut
            log.warning("%d dead letter(s) cut to fit %s", cut, self.settings.dlq_topic)
        futures = []
        for number, chunk in enumerate(batches_that_fit(fitted, self.dlq_limit)):
            if number:
                self.producer.flush()  # the previous chunk leaves before this one is batched
            futures += [
                self.producer.send(
                    self.settings.dlq_topic, value=o.value, key=o.key, headers=o.headers
                )
                for o in chunk
            ]
        return futures

    def _then_commit(
        self,
        consumer: KafkaConsumer,
        result: BatchResult,
        retrain: Output | None,
        offsets: Offsets,
    ) -> None:
        self.window.add(self._send_all(result, retrain), offsets)
        if self.window.full():
            self.producer.flush()
        self._settle(consumer)

    def settle(self, consumer: KafkaConsumer) -> None:
        """Commits what was acknowledged, when the interval is up; the loop calls it after an
        empty poll too, so the last batch before a pause is committed without waiting for
        the next."""
        if not self.window and not self._uncommitted:
            return
        try:
            self._settle(consumer)
        except KafkaError as exc:
            raise self.fail(exc, "publishing a batch (its offsets stay uncommitted)") from exc

    def _settle(self, consumer: KafkaConsumer, now: bool = False) -> None:
        """Acknowledged offsets become owed at once (a revocation commits them); the commit
        itself goes every --commit-interval-ms, as Kafka Streams does: one per batch cost the
        broker a write to __consumer_offsets for every few events at low load."""
        if self.window.settle(self.keeper.owe):
            self._uncommitted = True
        if not self._uncommitted:
            return
        clock = time.monotonic()
        if now or clock >= self._commit_due:
            owed = self.keeper.owed  # empty when a revocation took them all
            if owed:
                # Asynchronous: it is sent after the acknowledgements, so the order that makes
                # this at-least-once holds, and the loop does not wait a round trip.
                consumer.commit_async(owed, callback=log_failed_commit)
            self._uncommitted = False
            self._commit_due = clock + self.settings.commit_interval_ms / 1000

    def _acknowledge_all(self) -> None:
        """Run by a revocation (on the consumer's thread): the outputs in flight acknowledged
        and their offsets owed, for the keeper to commit before the partitions leave."""
        if self._closed or not self.window:
            return
        self.producer.flush(timeout=ACKNOWLEDGE_TIMEOUT_S)
        self.window.settle(self.keeper.owe)

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

    def close(self, consumer: KafkaConsumer) -> None:
        """The outputs in flight acknowledged and their offsets committed (and owed, for the
        consumer's close to settle) before the producer goes."""
        try:
            if self.window or self._uncommitted:
                self.producer.flush(timeout=ACKNOWLEDGE_TIMEOUT_S)
                self._settle(consumer, now=True)
        except KafkaError as exc:  # a send the loop had not seen fail yet, or had
            raise self.fail(
                exc, "publishing the last batches (their offsets stay uncommitted)"
            ) from exc
        finally:
            self._closed = True
            self.producer.close(timeout=ACKNOWLEDGE_TIMEOUT_S)
