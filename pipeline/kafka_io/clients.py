"""Producer and consumer factories: the connection settings every client shares, in one place."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.coordinator.base import MemberState
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.errors import BrokerError


def kafka_security(settings: Settings) -> dict[str, Any]:
    """The kafka-python arguments for SSL/SASL, only those that are set."""
    config: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    optional = {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": settings.kafka_sasl_password,
        "ssl_cafile": settings.kafka_ssl_cafile,
    }
    config.update({key: value for key, value in optional.items() if value})
    return config


def _common(settings: Settings, role: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": f"{role}-{settings.instance_name}",
        # After a broker restart, reconnect within a second rather than after a backoff that has
        # grown to 30 s while it was down (make chaos, 8 s outage: scoring again after 11.5 s
        # without this, 0.5 s with it).
        "reconnect_backoff_max_ms": 1000,
        **kafka_security(settings),
    }


# The largest request a producer sends; a record above it is refused before it leaves the client.
MAX_REQUEST_SIZE = 4 * 1024 * 1024


def make_producer(settings: Settings, role: str, **overrides: Any) -> KafkaProducer:
    """acks=all + idempotence: an acknowledged write survives and a retry never duplicates."""
    config = {
        **_common(settings, role),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "batch_size": 256 * 1024,
        "max_request_size": MAX_REQUEST_SIZE,
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


# A static member never leaves its group (a restart must find its place kept), so the session,
# how long before a gone instance's partitions move to the others, is 10 s, not the client's 45 s.
SESSION_TIMEOUT_MS = 10_000


def group_membership(settings: Settings, group_id: str) -> dict[str, Any]:
    """Static membership (KIP-345) for an instance with a stable name: restarted after a crash,
    it takes its partitions back at once instead of waiting out its old session."""
    return {
        "group_id": group_id,
        "group_instance_id": settings.instance_id or None,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
    }


def require_topic(consumer: KafkaConsumer, topic: str) -> int:
    """Joining a group before the topic's metadata is known assigns nothing; fail fast instead."""
    try:
        partitions = consumer.partitions_for_topic(topic)
    except KafkaError as exc:
        raise BrokerError(f"cannot read metadata of topic {topic}: {exc}") from exc
    if not partitions:
        raise BrokerError(f"topic {topic} does not exist; run initialize.py to create the topics")
    return len(partitions)


def finish_stalled_rebalance(consumer: KafkaConsumer) -> None:
    """Work around a kafka-python 3.0.x stall; call after each poll of a group consumer.

    When topic metadata arrives while a JoinGroup is in flight, the client starts a second
    join but keeps no flag that it must finish it: `need_rejoin()` turns False, `poll()` stops
    driving the join, the member stays REBALANCING with heartbeats off and fetches nothing
    until the broker expels it (seen here with short poll timeouts on a fresh topic).
    Raising the flag again lets the next poll complete the join it already started.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or coordinator.state is MemberState.STABLE:
        return
    if getattr(coordinator, "_join_task", None) is not None and not coordinator.need_rejoin():
        coordinator.rejoin_needed = True
