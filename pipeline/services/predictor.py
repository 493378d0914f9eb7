"""The Predictor loop: poll a micro-batch, score it, publish, then commit its offsets.

At-least-once (default): outputs are flushed and acknowledged by the broker before the input
offsets are committed, so a crash can repeat a batch but never lose one. Exactly-once: outputs
and input offsets go in one Kafka transaction; readers use read_committed. How a batch is
written is in `publishing`; what is owed to the group across rebalances, in `offsets`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

from kafka import KafkaConsumer

from pipeline.config.settings import Settings
from pipeline.core.batching import BatchResult, Output, ServingModel, score_batch
from pipeline.core.messages import RetrainRequest, to_json
from pipeline.errors import ModelError
from pipeline.kafka_io.clients import (
    finish_stalled_rebalance,
    group_membership,
    make_consumer,
    require_topic,
)
from pipeline.registry import artifacts, tracking
from pipeline.services.heartbeat import HeartbeatPublisher
from pipeline.services.hot_swap import ModelSlot, ModelWatcher, announcement_reader
from pipeline.services.offsets import OffsetKeeper, next_offsets
from pipeline.services.publishing import BatchPublisher

log = logging.getLogger(__name__)


@dataclass
class Counters:
    batches: int = 0
    scored: int = 0
    dead_letters: int = 0
    retrain_requests: int = 0
    labelled_since_request: int = 0


FETCH_MAX_WAIT_MS = 200
# A model load in progress may take a few seconds; a Predictor that stops waits for it rather
# than leave a thread importing model code behind it.
WATCHER_JOIN_S = 30.0


def champion_version(settings: Settings) -> int:
    version = tracking.champion_version(settings)
    if version is None:
        raise ModelError(
            f"no version of {settings.model_name} has the alias @champion; run initialize.py first"
        )
    return version


def load_version(settings: Settings, version: int) -> ServingModel:
    model = artifacts.load_scoring_model(settings.model_name, version)
    return ServingModel(model, settings.model_name, version)


def load_champion(settings: Settings) -> ServingModel:
    return load_version(settings, champion_version(settings))


class Predictor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.counters = Counters()
        self.slot: ModelSlot | None = None
        self.watcher: ModelWatcher | None = None
        # The assignment, and the offsets owed to the group until a revocation settles them.
        self.assignment = OffsetKeeper()

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        settings = self.settings
        tracking.connect(settings)
        champion_version(settings)  # registry problems surface before any Kafka I/O
        reader = announcement_reader(
            lambda: make_consumer(settings, "predictor-watch"), settings.retrain_topic
        )
        try:
            # Read again now that the reader is positioned: a promotion between the first read
            # and the positioning is in this answer, one after it is in the reader.
            self.slot = ModelSlot(load_version(settings, champion_version(settings)))
        except Exception:
            reader.close()
            raise
        log.info("serving %s version %d", settings.model_name, self.slot.current.version)
        self.watcher = ModelWatcher(
            reader,
            self.slot,
            settings.model_name,
            read_alias=lambda: tracking.champion_version(settings),
            load=lambda version: load_version(settings, version),
            poll_s=settings.alias_poll_s,
        )
        self.watcher.start()
        consumer = make_consumer(
            settings,
            "predictor",
            **group_membership(settings, settings.predictor_group),
            max_poll_records=settings.batch_size,
            isolation_level="read_committed",
            # The broker answers a fetch as soon as one record is there, so a long wait adds no
            # latency; it only spares an idle Predictor hundreds of empty fetches a second.
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self.assignment.bind(consumer)
        heartbeat = HeartbeatPublisher(settings)
        publisher: BatchPublisher | None = None
        try:
            publisher = BatchPublisher.create(settings, self.assignment)
            require_topic(consumer, settings.input_topic)
            consumer.subscribe([settings.input_topic], listener=self.assignment)
            if ready is not None:
                ready.set()
            # Imports, the model and the clients are hundreds of thousands of objects that live as
            # long as the process; left to the collector, each full pass rescans them all and
            # stalls the loop (README, Performance: the figures before and after).
            gc.freeze()
            self._loop(consumer, publisher, heartbeat, stop)
        finally:
            self.watcher.stop()
            heartbeat.close()
            self._close(consumer, publisher)
            self.watcher.finish(WATCHER_JOIN_S)

    def _loop(
        self,
        consumer: KafkaConsumer,
        publisher: BatchPublisher,
        heartbeat: HeartbeatPublisher,
        stop: threading.Event,
    ) -> None:
        assert self.slot is not None
        while not stop.is_set():
            polled = consumer.poll(
                timeout_ms=self.settings.batch_wait_ms or 1, max_records=self.settings.batch_size
            )
            finish_stalled_rebalance(consumer)
            self.slot.swap_if_pending()
            heartbeat.maybe_send(consumer, self.slot.current.version)
            if not polled:
                continue
            records = [record for batch in polled.values() for record in batch]
            result = score_batch(
                records,
                self.slot.current,
                self.settings.max_event_bytes,
                self.settings.instance_name,
            )
            retrain = self._retrain_request(consumer, result)
            publisher.publish(consumer, result, retrain, next_offsets(records))
            self._count(result, retrain)

    def _retrain_request(self, consumer: KafkaConsumer, result: BatchResult) -> Output | None:
        every = self.settings.retrain_every
        self.counters.labelled_since_request += result.labelled
        if every == 0 or self.counters.labelled_since_request < every:
            return None
        positions = {str(tp.partition): consumer.position(tp) for tp in consumer.assignment()}
        request = RetrainRequest(
            self.settings.instance_name,
            self.settings.input_topic,
            positions,
            self.counters.labelled_since_request,
        )
        self.counters.labelled_since_request = 0
        return Output(self.settings.instance_name.encode(), to_json(request))

    def _count(self, result: BatchResult, retrain: Output | None) -> None:
        c = self.counters
        c.batches += 1
        c.scored += len(result.predictions)
        c.dead_letters += len(result.dead_letters)
        if retrain is not None:
            c.retrain_requests += 1
            log.info("requested a retrain after %d labelled events", self.settings.retrain_every)
        if result.dead_letters:
            log.debug("%d event(s) sent to the DLQ", len(result.dead_letters))

    def _close(self, consumer: KafkaConsumer, publisher: BatchPublisher | None) -> None:
        """Outputs first; then `close()` runs the keeper's revocation, which commits what is
        owed for the partitions still held (a lost membership drops it instead)."""
        started = time.monotonic()
        try:
            if publisher is not None:
                publisher.close()
        finally:
            consumer.close(autocommit=False)
        log.info(
            "closed after %d batches: %d scored, %d to the DLQ, %d retrain requests (%.1fs)",
            self.counters.batches,
            self.counters.scored,
            self.counters.dead_letters,
            self.counters.retrain_requests,
            time.monotonic() - started,
        )
