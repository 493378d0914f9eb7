"""Reads the labelled events from `app_messages` for a retrain: from Kafka, not a shared file.

Only committed events (read_committed), and only a bounded window of the most recent ones, so
a retrain costs the same whatever the topic's history (pipeline/core/read_ranges.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.events import Event, EventDecoder
from pipeline.core.read_ranges import clamp, window_starts
from pipeline.errors import BrokerError, DataError
from pipeline.kafka_io.admin import admin_client
from pipeline.kafka_io.clients import failure, kafka_security, make_consumer

log = logging.getLogger(__name__)

# A retrain reads the whole retained input topic; a read longer than this fails the retrain.
# `python -m pipeline.ops capacity` turns it into the largest window a Trainer can read.
READ_TIMEOUT_S = 120.0


@dataclass
class ReadResult:
    events: list[Event] = field(default_factory=list)
    invalid: int = 0
    offset_ranges: dict[str, list[int]] = field(default_factory=dict)


def scored_offsets(settings: Settings) -> dict[str, int]:
    """What the Predictor group has committed: every event up to here has been scored."""
    try:
        admin = admin_client(settings.bootstrap_servers, security=kafka_security(settings))
        try:
            committed = admin.list_group_offsets(settings.predictor_group).get(
                settings.predictor_group, {}
            )
        finally:
            admin.close()
    except KafkaError as exc:
        doing = f"reading the committed offsets of group {settings.predictor_group}"
        raise failure(exc, settings, doing, "trainer", group=settings.predictor_group) from exc
    return {
        str(tp.partition): meta.offset
        for tp, meta in committed.items()
        if tp.topic == settings.input_topic and meta.offset >= 0
    }


def _reader(settings: Settings) -> KafkaConsumer:
    """read_committed: events of an aborted upstream transaction were never scored and never
    happened for anyone downstream; they must not be trained on either."""
    return make_consumer(
        settings,
        "trainer-reader",
        isolation_level="read_committed",
        max_poll_records=5000,
        fetch_max_bytes=32 * 1024 * 1024,
    )


def input_partitions(settings: Settings) -> frozenset[int]:
    """The partitions the input topic has: what a retrain request may name."""
    consumer = _reader(settings)
    try:
        return frozenset(consumer.partitions_for_topic(settings.input_topic) or ())
    except KafkaError as exc:
        raise BrokerError(f"cannot read the partitions of {settings.input_topic}: {exc}") from exc
    finally:
        consumer.close()


def read_events(
    settings: Settings,
    end_offsets: Mapping[str, int],
    window: int,
    timeout_s: float = READ_TIMEOUT_S,
) -> ReadResult:
    """At most `window` of the most recent committed events before `end_offsets` (cut to the
    log end), seeking straight to where the window starts; invalid events are counted."""
    consumer = _reader(settings)
    result = ReadResult()
    try:
        requested = {int(p): end for p, end in end_offsets.items()}
        if not requested:
            return result
        partitions = {p: TopicPartition(settings.input_topic, p) for p in requested}
        _require_partitions(consumer, settings.input_topic, set(requested))
        consumer.assign(list(partitions.values()))
        log_bounds = _bounds(consumer, partitions)
        ends = clamp(requested, log_bounds)
        if ends != requested:
            log.warning("requested offsets %s cut to the log end: %s", requested, ends)
        starts = window_starts({p: (log_bounds[p][0], ends[p]) for p in ends}, window)
        result.offset_ranges = {str(p): [starts[p], ends[p]] for p in sorted(ends)}
        decoder = EventDecoder(settings.pipeline_spec.schema, settings.max_event_bytes)
        _read(consumer, partitions, starts, ends, decoder, timeout_s, result)
    except KafkaError as exc:
        raise failure(exc, settings, f"reading {settings.input_topic}", "trainer") from exc
    finally:
        consumer.close()
    log.info(
        "read %d valid and %d invalid events from %s, offsets %s",
        len(result.events),
        result.invalid,
        settings.input_topic,
        result.offset_ranges,
    )
    return result


def _require_partitions(consumer: KafkaConsumer, topic: str, wanted: set[int]) -> None:
    missing = wanted - set(consumer.partitions_for_topic(topic) or ())
    if missing:
        raise DataError(f"topic {topic} has no partition(s) {sorted(missing)}")


def _bounds(
    consumer: KafkaConsumer, partitions: Mapping[int, TopicPartition]
) -> dict[int, tuple[int, int]]:
    """(first offset kept, end) per partition; read_committed makes the end the last stable
    offset, past which nothing committed can be read yet."""
    tps = list(partitions.values())
    begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
    return {p: (begins[tp], ends[tp]) for p, tp in partitions.items()}


def _read(
    consumer: KafkaConsumer,
    partitions: Mapping[int, TopicPartition],
    starts: Mapping[int, int],
    ends: Mapping[int, int],
    decoder: EventDecoder,
    timeout_s: float,
    result: ReadResult,
) -> None:
    remaining = {}
    for p, tp in partitions.items():
        if ends[p] > starts[p]:
            consumer.seek(tp, starts[p])
            remaining[tp] = ends[p]
    consumer.pause(*[tp for tp in partitions.values() if tp not in remaining])
    deadline = time.monotonic() + timeout_s
    while remaining:
        if time.monotonic() > deadline:
            raise BrokerError(f"reading labelled events timed out with {remaining} left")
        for tp, records in consumer.poll(timeout_ms=500).items():
            end = remaining.get(tp, -1)
            _collect([r.value for r in records if r.offset < end], decoder, result)
            if consumer.position(tp) >= remaining.get(tp, 0):
                remaining.pop(tp, None)
                consumer.pause(tp)


def _collect(raws: list[bytes | None], decoder: EventDecoder, result: ReadResult) -> None:
    batch = decoder.parse_batch(raws)
    result.events.extend(batch.events())
    result.invalid += len(batch.refused)
