"""The latest heartbeat of every Predictor, read from the compacted heartbeat topic."""

from __future__ import annotations

import logging
import time

from kafka import TopicPartition
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.messages import Heartbeat, MessageError, parse_heartbeat
from pipeline.errors import BrokerError
from pipeline.kafka_io.clients import make_consumer

log = logging.getLogger(__name__)


def connect_timeout_ms(settings: Settings) -> int:
    """How long an operator's command waits for a broker before it exits 4 (--ops-timeout-s;
    a client's own default is 30 s)."""
    return round(settings.ops_timeout_s * 1000)


def latest_heartbeats(settings: Settings) -> list[Heartbeat]:
    """Read the topic from the start to its end, within --ops-timeout-s; a tombstone removes a
    stopped instance."""
    timeout_s = settings.ops_timeout_s
    consumer = make_consumer(
        settings,
        "ops-status",
        enable_auto_commit=False,
        bootstrap_timeout_ms=connect_timeout_ms(settings),
    )
    latest: dict[str, Heartbeat] = {}
    try:
        partitions = consumer.partitions_for_topic(settings.heartbeat_topic)
        if not partitions:
            raise BrokerError(
                f"topic {settings.heartbeat_topic} does not exist; run initialize.py to create it"
            )
        tps = [TopicPartition(settings.heartbeat_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"reading {settings.heartbeat_topic} took over {timeout_s:g} s (--ops-timeout-s)"
                )
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    _apply(latest, record.key, record.value)
    except KafkaError as exc:
        raise BrokerError(f"cannot read {settings.heartbeat_topic}: {exc}") from exc
    finally:
        consumer.close(autocommit=False)
    return sorted(latest.values(), key=lambda beat: beat.instance)


def _apply(latest: dict[str, Heartbeat], key: bytes | None, value: bytes | None) -> None:
    instance = (key or b"").decode(errors="replace")
    if value is None:
        latest.pop(instance, None)
        return
    try:
        beat = parse_heartbeat(value)
    except MessageError as exc:
        log.warning("ignored a heartbeat of %s: %s", instance, exc)
        return
    latest[beat.instance] = beat
