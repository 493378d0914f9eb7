"""Retrain turnaround against the size of the input topic's history.

A retrain reads the original data plus a bounded window of the most recent events
(`--retrain-window-events`), so its turnaround must not grow with the topic: the same request
is answered over 100,000 and over 1,000,000 labelled events, and the second may take at most
1.5 times the first. `python -m pipeline.tools.bench --retrain-window` (or
`make bench-retrain-window`); not part of `make bench` (loading a million events takes minutes).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from mlflow.tracking import MlflowClient

from pipeline.config.settings import Settings
from pipeline.core.messages import RetrainRequest, to_json
from pipeline.kafka_io.admin import wait_for_members
from pipeline.kafka_io.clients import kafka_security, make_producer
from pipeline.tools.bench import workloads

log = logging.getLogger(__name__)

SIZES = (100_000, 1_000_000)
TARGET_RATIO = 1.5


def retrain_window(settings: Settings, rows: list[dict[str, Any]], logs: Path) -> dict[str, Any]:
    runs = {}
    for size in SIZES:
        scenario = workloads.scenario_settings(settings, f"window-{size // 1000}k", 4)
        log.info("loading %d labelled events into %s", size, scenario.input_topic)
        workloads.preload(scenario, rows, size)
        runs[size] = turnaround(scenario, logs)
        log.info("%d events in the topic: %s", size, runs[size])
    small, large = (runs[size]["request_to_ready_s"] for size in SIZES)
    return {
        "window_events": settings.retrain_window_events,
        "runs": {str(size): run for size, run in runs.items()},
        "ratio": large / small,
        "target_ratio": TARGET_RATIO,
        "met": large / small <= TARGET_RATIO,
    }


def turnaround(settings: Settings, logs: Path) -> dict[str, float]:
    """A Trainer of its own; from a request naming every partition's end to its model_ready."""
    news = _news(settings)
    with workloads.trainer_process(settings, logs) as trainer:
        wait_for_members(
            settings.bootstrap_servers,
            settings.trainer_group,
            1,
            lambda: [trainer] if trainer.poll() is not None else [],
            timeout_s=180,
            settle_s=1.0,
            security=kafka_security(settings),
        )
        started = time.monotonic()
        _request(settings, _log_ends(news, settings))
        ready = _await_ready(news, timeout_s=900)
        elapsed = time.monotonic() - started
    news.close()
    params = _lineage(settings, ready["version"])
    return {
        "request_to_ready_s": round(elapsed, 1),
        "events_read": float(params.get("lineage.events_read", "nan")),
        "training_rows": float(params.get("lineage.training_rows", "nan")),
    }


def _news(settings: Settings) -> KafkaConsumer:
    news = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, **kafka_security(settings))
    partition = TopicPartition(settings.retrain_topic, 0)
    news.assign([partition])
    news.seek_to_end(partition)
    news.position(partition)
    return news


def _log_ends(consumer: KafkaConsumer, settings: Settings) -> dict[str, int]:
    tps = [TopicPartition(settings.input_topic, p) for p in range(settings.input_partitions)]
    return {str(tp.partition): end for tp, end in consumer.end_offsets(tps).items()}


def _request(settings: Settings, end_offsets: dict[str, int]) -> None:
    producer = make_producer(settings, "bench-window")
    request = RetrainRequest("bench", settings.input_topic, end_offsets, sum(end_offsets.values()))
    producer.send(settings.retrain_topic, value=to_json(request)).get(timeout=30)
    producer.close()


def _await_ready(news: KafkaConsumer, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for records in news.poll(timeout_ms=500).values():
            for record in records:
                message = json.loads(record.value)
                if message.get("type") == "model_ready":
                    return message
    raise RuntimeError(f"no model_ready within {timeout_s:.0f}s")


def _lineage(settings: Settings, version: int) -> dict[str, str]:
    client = MlflowClient()
    run_id = client.get_model_version(settings.model_name, str(version)).run_id
    return dict(client.get_run(str(run_id)).data.params)
