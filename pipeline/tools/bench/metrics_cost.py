"""What watching costs: the scoring loop's CPU per batch with and without its instruments and
its monitoring (quality windows, drift windows, Prometheus updates, and the MLflow writes of
quality windows, to the served version's run in the benchmark's store), in-process.

The extra CPU per event is then set against what an event costs a saturated Predictor, from
the throughput measured in the same run. CPU time of this process, not wall time: on two cores
shared with a broker, wall time moves by 20 %.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from typing import Any

from pipeline.config.settings import Settings
from pipeline.core.batching import ServingModel, score_batch
from pipeline.core.events import EventDecoder, encode_event
from pipeline.registry.online import log_window, version_record
from pipeline.services.collector import settle_collector
from pipeline.services.label_join import JoinState
from pipeline.services.metrics import Instruments, PredictorMetrics
from pipeline.services.monitoring import LiveMonitor, RegistryWriter


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def _batches(rows: list[dict[str, Any]], events: int, size: int) -> list[list[Record]]:
    stamp = int(time.time() * 1000)
    records = [
        Record("in", 0, i, None, encode_event(f"r{i}", rows[i % len(rows)]), stamp)
        for i in range(events)
    ]
    return [records[i : i + size] for i in range(0, events, size)]


def _pass(
    batches: list[list[Record]],
    serving: ServingModel,
    writer: RegistryWriter | None,
    settings: Settings,
) -> tuple[float, float]:
    """CPU seconds of the whole pass, and of the monitoring calls alone (0 when not watched).
    The writer's own CPU (another thread) is counted by the caller."""
    metrics = PredictorMetrics()
    instruments = Instruments(metrics, serving.name)
    labels = JoinState(settings.label_ttl_s, settings.label_state_max)
    decoder = EventDecoder(settings.pipeline_spec.schema, settings.max_event_bytes)
    monitor = LiveMonitor(settings, metrics, writer) if writer is not None else None
    watching = 0.0
    started = time.thread_time()
    for batch in batches:
        result = score_batch(batch, serving, decoder, "bench")
        if monitor is not None:  # what the Predictor's loop adds per batch, in the same order
            before = time.thread_time()
            instruments.after_poll(serving.version, 0)
            late = labels.drain()
            monitor.observe(serving.version, serving.model.profile, result, late)
            instruments.after_batch(batch, len(result.predictions), [], 0.001, time.time() * 1000)
            watching += time.thread_time() - before
    return time.thread_time() - started, watching


def metrics_cost(
    settings: Settings, serving: ServingModel, rows: list[dict[str, Any]], events: int, rounds: int
) -> dict[str, Any]:
    """Two estimates over alternating rounds. Direct: the CPU time of the monitoring calls
    themselves (median over rounds), steady to a few percent. Paired: the fastest watched pass
    minus the fastest bare one, which also catches indirect costs (the collector, caches) but
    moves by 10 % a round on a shared VM. The larger of the two is the figure."""
    settings = replace(settings, retrain_min_interval_s=1e9)  # measure, never ask
    batches = _batches(rows, events, settings.batch_size)
    # As a Predictor does once started: what lives as long as the process (here the prepared
    # batches too) is kept out of the collector's full passes, which would otherwise charge
    # whichever variant allocates more for rescanning it, and the young generation is as large.
    settle_collector()
    # One writer for every watched pass, as a Predictor keeps one: its MLflow writes (at most
    # one per --quality-log-interval-s) spread over all of them, as over a Predictor's run.
    writer = RegistryWriter(
        lambda v: version_record(settings, v), log_window, settings.quality_log_interval_s
    )
    writer.look_up(serving.version)  # as the Predictor does at start-up, before any event
    bare, watched, direct = [], [], []
    for _ in range(rounds):
        bare.append(_pass(batches, serving, None, settings)[0])
        total, watching = _pass(batches, serving, writer, settings)
        watched.append(total)
        direct.append(watching * 1e6 / events)
    # The writes made while the passes ran; the one at close is a Predictor's last act (once
    # in its life), not a cost of each event.
    writing = writer.cpu_s * 1e6 / (events * rounds)
    writer.close()
    direct = [d + writing for d in direct]
    paired = (min(watched) - min(bare)) * 1e6 / events + writing
    per_round = [(w - b) * 1e6 / events for w, b in zip(watched, bare, strict=True)]
    return {
        "events": events,
        "rounds": rounds,
        "scoring_us_per_event": round(min(bare) * 1e6 / events, 2),
        "direct_us_per_event": round(statistics.median(direct), 3),
        "mlflow_us_per_event": round(writing, 3),
        "direct_us_min_max": [round(min(direct), 3), round(max(direct), 3)],
        "paired_us_per_event": round(paired, 3),
        "extra_us_per_event": round(max(statistics.median(direct), paired), 3),
        "extra_us_min_max": [round(min(per_round), 3), round(max(per_round), 3)],
        "trees": serving.model.booster.num_trees(),
    }


def share_of_predictor(cost: dict[str, Any], predictor_eps: float) -> float:
    """The extra CPU per event against what one event costs a saturated Predictor (its whole
    loop: fetch, decode, score, publish, commit), from the throughput measured in the same run."""
    return float(cost["extra_us_per_event"]) * predictor_eps / 1e6


def join_state_mb(settings: Settings) -> dict[str, float]:
    """The late-label join's memory at its limit: both maps full (predictions waiting for their
    label, and as many early labels), request ids as the sample app spells them."""
    import tracemalloc

    from pipeline.services.label_join import JoinState

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    state = JoinState(settings.label_ttl_s, settings.label_state_max)
    n = settings.label_state_max
    state.predicted(1, ((f"{i:08x}-{i}", 0.5 + i / (4 * n)) for i in range(n)))
    state.labelled((f"early-{i:08x}-{i}", i % 2) for i in range(n))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"entries_per_side": n, "mb": round(used / 2**20, 1)}
