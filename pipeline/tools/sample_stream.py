"""An upstream service stand-in: sends the spec's test rows as events, reads back predictions."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.events import encode_event
from pipeline.core.messages import label_record
from pipeline.core.perturb import parse_perturbation
from pipeline.core.schema import Schema
from pipeline.core.stream_stats import StreamStats
from pipeline.kafka_io.clients import failure, make_consumer, make_producer, require_topic

log = logging.getLogger(__name__)

ROLE = "sample-app"  # its ACLs: python -m pipeline.kafka_io.acls --role sample-app


def event_rows(frame: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    """Rows as a producer would send them: ints for whole numbers, null for missing."""
    rows = []
    columns = [*schema.feature_fields, schema.label_field]
    for record in frame[columns].to_dict(orient="records"):
        rows.append(
            {
                k: (
                    None
                    if v is None or v != v
                    else int(v)
                    if isinstance(v, float) and v.is_integer()
                    else v
                )
                for k, v in record.items()
            }
        )
    return rows


def bad_event(
    kind: int, request_id: str, row: dict[str, Any], max_bytes: int, schema: Schema
) -> bytes:
    """The four kinds of bad input the DLQ must catch, in turn: not JSON, a required field
    left out, text where a number belongs, too large."""
    if kind == 0:
        return b"{not json"
    required = [f.name for f in schema.fields if f.required] or [schema.fields[0].name]
    if kind == 1:
        return encode_event(request_id, {k: v for k, v in row.items() if k != required[0]})
    if kind == 2 and schema.numeric_fields:
        return encode_event(request_id, {**row, schema.numeric_fields[0]: "forty"})
    return encode_event(request_id, {**row, "padding": "x" * max_bytes})


def _listener(settings: Settings) -> KafkaConsumer:
    """Assigned (not subscribed) and at the end, so it sees only what this run causes."""
    consumer = make_consumer(
        settings, "sample-app", isolation_level="read_committed", max_poll_records=5000
    )
    partitions = []
    for topic in (settings.predictions_topic, settings.dlq_topic):
        count = require_topic(consumer, topic, settings, ROLE)
        partitions += [TopicPartition(topic, p) for p in range(count)]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:
        consumer.position(tp)
    return consumer


def sample_producer(settings: Settings) -> KafkaProducer:
    """An upstream service sends each event as it happens (kafka-python's default linger, 0):
    a linger would be waited by every event at a modest rate, and under load the client still
    batches what queues while a request is in flight. At 1,000 events/s on librdkafka, linger 1
    read p50 / p99 5.1 / 11.3 ms end to end against 3.5 / 9.2 (README, Performance)."""
    return make_producer(settings, "sample-app", linger_ms=0)


class SampleApp:
    def __init__(
        self,
        settings: Settings,
        rows: list[dict[str, Any]],
        progress: Callable[[str], None] = print,
        producer: KafkaProducer | None = None,
    ) -> None:
        """`producer`: a long-lived one to send with (from `sample_producer`), as an upstream
        service keeps one; left open at the end. Without it the run makes its own."""
        self.settings = settings
        self.rows = rows
        self._given_producer = producer
        self.schema = settings.pipeline_spec.schema
        self.perturbation = parse_perturbation(
            settings.shift, settings.mix, settings.flip_labels, settings.perturb_after, self.schema
        )
        self.stats = StreamStats()
        self.progress = progress
        self._done = threading.Event()
        self._listening = threading.Event()
        self._receive_error: KafkaError | None = None

    def run(self, stop: threading.Event) -> dict[str, Any]:
        try:
            return self._run(stop)
        except KafkaError as exc:
            raise failure(exc, self.settings, "streaming events", ROLE) from exc

    def _run(self, stop: threading.Event) -> dict[str, Any]:
        listener = _listener(self.settings)
        receiver = threading.Thread(target=self._receive, args=(listener,), daemon=True)
        receiver.start()
        producer = self._given_producer or sample_producer(self.settings)
        try:
            # Metadata first and the listener polling: else the first events' latency is the
            # clients' start-up, not the pipeline's.
            producer.partitions_for(self.settings.input_topic)
            self._listening.wait(timeout=30)
            self._send_all(producer, stop)
            producer.flush(timeout=60)
            self._drain(stop)
        finally:
            self._done.set()
            receiver.join(timeout=10)
            if producer is not self._given_producer:
                producer.close(timeout=10)
        if self._receive_error is not None:
            raise self._receive_error
        summary = self.stats.summary()
        self.progress(self.stats.progress_line())
        return summary

    def _send_all(self, producer: Any, stop: threading.Event) -> None:
        s = self.settings
        total = s.events or len(self.rows)
        run_id = uuid.uuid4().hex[:8]
        started = self.stats.started = time.monotonic()
        next_report = started + 1.0
        for i in range(total):
            if stop.is_set():
                break
            if s.rate > 0:
                delay = started + i / s.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            row = self.perturbation.apply(i, self.rows[i % len(self.rows)])
            request_id = f"{run_id}-{i}"
            label = None
            if s.bad_every and i % s.bad_every == s.bad_every - 1:
                value = bad_event(
                    (i // s.bad_every) % 4, request_id, row, s.max_event_bytes, self.schema
                )
                self.stats.sent_bad()
            else:
                label = row.get(self.schema.label_field)
                if s.labels_later:
                    row = {k: v for k, v in row.items() if k != self.schema.label_field}
                value = encode_event(request_id, row)
                self.stats.sent(request_id, label, time.monotonic())
            producer.send(s.input_topic, value=value, key=request_id.encode())
            if s.labels_later and isinstance(label, str):
                # The truth comes after the event, as it does when upstream learns it later.
                late = label_record(request_id, label)
                producer.send(s.labels_topic, value=late, key=request_id.encode())
            if time.monotonic() >= next_report:
                self.progress(self.stats.progress_line())
                next_report += 1.0

    def _drain(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.settings.drain_timeout_s
        next_report = time.monotonic() + 1.0
        while not stop.is_set() and time.monotonic() < deadline and self._receive_error is None:
            if self.stats.missing == 0 and self.stats.dlq >= self.stats.bad_sent:
                return
            time.sleep(0.05)
            if time.monotonic() >= next_report:
                self.progress(self.stats.progress_line())
                next_report += 1.0
        if not stop.is_set():
            log.warning("gave up waiting: %d events have no prediction", self.stats.missing)

    def _receive(self, consumer: KafkaConsumer) -> None:
        try:
            while not self._done.is_set():
                polled = consumer.poll(timeout_ms=100)
                self._listening.set()
                for tp, records in polled.items():
                    now = time.monotonic()
                    for record in records:
                        if tp.topic == self.settings.dlq_topic:
                            self.stats.dead_letter()
                            continue
                        prediction = json.loads(record.value)
                        self.stats.received(
                            prediction["request_id"],
                            prediction["label"],
                            int(prediction["model_version"]),
                            now,
                            prediction.get("scored_at_ms"),
                        )
        except KafkaError as exc:  # raised by run() in the caller's thread
            self._receive_error = exc
            self._listening.set()
        finally:
            consumer.close()
