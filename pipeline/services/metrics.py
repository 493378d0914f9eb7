"""Every metric the services expose, named once, by Prometheus conventions.

Each process has its own registry (so in-process tests never collide). Updates are per batch,
not per event: a counter is increased by the batch's count, and latencies are sampled with a
stride, so measuring costs the loop a few microseconds per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline.core.messages import REASON_BY_HAND, REASON_COUNT, REASON_DRIFT, REASON_QUALITY

PREFIX = "pipeline"
# Fine enough for 1-50 ms, where a Predictor's latencies live, with a tail up to 2.5 s.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0, 2.5,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
# Each observation costs a histogram update (about 5 us, a lock and two counters): a full batch
# of 500 sampled 32 times spent 0.35 us an event on it, more than the quality windows. Eight
# still give a few hundred samples a second at full speed, and every event of small batches.
LATENCY_SAMPLES_PER_BATCH = 8


class PredictorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            f"{PREFIX}_events_consumed", "Events read from the input topic", registry=r
        )
        self.scored = Counter(f"{PREFIX}_events_scored", "Events scored and published", registry=r)
        self.dead_lettered = Counter(
            f"{PREFIX}_events_dead_lettered", "Events sent to the DLQ", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size_events",
            "Events per micro-batch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.scoring = Histogram(
            f"{PREFIX}_scoring_seconds",
            "Decoding, validation and predict time of one micro-batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_scored = Histogram(
            f"{PREFIX}_event_to_scored_seconds",
            "From the event's Kafka timestamp to its score (sampled per batch)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            f"{PREFIX}_consumer_lag_events",
            "Events waiting per input partition",
            ["partition"],
            registry=r,
        )
        self.model_info = Gauge(
            f"{PREFIX}_model_info",
            "The model in service (value 1)",
            ["name", "version"],
            registry=r,
        )
        self.swaps = Counter(f"{PREFIX}_model_swaps", "Hot-swaps to another version", registry=r)
        self.refused = Counter(
            f"{PREFIX}_models_refused", "Versions refused at their checks", registry=r
        )
        self.retrain_requests = Counter(
            f"{PREFIX}_retrain_requests", "Retrain requests sent", ["reason"], registry=r
        )
        for reason in (REASON_COUNT, REASON_DRIFT, REASON_QUALITY):
            self.retrain_requests.labels(reason=reason)
        self.online_quality = Gauge(
            f"{PREFIX}_online_quality",
            "A model version's quality over its last window of labelled live events",
            ["version", "metric"],
            registry=r,
        )
        self.online_quality_ewma = Gauge(
            f"{PREFIX}_online_quality_ewma",
            "EWMA of the online quality over `span` windows",
            ["version", "metric", "span"],
            registry=r,
        )
        self.labels_joined = Counter(
            f"{PREFIX}_labels_joined",
            "Late labels (labels topic) joined to this instance's predictions",
            registry=r,
        )
        self.label_join_waiting = Gauge(
            f"{PREFIX}_label_join_waiting",
            "Predictions waiting for a label, and labels waiting for a prediction",
            ["side"],
            registry=r,
        )
        self.drift_js = Gauge(
            f"{PREFIX}_drift_js_distance",
            "Jensen-Shannon distance of the last live window from the training profile",
            ["feature"],
            registry=r,
        )
        self.drift_psi = Gauge(
            f"{PREFIX}_drift_psi",
            "Population stability index of the last live window against the training profile",
            ["feature"],
            registry=r,
        )
        self.drift_over = Gauge(
            f"{PREFIX}_drift_windows_over_threshold",
            "Consecutive windows in which the feature drifted past the threshold",
            ["feature"],
            registry=r,
        )

    def serving(self, name: str, version: int) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=str(version)).set(1)


TRAINING_OUTCOMES = ("promoted", "kept", "failed", "rejected", "given_up")
RETRAIN_REASONS = (REASON_COUNT, REASON_BY_HAND, REASON_DRIFT, REASON_QUALITY)
TRAINING_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)


class TrainerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_trainer_requests", "Retrain requests received", ["reason"], registry=r
        )
        self.training = Histogram(
            f"{PREFIX}_training_seconds",
            "Wall time of one training: data, tuning, fit, evaluation, registration, gate",
            buckets=TRAINING_BUCKETS,
            registry=r,
        )
        self.outcomes = Counter(
            f"{PREFIX}_trainings",
            "Trainings by outcome: promoted, kept (the gate refused), failed, rejected, given_up",
            ["outcome"],
            registry=r,
        )
        self.holdout_auc = Gauge(
            f"{PREFIX}_last_holdout_auc",
            "Holdout AUC of the last candidate and of the champion it was judged against",
            ["model"],
            registry=r,
        )
        self.champion = Gauge(
            f"{PREFIX}_champion_version",
            "The version @champion named after the last training",
            registry=r,
        )
        self.shadow_labelled = Gauge(
            f"{PREFIX}_shadow_labelled_events",
            "Labelled events on which @challenger and @champion were both scored",
            registry=r,
        )
        self.shadow_quality = Gauge(
            f"{PREFIX}_shadow_quality",
            "Champion and challenger on the same labelled shadow events",
            ["model", "metric"],
            registry=r,
        )
        self.shadow_agreement = Gauge(
            f"{PREFIX}_shadow_agreement",
            "Share of shadow events where both models give the same label",
            registry=r,
        )
        self.shadow_decisions = Counter(
            f"{PREFIX}_shadow_decisions",
            "Challengers judged on live evidence: promoted or retired",
            ["decision"],
            registry=r,
        )
        for decision in ("promoted", "retired"):
            self.shadow_decisions.labels(decision=decision)
        # Known label values start at zero (NaN for figures not known yet), so a dashboard shows
        # "none so far" rather than "no data", and rate() sees the first increase.
        for outcome in TRAINING_OUTCOMES:
            self.outcomes.labels(outcome=outcome)
        for reason in RETRAIN_REASONS:
            self.requests.labels(reason=reason)
        for model in ("candidate", "champion"):
            self.holdout_auc.labels(model=model).set(float("nan"))
        self.champion.set(float("nan"))


def dlq_reason_label(reason: str) -> str:
    """A bounded label: the reason's kind, not its text (which names values and sizes)."""
    lowered = reason.lower()
    for kind in ("not valid utf-8 json", "missing field", "exceeds the limit", "expected one of"):
        if kind in lowered:
            return kind.replace(" ", "_")
    if "expected" in lowered or "must be" in lowered or "length" in lowered:
        return "invalid_value"
    return "other"


class Instruments:
    """What the scoring loop reports, in the two calls it makes per batch."""

    def __init__(self, metrics: PredictorMetrics, name: str) -> None:
        self.metrics = metrics
        self.name = name
        self.version = -1
        self.refused_seen = 0

    def after_poll(self, version: int, refused: int) -> None:
        if version != self.version:
            if self.version != -1:
                self.metrics.swaps.inc()
            self.metrics.serving(self.name, version)
            self.version = version
        if refused > self.refused_seen:
            self.metrics.refused.inc(refused - self.refused_seen)
            self.refused_seen = refused

    def after_batch(
        self,
        records: Sequence[object],
        scored: int,
        dlq_reasons: Sequence[str],
        scoring_s: float,
        scored_at_ms: float,
    ) -> None:
        """`records`: the batch as polled; only a stride of them is read for latencies."""
        m = self.metrics
        m.consumed.inc(len(records))
        m.batch_size.observe(len(records))
        m.scoring.observe(scoring_s)
        if scored:
            m.scored.inc(scored)
        for reason in dlq_reasons:
            m.dead_lettered.labels(reason=dlq_reason_label(reason)).inc()
        stride = max(1, len(records) // LATENCY_SAMPLES_PER_BATCH)
        for record in records[::stride]:
            stamp = getattr(record, "timestamp", 0)
            if stamp > 0:
                m.event_to_scored.observe(max(scored_at_ms - stamp, 0.0) / 1000)

    def lag(self, per_partition: Mapping[int, int]) -> None:
        for partition, waiting in per_partition.items():
            self.metrics.lag.labels(partition=str(partition)).set(waiting)
