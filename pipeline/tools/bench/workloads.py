"""The measured workloads, each on its own topics of the same real broker.

Every figure is a rate or a latency measured here, in this run; nothing is assumed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings, secret_env, settings_to_argv
from pipeline.core.events import encode_event
from pipeline.core.topics import TopicSpec
from pipeline.kafka_io.admin import ensure_topics, wait_for_members
from pipeline.kafka_io.clients import (
    finish_stalled_rebalance,
    kafka_security,
    make_consumer,
    make_producer,
    send_records,
)

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]
PREDICTOR = (str(ROOT / "predictor.py"),)
FLOOR = ("-m", "pipeline.tools.bench.floor")


def scenario_settings(base: Settings, name: str, partitions: int) -> Settings:
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    settings = replace(
        base,
        input_topic=f"bench-in-{tag}",
        predictions_topic=f"bench-out-{tag}",
        dlq_topic=f"bench-dlq-{tag}",
        retrain_topic=f"bench-retrain-{tag}",
        shadow_topic=f"bench-shadow-{tag}",
        input_partitions=partitions,
        predictor_group=f"bench-{tag}",
        instance_id=tag,
        trainer_group=f"bench-trainer-{tag}",
    )
    ensure_topics(
        settings.bootstrap_servers, settings.topic_specs(), security=kafka_security(settings)
    )
    return settings


def variant(settings: Settings, tag: str, model_name: str) -> Settings:
    """Another reader of the same input topic: its own group, outputs and model."""
    settings = replace(
        settings,
        predictions_topic=f"{settings.predictions_topic}-{tag}",
        dlq_topic=f"{settings.dlq_topic}-{tag}",
        shadow_topic=f"{settings.shadow_topic}-{tag}",
        predictor_group=f"{settings.predictor_group}-{tag}",
        instance_id=f"{settings.instance_id}-{tag}",
        model_name=model_name,
    )
    ensure_topics(
        settings.bootstrap_servers, settings.topic_specs(), security=kafka_security(settings)
    )
    return settings


def preload(settings: Settings, rows: list[dict[str, Any]], count: int) -> None:
    """Adult rows replayed with fresh request ids, produced as fast as the client allows."""
    producer = make_producer(settings, "bench-load", linger_ms=20, batch_size=1024 * 1024)
    for i in range(count):
        request_id = f"e{i}"
        producer.send(
            settings.input_topic,
            value=encode_event(request_id, rows[i % len(rows)]),
            key=request_id.encode(),
        )
    producer.flush(timeout=120)
    producer.close()


def _before(deadline: float, progress: str) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError(f"timed out: {progress}")


def ceiling(settings: Settings, count: int, batch_size: int) -> float:
    """The same client and batching as the Predictor, with no ML in between.

    It flushes each batch before an asynchronous commit, as the Predictor did before its
    acknowledgement window; the Predictor measured both ways made the same throughput (README,
    Performance), so the ceiling stays as it was and earlier runs still compare."""
    out = f"{settings.predictions_topic}-ceiling"
    ensure_topics(
        settings.bootstrap_servers,
        [TopicSpec(out, settings.input_partitions)],
        security=kafka_security(settings),
    )
    consumer = make_consumer(
        settings,
        "bench-ceiling",
        group_id=f"{settings.predictor_group}-c",
        max_poll_records=batch_size,
    )
    producer = make_producer(settings, "bench-ceiling")
    consumer.subscribe([settings.input_topic])
    seen, started = 0, None
    deadline = time.monotonic() + max(120.0, count / 1000)
    while seen < count:
        _before(deadline, f"the ceiling read {seen} of {count} events")
        polled = consumer.poll(timeout_ms=100, max_records=batch_size)
        finish_stalled_rebalance(consumer)
        records = [r for batch in polled.values() for r in batch]
        if not records:
            continue
        started = started or time.perf_counter()
        send_records(producer, out, records)  # the Predictor's way of sending a batch
        producer.flush()
        consumer.commit_async()  # the Predictor's pattern: acknowledged, then commit async
        seen += len(records)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    producer.close()
    return seen / elapsed


def naive(settings: Settings, count: int, model_uri: str) -> float:
    """The seed article's loop: one event, a one-row DataFrame, predict, produce, flush."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
    consumer = make_consumer(settings, "bench-naive", group_id=f"{settings.predictor_group}-n")
    producer = make_producer(settings, "bench-naive")
    consumer.subscribe([settings.input_topic])
    seen, started = 0, None
    deadline = time.monotonic() + max(120.0, count / 10)
    while seen < count:
        _before(deadline, f"the naive loop read {seen} of {count} events")
        polled = consumer.poll(timeout_ms=100, max_records=1)
        finish_stalled_rebalance(consumer)
        for records in polled.values():
            for record in records:
                started = started or time.perf_counter()
                message = json.loads(record.value)
                frame = pd.DataFrame([message["data"]]).drop(columns=["income_bracket"])
                frame = frame.astype({c: "float64" for c in frame.select_dtypes("number").columns})
                result = model.predict(frame)
                value = json.dumps(
                    {
                        "request_id": message["request_id"],
                        "probability": float(result["probability"][0]),
                    }
                ).encode()
                producer.send(settings.predictions_topic, value=value)
                producer.flush()
                seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    producer.close()
    return seen / elapsed


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had, which a final snapshot would miss."""
    return _status_mb(pid, "VmHWM")


def anonymous_mb(pid: int) -> float:
    """RssAnon: the process's own memory (heap, model, buffers) now. Resident memory also
    counts the pages of shared libraries it mapped (RssFile), which depend on what the page
    cache holds: the same imports read 108 MB of them in one venv and 174 MB in a fresh one
    (anonymous 197 MB in both), so peak RSS moves by tens of MB between machines and runs."""
    return _status_mb(pid, "RssAnon")


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def predictors(
    settings: Settings, count: int, logs: Path, program: Sequence[str] = PREDICTOR
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`program`: what to run with the Predictor's flags (the latency floor takes them too)."""
    logs.mkdir(parents=True, exist_ok=True)
    started = []
    try:
        for i in range(count):
            own = replace(settings, instance_id=f"{settings.instance_id}-{i}")
            argv = [sys.executable, *program, *settings_to_argv(own, "predictor")]
            with (logs / f"{own.instance_id}.log").open("wb") as out:
                started.append(
                    subprocess.Popen(
                        argv,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                        env={**os.environ, **secret_env(own), "PIPELINE_LOG_LEVEL": "WARNING"},
                    )
                )
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def trainer_process(settings: Settings, logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """trainer.py as a process of its own, stopped (SIGTERM) at the end of the block."""
    argv = [sys.executable, "trainer.py", *settings_to_argv(settings, "trainer")]
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"trainer-{settings.instance_id}.log").open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **secret_env(settings)},
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=120)


def peer_throughput(settings: Settings, count: int, logs: Path) -> dict[str, float] | None:
    """The Quix Streams peer (`peer_quix`) over the events the caller loaded, timed like the
    Predictor; None when Quix Streams is not installed (its log says so)."""
    argv = [
        sys.executable,
        "-m",
        "pipeline.tools.bench.peer_quix",
        "--events",
        str(count),
        *settings_to_argv(settings, "predictor"),
    ]
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"peer-quix-{settings.instance_id}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **secret_env(settings), "PIPELINE_LOG_LEVEL": "WARNING"},
        )
    try:
        code = process.wait(timeout=max(300.0, count / 200))
    except subprocess.TimeoutExpired:
        process.kill()
        raise RuntimeError(f"the Quix Streams peer did not finish; see {log_path}") from None
    if code == 2:
        return None  # not installed: the row says so
    if code != 0:
        raise RuntimeError(f"the Quix Streams peer exited {code}; see {log_path}")
    first, repeats = read_predictions(settings, count, timeout_s=120.0)
    if len(first) < count:
        raise RuntimeError(f"the peer answered {len(first)} of {count} events; see {log_path}")
    stamps = list(first.values())
    span_s = max((max(stamps) - min(stamps)) / 1000.0, 1e-3)
    return {"eps": count / span_s, "events": float(count), "repeats": repeats}


def read_predictions(
    settings: Settings, count: int, timeout_s: float
) -> tuple[dict[str, int], int]:
    """Each request id's first `scored_at_ms`, read from the beginning until `count` ids have
    answers and the topic's end is reached, and how many predictions repeated an id."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        isolation_level="read_committed",
        max_poll_records=20000,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    partitions = [
        TopicPartition(settings.predictions_topic, p) for p in range(settings.input_partitions)
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    first: dict[str, int] = {}
    repeats = 0
    ends: dict[TopicPartition, int] | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                prediction = json.loads(record.value)
                repeats += prediction["request_id"] in first
                first.setdefault(prediction["request_id"], prediction["scored_at_ms"])
        if len(first) >= count:
            ends = ends or consumer.end_offsets(partitions)
            if all(consumer.position(tp) >= end for tp, end in ends.items()):
                break
    consumer.close()
    return first, repeats


def output_ledger(settings: Settings, request_ids: Iterable[str], timeout_s: float) -> Counter[str]:
    """How many predictions each of `request_ids` has on the predictions topic, read from the
    beginning (read_committed) to its end: 0 is a loss, more than 1 a duplicate."""
    wanted = set(request_ids)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, isolation_level="read_committed"
    )
    partitions = [
        TopicPartition(settings.predictions_topic, p) for p in range(settings.input_partitions)
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    counts: Counter[str] = Counter({rid: 0 for rid in wanted})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(consumer.position(tp) < e for tp, e in ends.items()):
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                rid = json.loads(record.value)["request_id"]
                if rid in wanted:
                    counts[rid] += 1
    consumer.close()
    return counts


def wait_for_records(
    settings: Settings,
    topic: str,
    count: int,
    timeout_s: float,
    every_s: float = 0.5,
    watch: Callable[[int], None] | None = None,
) -> int:
    """Until the topic holds `count` records, asking for end offsets every `every_s`; returns
    how many it holds (fewer at the timeout: the caller says how many are missing). `watch`
    is told each count as it is read."""
    consumer = make_consumer(settings, "bench-watch")
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    deadline = time.monotonic() + timeout_s
    try:
        while (held := sum(consumer.end_offsets(partitions).values())) < count:
            if watch is not None:
                watch(int(held))
            if time.monotonic() > deadline:
                break
            time.sleep(every_s)
        return int(held)
    finally:
        consumer.close()


def predictor_throughput(
    settings: Settings, rows: list[dict[str, Any]], count: int, instances: int, logs: Path
) -> dict[str, float]:
    """Predictions per second from the first to the last, once every instance holds partitions.

    One instance reads the events the caller loaded beforehand. Several instances first form a stable
    group (else the first one drains the topic before the others join), then the events are
    produced while they run, so that figure also carries the producer's share of the CPU.
    """
    with predictors(settings, instances, logs) as processes:
        wait_for_members(
            settings.bootstrap_servers,
            settings.predictor_group,
            instances,
            lambda: [p for p in processes if p.poll() is not None],
            security=kafka_security(settings),
        )
        if instances > 1:
            preload(settings, rows, count)
        # Read only once all are written: a reader running alongside would take CPU the
        # Predictor needs, and the ceiling ran with no reader either.
        wait_for_records(settings, settings.predictions_topic, count, max(120.0, count / 2000))
        rss = max(peak_rss_mb(p.pid) for p in processes)
        anonymous = max(anonymous_mb(p.pid) for p in processes)
    # Unique ids: with two instances a rebalance can score some events twice, and a count of
    # records would pass those off as events not yet answered.
    first, repeats = read_predictions(settings, count, timeout_s=120.0)
    if len(first) < count:
        raise RuntimeError(f"only {len(first)} of {count} events were answered; see {logs}")
    stamps = list(first.values())
    span_s = max((max(stamps) - min(stamps)) / 1000.0, 1e-3)
    return {
        "eps": count / span_s,
        "rss_mb": rss,
        "anon_mb": anonymous,
        "events": float(count),
        "repeats": repeats,
    }
