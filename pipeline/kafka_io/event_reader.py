"""Reads the labelled history from `app_messages` for a retrain: from Kafka, not a shared file."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from kafka import TopicPartition
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.events import Event, parse_event
from pipeline.errors import BrokerError, ValidationError
from pipeline.kafka_io.admin import admin_client
from pipeline.kafka_io.clients import kafka_security, make_consumer

log = logging.getLogger(__name__)


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
        raise BrokerError(
            f"cannot read the offsets of group {settings.predictor_group}: {exc}"
        ) from exc
    return {
        str(tp.partition): meta.offset
        for tp, meta in committed.items()
        if tp.topic == settings.input_topic and meta.offset >= 0
    }


def read_events(
    settings: Settings, end_offsets: Mapping[str, int], timeout_s: float = 120.0
) -> ReadResult:
    """Every committed event before `end_offsets`, partition by partition; invalid events are
    counted. read_committed: events of an aborted upstream transaction were never scored and
    never happened for anyone downstream; they must not be trained on either."""
    consumer = make_consumer(
        settings,
        "trainer-reader",
        isolation_level="read_committed",
        max_poll_records=5000,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    result = ReadResult()
    try:
        partitions = [TopicPartition(settings.input_topic, int(p)) for p in end_offsets]
        if not partitions:
            return result
        consumer.assign(partitions)
        starts = consumer.beginning_offsets(partitions)
        remaining = {}
        for tp in partitions:
            end = end_offsets[str(tp.partition)]
            result.offset_ranges[str(tp.partition)] = [starts[tp], end]
            if end > starts[tp]:
                consumer.seek(tp, starts[tp])
                remaining[tp] = end
        consumer.pause(*[tp for tp in partitions if tp not in remaining])
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise BrokerError(f"reading labelled events timed out with {remaining} left")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    if record.offset >= remaining.get(tp, -1):
                        break
                    _collect(record.value, settings.max_event_bytes, result)
                if consumer.position(tp) >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
                    consumer.pause(tp)
    except KafkaError as exc:
        raise BrokerError(f"reading {settings.input_topic} failed: {exc}") from exc
    finally:
        consumer.close()
    log.info(
        "read %d valid and %d invalid events from %s",
        len(result.events),
        result.invalid,
        settings.input_topic,
    )
    return result


def _collect(raw: bytes | None, max_bytes: int, result: ReadResult) -> None:
    try:
        result.events.append(parse_event(raw, max_bytes))
    except ValidationError:
        result.invalid += 1
