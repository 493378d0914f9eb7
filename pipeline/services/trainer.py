"""The Trainer loop: merge retrain requests, train on original + labelled events, gate, announce.

Requests are committed only after the training that answers them is announced, so a Trainer
killed mid-training serves the same requests again after its restart. Requests that arrive
while a training runs wait in Kafka and are merged into one follow-up run. A request that can
never be honoured (another topic, a partition the topic lacks) is rejected with a
`training_failed` naming it; one whose trainings keep failing is given up after
`--retrain-max-attempts`; both are committed past, so neither can stop retraining. Only
committed records are read (read_committed): a request or an event from an aborted upstream
transaction never happened.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.data import TabularData, load_data
from pipeline.core.messages import (
    ModelReady,
    RetrainRequest,
    TrainingFailed,
    TrainingStarted,
    to_json,
)
from pipeline.errors import InfrastructureError, RegistryError
from pipeline.kafka_io.clients import (
    GroupPoller,
    failure,
    finish_stalled_rebalance,
    group_membership,
    make_consumer,
    make_producer,
    require_topic,
)
from pipeline.kafka_io.event_reader import input_partitions
from pipeline.registry import lifecycle, tracking
from pipeline.services import retrain
from pipeline.services.health import HealthState, serve_health
from pipeline.services.metrics import RETRAIN_REASONS, TrainerMetrics
from pipeline.services.retrain_queue import RetrainQueue, Waiting, why_unanswerable
from pipeline.services.shadow_judge import ShadowJudge

log = logging.getLogger(__name__)

ROLE = "trainer"  # its ACLs: python -m pipeline.kafka_io.acls --role trainer


class Trainer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trainings = 0
        self.failures = 0
        self.rejected = 0
        self.given_up = 0
        self.metrics = TrainerMetrics()
        self.health = HealthState(needs_partitions=False)
        self.judge: ShadowJudge  # made in run(), with the producer its verdicts go out with
        self._commit_owed = False  # requests answered, their commit not yet through

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        settings = self.settings
        data = load_data(
            settings.pipeline_spec, settings.data_folder, allow_download=settings.allow_download
        )
        tracking.connect(settings)
        consumer = make_consumer(
            settings,
            "trainer",
            **group_membership(settings, settings.trainer_group),
            max_poll_interval_ms=60 * 60 * 1000,
            isolation_level="read_committed",
        )
        producer = make_producer(settings, "trainer")
        queue = RetrainQueue(settings.retrain_max_attempts, settings.retry_backoff_s)
        server = serve_health(self.settings.metrics_port, self.health, self.metrics.registry)
        self.judge = ShadowJudge(
            settings, self.metrics, lambda news: self._announce(producer, news)
        )
        try:
            require_topic(consumer, settings.retrain_topic, settings, ROLE)
            consumer.subscribe([settings.retrain_topic])
            self.judge.start()
            self.health.model_checked = True
            if ready is not None:
                ready.set()
            poller = GroupPoller(consumer)
            while not stop.is_set():
                self._received(queue.collect(poller.poll(timeout_ms=300)))
                finish_stalled_rebalance(consumer)
                self.health.beat()
                self.health.partitions = frozenset(tp.partition for tp in consumer.assignment())
                if queue.due():
                    self._serve(queue, data, producer)
                    self._commit_owed = True
                if self._commit_owed:
                    self._commit(queue, consumer)
                self._judge_challenger()
        except KafkaError as exc:
            doing = (
                f"serving requests from {settings.retrain_topic} in group {settings.trainer_group}"
            )
            raise failure(exc, settings, doing, ROLE, group=settings.trainer_group) from exc
        finally:
            if server is not None:
                server.stop()
            self.judge.close()
            producer.close(timeout=10)
            consumer.close(autocommit=False)

    def _judge_challenger(self, settle: bool = False) -> None:
        """Registry trouble postpones a verdict; the evidence stays and is judged again."""
        try:
            if settle:
                self.judge.settle()
            else:
                self.judge.step()
        except RegistryError as exc:
            log.warning("the challenger's verdict waits for the registry: %s", exc)

    def _settle_challenger(self) -> None:
        self._judge_challenger(settle=True)

    def _received(self, requests: list[RetrainRequest]) -> None:
        for request in requests:
            # A bounded label set: a request's reason is free text from any producer.
            known = request.reason in RETRAIN_REASONS
            self.metrics.requests.labels(reason=request.reason if known else "other").inc()

    def _serve(self, queue: RetrainQueue, data: TabularData, producer: KafkaProducer) -> None:
        run = queue.next_run()
        started = time.monotonic()
        self.health.busy = f"training for {len(run)} request(s)"
        try:
            run = self._reject_unanswerable(queue, run, producer)
            if not run:
                return
            outcomes = self._answer([w.request for w in run], data, producer)
        except Exception as exc:  # a failed training is news, not a crash: announce and retry
            self._failed(queue, run, exc, producer)
            return
        finally:
            self.health.busy = None
        self.metrics.training.observe(time.monotonic() - started)
        for outcome in outcomes:
            self._measure(outcome)
            self._announce(producer, outcome)
        queue.succeeded(run)

    def _measure(self, outcome: ModelReady) -> None:
        m = self.metrics
        m.outcomes.labels(outcome="promoted" if outcome.promoted else "kept").inc()
        if "auc" in outcome.metrics:
            m.holdout_auc.labels(model="candidate").set(outcome.metrics["auc"])
        if "auc" in outcome.champion_metrics:
            m.holdout_auc.labels(model="champion").set(outcome.champion_metrics["auc"])
        try:
            champion = tracking.champion_version(self.settings)
        except RegistryError as exc:  # a gauge is no reason to stop before the announcement
            log.warning("the champion gauge waits for the registry: %s", exc)
            return
        if champion is not None:
            m.champion.set(champion)

    def _reject_unanswerable(
        self, queue: RetrainQueue, run: list[Waiting], producer: KafkaProducer
    ) -> list[Waiting]:
        """Requests that can never be honoured are announced as failed and leave the queue."""
        partitions = input_partitions(self.settings)
        answerable = []
        for waiting in run:
            reason = why_unanswerable(waiting.request, self.settings.input_topic, partitions)
            if not reason:
                answerable.append(waiting)
                continue
            self.rejected += 1
            self.metrics.outcomes.labels(outcome="rejected").inc()
            log.warning("rejected retrain request %s: %s", waiting.request.request_id, reason)
            self._announce_failed(producer, f"rejected: {reason}", [waiting])
            queue.remove([waiting])
        return answerable

    def _failed(
        self, queue: RetrainQueue, run: list[Waiting], exc: Exception, producer: KafkaProducer
    ) -> None:
        """Kafka or MLflow away is retried for as long as it takes; any other failure counts
        against the requests of the run, which are given up after their last attempt."""
        self.failures += 1
        self.metrics.outcomes.labels(outcome="failed").inc()
        log.error("training failed: %s", exc, exc_info=exc)
        self._announce_failed(producer, f"{type(exc).__name__}: {exc}", run)
        spent = queue.failed(run, counts=not isinstance(exc, InfrastructureError))
        if spent:
            self.given_up += len(spent)
            self.metrics.outcomes.labels(outcome="given_up").inc(len(spent))
            attempts = self.settings.retrain_max_attempts
            log.error("gave up %d request(s) after %d failed attempts", len(spent), attempts)
            self._announce_failed(producer, f"given up after {attempts} failed attempts", spent)

    def _commit(self, queue: RetrainQueue, consumer: KafkaConsumer) -> None:
        """Past the requests just answered; with the broker away, again on the next rounds.

        kafka-python 3.0.12's `commit()` lets a failed coordinator lookup escape as a retriable
        KafkaConnectionError in the first moments of an outage (a probe against a stopped
        broker: raised after 0.8 s; issued a second later it waited for the broker instead),
        which stopped the Trainer with exit code 4. The answers are already out: a commit that
        lands late costs nothing, and one lost with a crash only replays requests that the
        registry shows as answered."""
        offsets = queue.commit_point()
        if offsets:
            try:
                consumer.commit(offsets)
            except KafkaError as exc:
                if not getattr(exc, "retriable", False):
                    raise
                log.warning("committing the answered requests waits for the broker: %s", exc)
                return
            queue.committed(offsets)
        self._commit_owed = False

    def _answer(
        self, requests: list[RetrainRequest], data: TabularData, producer: KafkaProducer
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
            outcomes.append(
                retrain.retrain(
                    self.settings, fresh, data, self.trainings + 1, self._settle_challenger
                )
            )
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

    def _announce_failed(
        self, producer: KafkaProducer, reason: str, requests: list[Waiting]
    ) -> None:
        ids = retrain.request_ids([w.request for w in requests])
        self._announce(producer, TrainingFailed(reason[:2000], len(requests), request_ids=ids))

    def _announce(self, producer: KafkaProducer, message: object) -> None:
        producer.send(
            self.settings.retrain_topic,
            value=to_json(message),
            key=self.settings.model_name.encode(),
        ).get(timeout=30)
