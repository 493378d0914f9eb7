"""The Trainer judges `@challenger` on live evidence: the shadow topic's labelled events.

It reads the whole shadow topic from its beginning (assigned, no group): after a restart the
evidence is rebuilt from the log, and verdicts already carried out are not repeated because
the aliases no longer name that pair. Once a (champion, challenger) pair has
`--shadow-min-labelled` labelled events, the offline gate's paired test decides: the
challenger becomes `@champion`, or it is retired (alias cleared, reason on the version and its
run). Either way every Predictor hears it on the retrain topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.core.messages import MessageError, ModelReady, now_ms, parse_shadow
from pipeline.core.shadow_evidence import Pair, ShadowEvidence
from pipeline.kafka_io.clients import make_consumer, read_partitions
from pipeline.registry import tracking
from pipeline.registry.challenger import challenger_version, clear_challenger, log_shadow
from pipeline.services.gatekeeper import gate_config
from pipeline.services.metrics import TrainerMetrics

log = logging.getLogger(__name__)

LOG_EVERY = 500  # labelled events between two points of the comparison in MLflow


class ShadowJudge:
    def __init__(
        self, settings: Settings, metrics: TrainerMetrics, announce: Callable[[ModelReady], None]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.announce = announce
        self.evidence = ShadowEvidence(
            settings.shadow_min_labelled, settings.pipeline_spec.schema.labels
        )
        self.decisions: list[dict[str, Any]] = []
        self._consumer: KafkaConsumer | None = None
        self._logged: dict[Pair, int] = {}

    def start(self) -> None:
        consumer = make_consumer(self.settings, "trainer-shadow", isolation_level="read_committed")
        topic = self.settings.shadow_topic
        partitions = [TopicPartition(topic, p) for p in read_partitions(consumer, topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        log.info("judging @challenger on %s (%d partitions)", topic, len(partitions))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()

    def settle(self, within_s: float = 5.0) -> None:
        """Everything the shadow topic holds now, judged: before a retrain moves the alias, the
        challenger it would replace is judged on all the evidence it gathered."""
        deadline = time.monotonic() + within_s
        while self.step(timeout_ms=300) and time.monotonic() < deadline:
            pass

    def step(self, timeout_ms: int = 0) -> int:
        """What arrived since the last step (how many records); a verdict for every pair that
        has enough."""
        assert self._consumer is not None
        touched: set[Pair] = set()
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=5000)
        count = sum(len(records) for records in polled.values())
        for records in polled.values():
            for record in records:
                try:
                    batch = parse_shadow(record.value)
                except MessageError as exc:
                    log.warning("skipped a record on %s: %s", self.settings.shadow_topic, exc)
                    continue
                if batch.model_name != self.settings.model_name:
                    continue  # another pipeline's challenger
                pair = self.evidence.add(batch)
                if pair is not None:
                    touched.add(pair)
        for pair in touched:
            self._publish(pair)
            if self.evidence.ready(pair):
                self._judge(pair)
        return count

    def _publish(self, pair: Pair) -> None:
        figures = self.evidence.figures(pair)
        m = self.metrics
        m.shadow_labelled.set(figures["labelled"])
        m.shadow_agreement.set(figures["agreement"])
        for key, value in figures.items():
            model, _, metric = key.partition("_")
            if model in ("champion", "challenger"):
                m.shadow_quality.labels(model=model, metric=metric).set(value)
        labelled = int(figures["labelled"])
        if labelled // LOG_EVERY > self._logged.get(pair, 0) // LOG_EVERY:
            log_shadow(self.settings, pair[1], figures, labelled)
            self._logged[pair] = labelled

    def _judge(self, pair: Pair) -> None:
        champion, challenger = pair
        s = self.settings
        if tracking.champion_version(s) != champion or challenger_version(s) != challenger:
            log.info("shadow evidence of v%d against v%d is moot: the aliases moved", *pair[::-1])
            self.evidence.forget(pair)
            return
        verdict = self.evidence.verdict(pair, gate_config(s))
        figures = self.evidence.figures(pair)
        decision = "promoted" if verdict.promoted else "retired"
        reason = f"{decision} on live evidence: {verdict.reason}"
        tags = {
            "shadow.decision": decision,
            "shadow.reason": reason[:4000],
            "shadow.labelled": str(int(figures["labelled"])),
            "shadow.champion_version": str(champion),
        }
        log_shadow(
            s, challenger, {**figures, **verdict.as_metrics()}, int(figures["labelled"]), tags
        )
        if verdict.promoted:
            tracking.set_champion(s, challenger, by="trainer (shadow)", reason=reason)
        clear_challenger(s, by="trainer (shadow)", reason=reason, expected=challenger)
        self.metrics.shadow_decisions.labels(decision=decision).inc()
        self.decisions.append(
            {"version": challenger, "labelled": int(figures["labelled"]), "decision": decision}
        )
        log.info(
            "challenger version %d %s (champion %d): %s", challenger, decision, champion, reason
        )
        self.announce(_news(s, challenger, verdict.promoted, reason, figures))
        self.evidence.forget(pair)


def _news(
    settings: Settings, version: int, promoted: bool, reason: str, figures: dict[str, float]
) -> ModelReady:
    return ModelReady(
        model_name=settings.model_name,
        version=version,
        uri=tracking.model_uri(settings.model_name, version),
        metrics={k: v for k, v in figures.items() if v == v},
        champion_metrics={},
        promoted=promoted,
        requests=0,
        end_offsets={},
        announced_at_ms=now_ms(),
        gate={"promoted": promoted, "reason": reason, "alias": "champion" if promoted else ""},
    )
