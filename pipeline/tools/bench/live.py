"""Latency under fixed offered loads, a hot-swap under load, and retrain turnaround."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.core.messages import ModelReady, RetrainRequest, to_json
from pipeline.core.stream_stats import StreamStats
from pipeline.kafka_io.admin import wait_for_members
from pipeline.kafka_io.clients import kafka_security, make_producer
from pipeline.registry import tracking
from pipeline.tools.bench.workloads import PREDICTOR, output_ledger, predictors
from pipeline.tools.sample_stream import SampleApp, sample_producer


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {
            "p50_ms": float("nan"),
            "p95_ms": float("nan"),
            "p99_ms": float("nan"),
            "max_ms": float("nan"),
        }
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(max(values)),
    }


def run_stream(
    settings: Settings,
    rows: list[dict[str, Any]],
    rate: float,
    seconds: float,
    during: Any = None,
    stop: threading.Event | None = None,
    producer: KafkaProducer | None = None,
) -> StreamStats:
    """SampleApp at a fixed rate; `during(app)` runs alongside it (the swap, for instance)."""
    live = replace(settings, rate=rate, events=int(rate * seconds), bad_every=0, drain_timeout_s=30)
    app = SampleApp(live, rows, progress=lambda _: None, producer=producer)
    helper = threading.Thread(target=during, args=(app,), daemon=True) if during else None
    if helper:
        helper.start()
    app.run(stop or threading.Event())
    if helper:
        helper.join(timeout=60)
    return app.stats


@contextmanager
def one_predictor_serving(
    settings: Settings, rows: list[dict[str, Any]], logs: Path, program: Sequence[str] = PREDICTOR
) -> Iterator[KafkaProducer]:
    """A Predictor past its start: in a stable group, with a first stream already answered by
    the upstream producer it yields, which every measured stream then sends with.

    A fresh group rebalances a few times in its first seconds, and a fresh producer's first
    records wait for its idempotent producer id (librdkafka asks again only after 500 ms when
    it asked before its connection was up): measured from their start, the latency would be
    the clients' start-up, not the pipeline's. `program`: the Predictor, or the latency floor.
    """
    with (
        predictors(settings, 1, logs, program) as processes,
        closing(sample_producer(settings)) as sender,
    ):
        wait_for_members(
            settings.bootstrap_servers,
            settings.predictor_group,
            1,
            lambda: [p for p in processes if p.poll() is not None],
            security=kafka_security(settings),
        )
        run_stream(settings, rows, rate=500, seconds=2, producer=sender)
        yield sender


def latency_at_loads(
    settings: Settings,
    rows: list[dict[str, Any]],
    loads: list[int],
    seconds: float,
    logs: Path,
    program: Sequence[str] = PREDICTOR,
) -> dict[int, dict[str, Any]]:
    with one_predictor_serving(settings, rows, logs, program) as sender:
        return {rate: _measured(settings, rows, rate, seconds, sender) for rate in loads}


def _measured(
    settings: Settings, rows: list[dict[str, Any]], rate: int, seconds: float, sender: KafkaProducer
) -> dict[str, Any]:
    stats = run_stream(settings, rows, rate, seconds, producer=sender)
    to_scored = percentiles(stats.to_scored_ms)
    return {
        **percentiles(stats.latencies_ms),
        # the p99 of each half: where the tail comes from (the halves' sum is not the p99)
        "to_scored_p99_ms": to_scored["p99_ms"],
        "to_scored_p50_ms": to_scored["p50_ms"],
        "offered_eps": rate,
        "scored_eps": round(len(stats.predictions) / max(seconds, 1e-9), 1),
        "missing": stats.missing,
        "latencies_ms": stats.latencies_ms,
    }


@dataclass(frozen=True)
class Server:
    """What answers a latency stream: a Predictor, or the floor (`bench/floor.py`)."""

    settings: Settings
    program: Sequence[str] = PREDICTOR


ROUND_KEYS = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


def latency_rounds(
    servers: Sequence[Server],
    rows: list[dict[str, Any]],
    rate: int,
    seconds: float,
    rounds: int,
    logs: Path,
) -> list[dict[str, Any]]:
    """Each server's latency at one rate: `rounds` streams each, taking turns, and the median
    of each percentile over its rounds, every round listed.

    All serve at once (each on its own topics, in its own group, idle while another is
    measured), so they take turns without restarting. One stream moves by a factor of two or
    three on 2 cores shared with the broker, most of all the first after heavy writes (floor
    p99 49.5 ms, then 13.2 / 13.2 / 14.9 ms in four rounds here): one stream of each would
    compare the machine's moments, not the servers."""
    runs: list[list[dict[str, Any]]] = [[] for _ in servers]
    with ExitStack() as stack:
        senders = [
            stack.enter_context(one_predictor_serving(s.settings, rows, logs, s.program))
            for s in servers
        ]
        for _ in range(rounds):
            for server, sender, measured in zip(servers, senders, runs, strict=True):
                measured.append(_measured(server.settings, rows, rate, seconds, sender))
    return [_median_round(measured) for measured in runs]


def _median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    numbers = [k for k, v in runs[0].items() if isinstance(v, float | int)]
    median = {k: float(np.median([r[k] for r in runs])) for k in numbers}
    return {
        **median,
        "offered_eps": runs[0]["offered_eps"],
        "missing": sum(r["missing"] for r in runs),
        "rounds": [{k: r[k] for k in ROUND_KEYS} for r in runs],
        "latencies_ms": [x for r in runs for x in r["latencies_ms"]],
    }


def swap_under_load(
    settings: Settings,
    rows: list[dict[str, Any]],
    rate: int,
    seconds: float,
    new_version: int,
    logs: Path,
) -> dict[str, Any]:
    """Announce a new version mid-stream; compare the seconds around it with steady state."""
    marks: dict[str, float] = {}

    def announce(app: SampleApp) -> None:
        time.sleep(seconds / 2)
        producer = make_producer(settings, "bench-swap")
        message = ModelReady(
            model_name=settings.model_name,
            version=new_version,
            uri=tracking.model_uri(settings.model_name, new_version),
            metrics={},
            champion_metrics={},
            promoted=True,
            requests=0,
            end_offsets={},
        )
        tracking.set_champion(settings, new_version, by="bench", reason="swap under load")
        marks["announced"] = time.monotonic()
        producer.send(settings.retrain_topic, value=to_json(message)).get(timeout=10)
        producer.close()

    with one_predictor_serving(settings, rows, logs) as sender:
        stats = run_stream(settings, rows, rate, seconds, during=announce, producer=sender)
    # Lost and duplicated from the output topic itself: every id sent across the swap
    # answered exactly once, not what the sample app's live listener happened to see.
    answers = output_ledger(settings, stats.sent_at, timeout_s=60)
    announced = marks["announced"]
    first_new = min((at for at, _, v in stats.timeline if v == new_version), default=float("nan"))
    around = [lat for at, lat, _ in stats.timeline if announced - 1.0 <= at <= first_new + 2.0]
    steady = [lat for at, lat, _ in stats.timeline if at < announced - 1.0]
    steady_p99 = percentiles(steady)["p99_ms"]
    swap_p99 = percentiles(around)["p99_ms"]
    return {
        "swap_seconds": first_new - announced,
        "steady_p99_ms": steady_p99,
        "swap_window_p99_ms": swap_p99,
        "swap_p99_ratio": swap_p99 / steady_p99 if steady_p99 else float("nan"),
        "lost": sum(1 for n in answers.values() if n == 0),
        "duplicated": sum(n - 1 for n in answers.values() if n > 1),
        "timeline": [(at - stats.started, lat, v) for at, lat, v in stats.timeline],
        "announced_at_s": announced - stats.started,
    }


def retrain_turnaround(
    settings: Settings, rows: list[dict[str, Any]], logs: Path, trainer_start: Any
) -> dict[str, float]:
    """Request -> model_ready -> first prediction stamped with the new version, under load."""
    news = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    partition = TopicPartition(settings.retrain_topic, 0)
    news.assign([partition])
    news.seek_to_end(partition)
    news.position(partition)
    marks: dict[str, float] = {}
    done = threading.Event()

    def request_and_wait(app: SampleApp) -> None:
        time.sleep(2)
        producer = make_producer(settings, "bench-retrain")
        marks["requested"] = time.monotonic()
        request = RetrainRequest("bench", settings.input_topic, {}, 0)
        producer.send(settings.retrain_topic, value=to_json(request)).get(timeout=10)
        producer.close()
        while "version" not in marks and time.monotonic() - marks["requested"] < 300:
            for records in news.poll(timeout_ms=200).values():
                for record in records:
                    if b'"model_ready"' in record.value:
                        ready = json.loads(record.value)
                        marks["ready"] = time.monotonic()
                        marks["version"] = ready["version"] if ready["promoted"] else -1
        while marks.get("version", -1) != -1 and time.monotonic() - marks["requested"] < 300:
            new = [at for at, _, v in list(app.stats.timeline) if v == marks.get("version")]
            if new:
                marks["first"] = min(new)
                break
            time.sleep(0.05)
        done.set()

    with trainer_start(), one_predictor_serving(settings, rows, logs) as sender:
        run_stream(settings, rows, 100, 600, during=request_and_wait, stop=done, producer=sender)
    news.close()
    nan = float("nan")
    return {
        "request_to_ready_s": marks.get("ready", nan) - marks.get("requested", nan),
        "ready_to_first_prediction_s": marks.get("first", nan) - marks.get("ready", nan),
    }
