"""Producer and consumer factories: the connection settings every client shares, in one place."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from pipeline.errors import BrokerError
from pipeline.settings import Settings


def _common(settings: Settings, role: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": f"{role}-{settings.instance_name}",
    }


def make_producer(settings: Settings, role: str, **overrides: Any) -> KafkaProducer:
    """acks=all + idempotence: an acknowledged write survives and a retry never duplicates."""
    config = {
        **_common(settings, role),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        **overrides,
    }
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise BrokerError(
            f"cannot create a producer on {settings.bootstrap_servers}: {exc}"
        ) from exc


def make_consumer(settings: Settings, role: str, **overrides: Any) -> KafkaConsumer:
    config = {
        **_common(settings, role),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        **overrides,
    }
    try:
        return KafkaConsumer(**config)
    except KafkaError as exc:
        raise BrokerError(
            f"cannot create a consumer on {settings.bootstrap_servers}: {exc}"
        ) from exc


def require_topic(consumer: KafkaConsumer, topic: str) -> int:
    """Joining a group before the topic's metadata is known assigns nothing; fail fast instead."""
    try:
        partitions = consumer.partitions_for_topic(topic)
    except KafkaError as exc:
        raise BrokerError(f"cannot read metadata of topic {topic}: {exc}") from exc
    if not partitions:
        raise BrokerError(f"topic {topic} does not exist; run initialize.py to create the topics")
    return len(partitions)
