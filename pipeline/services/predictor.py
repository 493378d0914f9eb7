"""The Predictor loop: poll a micro-batch, score it, publish, then commit its offsets.

At-least-once (default): outputs are flushed and acknowledged by the broker before the input
offsets are committed, so a crash can repeat a batch but never lose one. Exactly-once: outputs
and input offsets go in one Kafka transaction; readers use read_committed. How a batch is
written is in `publishing`; what is owed to the group across rebalances, in `offsets`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from pipeline.config.settings import Settings, check_consistent
from pipeline.core.batching import BatchResult, Output, ServingModel, score_batch
from pipeline.core.events import EventDecoder
from pipeline.core.messages import DLQ_REASON, REASON_COUNT, RetrainRequest, to_json
from pipeline.core.model_checks import check_scores
from pipeline.core.scoring import ScoringModel
from pipeline.errors import BrokerError, ModelError
from pipeline.kafka_io.clients import (
    GroupPoller,
    failure,
    finish_stalled_rebalance,
    group_membership,
    make_consumer,
    require_topic,
)
from pipeline.registry import tracking
from pipeline.registry.challenger import challenger_version
from pipeline.services.collector import settle_collector
from pipeline.services.health import HealthState, serve_health
from pipeline.services.heartbeat import HeartbeatPublisher
from pipeline.services.hot_swap import (
    ModelSlot,
    ModelWatcher,
    announcement_reader,
    champion_version,
    compiled_cache,
    load_version,
)
from pipeline.services.label_join import JoinState, start_label_reader
from pipeline.services.metrics import Instruments, PredictorMetrics
from pipeline.services.monitoring import LiveMonitor
from pipeline.services.offsets import OffsetKeeper, known_positions, next_offsets
from pipeline.services.publishing import BatchPublisher
from pipeline.services.tree_optimizer import TreeOptimizer

log = logging.getLogger(__name__)


def input_consumer(settings: Settings, role: str) -> KafkaConsumer:
    """The input topic's reader in the Predictors' group (the benchmark's floor reads so too)."""
    return make_consumer(
        settings,
        role,
        **group_membership(settings, settings.predictor_group),
        max_poll_records=settings.batch_size,
        isolation_level="read_committed",
        # The broker answers a fetch as soon as one record is there, so a long wait adds no
        # latency; it only spares an idle Predictor hundreds of empty fetches a second.
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )


@dataclass
class Counters:
    batches: int = 0
    scored: int = 0
    dead_letters: int = 0
    retrain_requests: int = 0
    labelled_since_request: int = 0


ROLE = "predictor"  # its ACLs: python -m pipeline.kafka_io.acls --role predictor
FETCH_MAX_WAIT_MS = 200
# A model load in progress may take a few seconds; a Predictor that stops waits for it rather
# than leave a thread importing model code behind it.
WATCHER_JOIN_S = 30.0


class Predictor:
    def __init__(self, settings: Settings) -> None:
        self.settings = check_consistent(settings)
        self.counters = Counters()
        self.metrics = PredictorMetrics()
        self.instruments = Instruments(self.metrics, settings.model_name)
        # /readyz scores the golden rows with whatever model serves at that moment.
        self.health = HealthState(golden_check=lambda: check_scores(self._serving_model()))
        self.slot: ModelSlot | None = None
        self.watcher: ModelWatcher | None = None
        # The assignment, and the offsets owed to the group until a revocation settles them.
        self.assignment = OffsetKeeper()
        self.monitor: LiveMonitor | None = None
        self.labels = JoinState(settings.label_ttl_s, settings.label_state_max)
        self.decoder = EventDecoder(settings.pipeline_spec.schema, settings.max_event_bytes)
        self._joining = False
        self._request_reason = REASON_COUNT
        self.optimizer = TreeOptimizer(compiled_cache(settings))

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        settings = self.settings
        tracking.connect(settings)
        champion_version(settings)  # registry problems surface before any Kafka I/O
        try:
            reader = announcement_reader(
                lambda: make_consumer(settings, "predictor-watch"), settings.retrain_topic
            )
        except KafkaError as exc:
            raise self._failure(exc, f"positioning on topic {settings.retrain_topic}") from exc
        try:
            # Read again now that the reader is positioned: a promotion between the first read
            # and the positioning is in this answer, one after it is in the reader.
            self.slot = ModelSlot(self._load(champion_version(settings)))
        except Exception:
            reader.close()
            raise
        log.info("serving %s version %d", settings.model_name, self.slot.current.version)
        self.health.model_checked = True
        server = serve_health(self.settings.metrics_port, self.health, self.metrics.registry)
        self.watcher = ModelWatcher(
            reader,
            self.slot,
            settings.model_name,
            read_alias=lambda: tracking.champion_version(settings),
            load=self._load,
            poll_s=settings.alias_poll_s,
            read_challenger=lambda: challenger_version(settings),
        )
        self.watcher.reconcile_challenger()
        self.watcher.start()
        self.optimizer.start()
        consumer = input_consumer(settings, "predictor")
        self.assignment.bind(consumer)
        heartbeat = HeartbeatPublisher(settings)
        self.monitor = LiveMonitor.create(settings, self.metrics)
        self.monitor.writer.look_up(self.slot.current.version)
        label_reader = start_label_reader(settings, self.labels)
        self._joining = label_reader is not None
        publisher: BatchPublisher | None = None
        try:
            publisher = BatchPublisher.create(settings, self.assignment, self._failure)
            require_topic(consumer, settings.input_topic, settings, ROLE)
            consumer.subscribe([settings.input_topic], listener=self.assignment)
            if ready is not None:
                ready.set()
            settle_collector()
            self._loop(consumer, publisher, heartbeat, stop)
        except KafkaError as exc:
            raise self._failure(exc, "serving") from exc
        finally:
            self.watcher.stop()
            self.optimizer.stop()
            if server is not None:
                server.stop()
            heartbeat.close()
            if self.monitor is not None:
                self.monitor.close()
            if label_reader is not None:
                label_reader.stop()
            self._close(consumer, publisher)
            self.watcher.finish(WATCHER_JOIN_S)
            self.optimizer.finish(WATCHER_JOIN_S)

    def _loop(
        self,
        consumer: KafkaConsumer,
        publisher: BatchPublisher,
        heartbeat: HeartbeatPublisher,
        stop: threading.Event,
    ) -> None:
        assert self.slot is not None
        poller = GroupPoller(consumer)
        while not stop.is_set():
            try:
                polled = poller.poll(
                    timeout_ms=self.settings.batch_wait_ms or 1,
                    max_records=self.settings.batch_size,
                )
            except KafkaError as exc:
                doing = f"consuming {self.settings.input_topic} in group {self.settings.predictor_group}"
                raise self._failure(exc, doing) from exc
            finish_stalled_rebalance(consumer)
            self.slot.swap_if_pending()
            self._observe_poll(heartbeat.maybe_send(consumer, self.slot.current.version))
            if not polled:
                publisher.settle(consumer)
                continue
            records = [record for batch in polled.values() for record in batch]
            started = time.perf_counter()
            result = score_batch(
                records,
                self.slot.current,
                self.decoder,
                self.settings.instance_name,
                self._shadowing(),
                self.settings.shadow_fraction,
            )
            scoring_s = time.perf_counter() - started
            assert self.monitor is not None
            serving = self.slot.current
            if self._joining and result.unlabelled:
                self.labels.predicted(serving.version, result.unlabelled)
            late = self.labels.drain()
            if late:
                self.metrics.labels_joined.inc(sum(len(pairs) for pairs in late.values()))
            due = self.monitor.observe(serving.version, serving.model.profile, result, late)
            retrain = self._retrain_request(consumer, result, due)
            publisher.publish(consumer, result, retrain, next_offsets(polled))
            self._count(result, retrain)
            self.instruments.after_batch(
                records,
                len(result.predictions),
                [dict(o.headers or [])[DLQ_REASON].decode() for o in result.dead_letters],
                scoring_s,
                time.time() * 1000,
            )

    def _load(self, version: int) -> ServingModel:
        """A version ready to serve on its quick build; its optimized trees come later."""
        serving = load_version(self.settings, version)
        self.optimizer.offer(serving.model)
        return serving

    def _observe_poll(self, lag: dict[int, int] | None) -> None:
        """Health and metrics after each poll: cheap attribute writes, lag every heartbeat."""
        assert self.slot is not None
        self.health.beat()
        self.health.partitions = self.assignment.partitions
        refused = self.watcher.refused if self.watcher is not None else 0
        self.instruments.after_poll(self.slot.current.version, refused)
        if lag is not None:
            self.instruments.lag(lag)
            waiting = self.metrics.label_join_waiting
            waiting.labels("predictions").set(len(self.labels.predictions))
            waiting.labels("labels").set(len(self.labels.labels))

    def _shadowing(self) -> ServingModel | None:
        """The challenger, unless it is the champion itself (a promotion not yet cleared)."""
        assert self.slot is not None
        challenger = self.slot.challenger
        if challenger is None or challenger.version == self.slot.current.version:
            return None
        return challenger

    def _serving_model(self) -> ScoringModel:
        if self.slot is None:
            raise ModelError("no model loaded yet")
        return self.slot.current.model

    def _failure(self, exc: BaseException, doing: str) -> BrokerError:
        """A Kafka error as a BrokerError naming this principal and what it was refused."""
        return failure(
            exc,
            self.settings,
            doing,
            ROLE,
            group=self.settings.predictor_group,
            transactional_id=f"{self.settings.predictor_group}-{self.settings.instance_name}",
        )

    def _retrain_request(
        self, consumer: KafkaConsumer, result: BatchResult, due: str | None
    ) -> Output | None:
        """A request when enough labelled events were scored, or when monitoring asks (`due`:
        drift or quality, already debounced)."""
        every = self.settings.retrain_every
        self.counters.labelled_since_request += result.labelled
        counted = every > 0 and self.counters.labelled_since_request >= every
        if not counted and due is None:
            return None
        positions = {str(tp.partition): at for tp, at in known_positions(consumer).items()}
        request = RetrainRequest(
            self.settings.instance_name,
            self.settings.input_topic,
            positions,
            self.counters.labelled_since_request,
            reason=REASON_COUNT if counted else str(due),
        )
        self.counters.labelled_since_request = 0
        self._request_reason = request.reason
        return Output(self.settings.instance_name.encode(), to_json(request))

    def _count(self, result: BatchResult, retrain: Output | None) -> None:
        c = self.counters
        c.batches += 1
        c.scored += len(result.predictions)
        c.dead_letters += len(result.dead_letters)
        if retrain is not None:
            c.retrain_requests += 1
            self.metrics.retrain_requests.labels(reason=self._request_reason).inc()
            log.info("requested a retrain (reason: %s)", self._request_reason)
        if result.dead_letters:
            log.debug("%d event(s) sent to the DLQ", len(result.dead_letters))

    def _close(self, consumer: KafkaConsumer, publisher: BatchPublisher | None) -> None:
        """Outputs first; then `close()` runs the keeper's revocation, which commits what is
        owed for the partitions still held (a lost membership drops it instead)."""
        started = time.monotonic()
        try:
            if publisher is not None:
                publisher.close(consumer)
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
