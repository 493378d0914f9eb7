"""Capacity on paper: what an event rate needs, from figures measured on this project's machine.

The numbers that size a deployment (events/s of one Predictor, its memory, what a retrain costs)
were measured by `make bench` and by hand; they live here once, named and cited, so that the
Kubernetes manifests (replicas, KEDA's lagThreshold, resources) and the README's table come from
the same arithmetic. Nothing here talks to Kafka or MLflow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.kafka_io.event_reader import READ_TIMEOUT_S

# ---- measured: README "Performance", `make bench` at commit 6a2fd22, 2026-11-24 (x86_64, 2 cores
# shared with a single Kafka 4.1.1 broker, Python 3.11.7, a 143-tree @champion) ----
PREDICTOR_EPS = 35_411  # b) one Predictor drained 200,000 events (best of 35,411 and 34,686)
PREDICTOR_CORES = 1.0  # b) on about one core: the broker had the other
CEILING_EPS = 41_408  # a) consume + produce without ML: one kafka-python process's I/O ceiling
PREDICTOR_PEAK_RSS_MB = 359  # g) peak RSS of a Predictor, a hot-swap included
# d) offered events/s to one Predictor -> end-to-end p99 ms (event sent -> prediction read)
P99_MS_AT_LOAD = ((500, 13.7), (1_000, 14.1), (2_000, 13.7), (10_000, 26.0))
SWAP_S = 0.21  # e) a hot-swap, announcement to new model serving

# ---- measured for this model by hand (issue 16, 2026-11-25, same kind of machine, shared with
# other work: CPU time of one thread, which sharing inflates far less than wall time) ----
EVENT_BYTES = 373  # mean encoded event over adult.test (`encode_event`; p99 389 bytes)
PREDICTION_BYTES = 213  # one prediction record (`prediction_record`)
TRAINER_PARSE_US = 8.1  # `EventDecoder.parse` per event: the Trainer decodes its window one by one
# How LightGBM's cost grows with the rows (fixed parameters, 200 rounds, one thread): adult.data
# copied 1x, 2x, 4x, 8x -> CPU seconds. Linear: 8x the rows cost 8.4x.
TRAIN_CPU_S_AT_ROWS = ((32_561, 1.34), (65_122, 2.58), (130_244, 5.82), (260_488, 11.25))
# Memory of a window as the Trainer holds it: 200,000 parsed events (Event objects) and their
# `events_frame` took 97.6 + 27.1 MB per 100,000 events.
TRAINER_KB_PER_EVENT = 1.25
ADULT_TRAIN_ROWS = 32_561  # adult.data: every retrain trains on it plus the window

# ---- measured by `make bench-retrain-window` at commit 416798a, 2026-12-02 (x86_64, 2 cores, a
# slower machine than the one above): a retrain with the Trainer's defaults (6 trials, 3 folds)
# over a 50,000-event window, request -> model_ready: 223.9 s with 100,000 events in the topic,
# 192.7 s with 1,000,000. The slower of the two, for a window of this size. ----
RETRAIN_TURNAROUND_S = 223.9
RETRAIN_MEASURED_WINDOW = 50_000

# ---- docs/architecture.md, "Facts measured on this kind of machine" ----
CONSUMER_RAW_EPS = 127_000  # kafka-python consumer, raw, large fetches

# ---- planning choices (why: see each) ----
# One bench round moves by 20-40 % on the measuring machine, and a Predictor must catch up after
# a restart or a rebalance while the stream goes on: plan each one at 60 % of what it measured.
UTILISATION = 0.6
MIN_REPLICAS = 2  # the PodDisruptionBudget (maxUnavailable 1) keeps one serving during a drain
MIN_PARTITIONS = 4  # the project's default (`--input-partitions`)
SCALE_OUT_FACTOR = 2  # partitions leave room for KEDA to double the Predictors to drain a backlog
LAG_SECONDS = 1.0  # KEDA adds a Predictor when each one is more than this much work behind
# The Trainer's memory limit in deploy/base/trainer-deployment.yaml (a unit test keeps them equal);
# its imports cost about what a Predictor's do (PREDICTOR_PEAK_RSS_MB), the window the rest.
TRAINER_MEMORY_LIMIT_MB = 2048


def planned_eps() -> float:
    """Events/s one Predictor is planned for (a fraction of what one measured)."""
    return PREDICTOR_EPS * UTILISATION


def lag_threshold() -> int:
    """KEDA's lagThreshold (target lag per replica): one `LAG_SECONDS` of planned work."""
    return int(planned_eps() * LAG_SECONDS) // 1000 * 1000


def broker_record_ops_per_core() -> float:
    """A lower bound: in a) the broker served every write and read (41,408 events/s in and out)
    on at most one core, the client using the other. Cores computed from it are an upper estimate.
    """
    return 2.0 * CEILING_EPS


def trainer_read_eps() -> float:
    """How fast a Trainer reads its window: the consumer's raw rate plus decoding each event."""
    return 1.0 / (1.0 / CONSUMER_RAW_EPS + TRAINER_PARSE_US / 1e6)


def train_growth(rows: int) -> float:
    """Training cost at `rows` over its cost at adult.data's rows (a least-squares line through
    the measured points), to scale the bench's retrain turnaround to a bigger window."""
    n = len(TRAIN_CPU_S_AT_ROWS)
    mean_x = sum(x for x, _ in TRAIN_CPU_S_AT_ROWS) / n
    mean_y = sum(y for _, y in TRAIN_CPU_S_AT_ROWS) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in TRAIN_CPU_S_AT_ROWS) / sum(
        (x - mean_x) ** 2 for x, _ in TRAIN_CPU_S_AT_ROWS
    )

    def line(x: float) -> float:
        return mean_y + slope * (x - mean_x)

    return line(rows) / line(ADULT_TRAIN_ROWS)


def p99_ms(events_per_s_per_predictor: float) -> float | None:
    """The measured p99 at the smallest measured load not below this one; None above them all."""
    for load, p99 in P99_MS_AT_LOAD:
        if events_per_s_per_predictor <= load:
            return p99
    return None


@dataclass(frozen=True)
class Plan:
    events_per_s: float
    replicas: int  # Predictors for the rate at the planned utilisation (KEDA's minReplicaCount)
    partitions: int  # input partitions (KEDA's maxReplicaCount: an idle consumer helps no one)
    lag_threshold: int
    predictor_cores: float
    predictor_memory_mb: int
    p99_ms: float | None  # measured p99 at the load of one Predictor; None: not measured that high
    broker_mb_s_in: float  # events + predictions written, before replication
    broker_cores: float  # upper estimate (see broker_record_ops_per_core)
    window_events: int  # events a retrain reads: the retained ones, at most the retrain window
    trainer_read_s: float
    trainer_memory_mb: int
    retrain_s: float
    registry_reads_per_s: float
    saturates_at: dict[str, float] = field(default_factory=dict)  # events/s where each part is full
    first_bottleneck: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON: a part that never saturates is null, not Infinity."""
        values = asdict(self)
        values["saturates_at"] = {
            part: None if math.isinf(rate) else rate for part, rate in self.saturates_at.items()
        }
        return values


def plan(
    events_per_s: float,
    *,
    retention_s: float = 3600.0,
    labelled_fraction: float = 1.0,
    broker_cores: float = 6.0,
    replication_factor: int = 3,
    alias_poll_s: float = 10.0,
    retrain_window_events: int = 50_000,
) -> Plan:
    """Size the pipeline for `events_per_s` and say which part fills up first as the rate grows.

    A retrain reads the most recent `retrain_window_events` input events (the Trainer's
    `--retrain-window-events`), or fewer if the topic retains fewer (`retention_s`), and trains
    on the labelled ones among them. `broker_cores` is what the Kafka cluster gives this pipeline.
    """
    if events_per_s <= 0:
        raise ValueError("events_per_s must be positive")
    replicas = max(MIN_REPLICAS, math.ceil(events_per_s / planned_eps()))
    partitions = max(MIN_PARTITIONS, SCALE_OUT_FACTOR * replicas)
    # every event is written twice (event, prediction) and read twice (Predictor, a downstream
    # reader); each write is replicated to replication_factor brokers
    ops_per_event = 2 * replication_factor + 2
    ops_per_core = broker_record_ops_per_core()
    window = int(min(events_per_s * retention_s, retrain_window_events))
    rows = int(window * labelled_fraction)
    read_s = window / trainer_read_eps()
    memory_room = (TRAINER_MEMORY_LIMIT_MB - PREDICTOR_PEAK_RSS_MB) * 1024 / TRAINER_KB_PER_EVENT
    saturates = {
        "predictor CPU": partitions * PREDICTOR_EPS,
        "broker": broker_cores * ops_per_core / ops_per_event,
        # a window read slower than the reader's timeout fails the retrain
        "trainer window": _window_limit(
            READ_TIMEOUT_S * trainer_read_eps(), retention_s, retrain_window_events
        ),
        # labelled rows beyond the memory limit get the Trainer killed
        "trainer memory": _window_limit(
            memory_room / labelled_fraction if labelled_fraction > 0 else math.inf,
            retention_s,
            retrain_window_events,
        ),
        "registry": math.inf,  # its load grows with Predictors and retrains, not with events
    }
    return Plan(
        events_per_s=events_per_s,
        replicas=replicas,
        partitions=partitions,
        lag_threshold=lag_threshold(),
        predictor_cores=replicas * PREDICTOR_CORES,
        predictor_memory_mb=replicas * PREDICTOR_PEAK_RSS_MB,
        p99_ms=p99_ms(events_per_s / replicas),
        broker_mb_s_in=events_per_s * (EVENT_BYTES + PREDICTION_BYTES) / 1e6,
        broker_cores=events_per_s * ops_per_event / ops_per_core,
        window_events=window,
        trainer_read_s=read_s,
        trainer_memory_mb=round(PREDICTOR_PEAK_RSS_MB + rows * TRAINER_KB_PER_EVENT / 1024),
        # the bench's whole turnaround scaled with the rows: registration and the gate do not
        # grow, so this over- rather than underestimates
        retrain_s=read_s
        + RETRAIN_TURNAROUND_S
        * train_growth(ADULT_TRAIN_ROWS + rows)
        / train_growth(ADULT_TRAIN_ROWS + RETRAIN_MEASURED_WINDOW),
        registry_reads_per_s=replicas / alias_poll_s,
        saturates_at=saturates,
        first_bottleneck=min(saturates, key=lambda part: saturates[part]),
    )


def _window_limit(room_events: float, retention_s: float, window_cap: int) -> float:
    """The rate at which the events a retrain reads outgrow `room_events`: never, if even a
    full window fits; else when the retained events (rate x retention) reach the room."""
    if window_cap <= room_events or retention_s <= 0:
        return math.inf
    return room_events / retention_s


def _rate(value: float) -> str:
    return "unbounded" if math.isinf(value) else f"{value:,.0f} events/s"


def format_plan(p: Plan) -> str:
    p99 = f"{p.p99_ms:.1f} ms" if p.p99_ms is not None else "not measured at this load"
    read_note = (
        " (over the read timeout: the retrain fails)" if p.trainer_read_s > READ_TIMEOUT_S else ""
    )
    lines = [
        f"capacity for {p.events_per_s:,.0f} events/s (figures: README Performance, "
        "pipeline/ops/capacity.py)",
        f"  Predictors      {p.replicas} (each planned at {planned_eps():,.0f} of a measured "
        f"{PREDICTOR_EPS:,} events/s), {p.predictor_cores:g} cores, {p.predictor_memory_mb:,} MB",
        f"  partitions      {p.partitions} (KEDA maxReplicaCount; lagThreshold {p.lag_threshold:,})",
        f"  latency         p99 {p99} at {p.events_per_s / p.replicas:,.0f} events/s per Predictor",
        f"  broker          {p.broker_mb_s_in:.1f} MB/s written before replication, "
        f"at most {p.broker_cores:.1f} cores",
        f"  trainer         window {p.window_events:,} events, read in {p.trainer_read_s:,.0f} s"
        f"{read_note}; {p.trainer_memory_mb:,} MB; retrain about {p.retrain_s:,.0f} s",
        f"  registry        {p.registry_reads_per_s:.1f} alias reads/s; one model load per "
        "Predictor per promotion",
        "  saturates at    "
        + ", ".join(f"{part} {_rate(rate)}" for part, rate in p.saturates_at.items()),
        f"  first bottleneck: {p.first_bottleneck}",
    ]
    return "\n".join(lines)


def markdown_table(
    rates: tuple[float, ...] = (1_000, 10_000, 50_000, 100_000), **options: Any
) -> str:
    """The README's tables: `plan(rate, **options)` for each rate."""
    rows = [
        "| events/s | Predictors | partitions | cores / memory | p99 | broker MB/s, cores | "
        "trainer window, read, memory, retrain | first to fill |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rate in rates:
        p = plan(rate, **options)
        p99 = f"{p.p99_ms:.1f} ms" if p.p99_ms is not None else "not measured"
        rows.append(
            f"| {rate:,.0f} | {p.replicas} | {p.partitions} | {p.predictor_cores:g} / "
            f"{p.predictor_memory_mb:,} MB | {p99} | {p.broker_mb_s_in:.1f}, "
            f"{p.broker_cores:.1f} | {p.window_events / 1e6:,.1f}M, {p.trainer_read_s:,.0f} s, "
            f"{p.trainer_memory_mb / 1024:,.1f} GB, {p.retrain_s / 60:,.0f} min | "
            f"{p.first_bottleneck} at {_rate(p.saturates_at[p.first_bottleneck])} |"
        )
    return "\n".join(rows)
