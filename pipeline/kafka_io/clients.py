"""Producer and consumer factories: the connection settings every client shares, in one place."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer
from kafka.coordinator.base import MemberState
from kafka.errors import KafkaError, UnknownTopicOrPartitionError

from pipeline.config.settings import CONFLUENT_KAFKA, Settings
from pipeline.errors import BrokerError
from pipeline.kafka_io.failures import construct, kafka_failure
from pipeline.kafka_io.security import (
    SASL_PROTOCOLS,
    kafka_security,
    principal_of,
    warn_if_unverified,
)

log = logging.getLogger(__name__)


def failure(
    exc: BaseException, settings: Settings, doing: str, role: str | None = None, **names: str
) -> BrokerError:
    """`kafka_failure` for a client built from `settings` (see failures.py)."""
    return kafka_failure(
        exc, settings.bootstrap_servers, kafka_security(settings), doing, role, **names
    )


def _common(settings: Settings, role: str) -> dict[str, Any]:
    client_id = f"{role}-{settings.instance_name}"
    warn_if_unverified(kafka_security(settings), client_id)
    return {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": client_id,
        # After a broker restart, reconnect within a second rather than after a backoff that has
        # grown to 30 s while it was down (make chaos, 8 s outage: scoring again after 11.5 s
        # without this, 0.5 s with it).
        "reconnect_backoff_max_ms": 1000,
        **kafka_security(settings),
    }


def _rdkafka_consumer() -> Any:
    """Imported only when chosen: confluent-kafka is an optional extra."""
    from pipeline.kafka_io import rdkafka_consumer

    return rdkafka_consumer


def _rdkafka_producer() -> Any:
    from pipeline.kafka_io import rdkafka_producer

    return rdkafka_producer


# The largest request a producer sends; a record above it is refused before it leaves the client.
MAX_REQUEST_SIZE = 4 * 1024 * 1024


def make_producer(settings: Settings, role: str, **overrides: Any) -> KafkaProducer:
    """acks=all + idempotence: an acknowledged write survives and a retry never duplicates.

    With `--kafka-client confluent-kafka` the same arguments build librdkafka's producer
    behind kafka-python's API (`rdkafka_producer.py`), so callers never know which it is."""
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
        if settings.kafka_client == CONFLUENT_KAFKA:
            return _rdkafka_producer().RdProducer(**config)  # type: ignore[no-any-return]
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise failure(exc, settings, f"creating the {role} producer") from exc


class Record(Protocol):
    """What a batched send reads of a record (the Predictor's outputs)."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def send_records(producer: KafkaProducer, topic: str, records: Sequence[Record]) -> list[Any]:
    """Futures for records without headers sent in order: librdkafka's adapter takes them in
    one call and answers with one future (`RdProducer.send_batch`); kafka-python has no such
    call, so each record is sent and answered on its own."""
    if not records:
        return []
    send_batch = getattr(producer, "send_batch", None)  # the librdkafka adapter only
    if send_batch is not None:
        return [send_batch(topic, records)]
    return [producer.send(topic, value=r.value, key=r.key) for r in records]


def make_consumer(settings: Settings, role: str, **overrides: Any) -> KafkaConsumer:
    config = {
        **_common(settings, role),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        **overrides,
    }
    try:
        if settings.kafka_client == CONFLUENT_KAFKA:
            return _rdkafka_consumer().RdConsumer(**config)  # type: ignore[no-any-return]
        return construct(KafkaConsumer, **config)
    except KafkaError as exc:
        raise failure(exc, settings, f"creating the {role} consumer") from exc


# A static member never leaves its group (a restart must find its place kept), so the session,
# how long before a gone instance's partitions move to the others, is 10 s, not the client's 45 s.
SESSION_TIMEOUT_MS = 10_000


def group_membership(settings: Settings, group_id: str) -> dict[str, Any]:
    """Static membership (KIP-345) for an instance with a stable name: restarted after a crash,
    it takes its partitions back at once instead of waiting out its old session."""
    return {
        "group_id": group_id,
        "group_instance_id": (settings.instance_id or None) if settings.static_membership else None,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
    }


# As long as a client waits for its first metadata when it is built (kafka-python's
# bootstrap_timeout_ms): a service that reached the broker and then lost it before reading its
# topic rides out the restart, as its loop does later (GroupPoller).
METADATA_PATIENCE_S = 30.0


def require_topic(
    consumer: KafkaConsumer,
    topic: str,
    settings: Settings | None = None,
    role: str | None = None,
    patience_s: float = METADATA_PATIENCE_S,
) -> int:
    """Joining a group before the topic's metadata is known assigns nothing; fail fast instead.

    The broker leaves the topics a principal may not describe out of its metadata, so behind
    ACLs a missing topic and a forbidden one look the same: with `settings` the message names
    both causes, the principal and the role whose ACLs to grant. A broker that is away is not
    an answer: the read is tried again for up to `patience_s` (the fault suite's broker restart
    once caught a Trainer at this step, and it exited)."""
    try:
        partitions = read_partitions(consumer, topic, patience_s)
    except KafkaError as exc:
        if settings is not None:
            raise failure(exc, settings, f"reading metadata of topic {topic}", role) from exc
        raise BrokerError(f"cannot read metadata of topic {topic}: {exc}") from exc
    if partitions:
        return len(partitions)
    message = f"topic {topic} does not exist; run initialize.py to create the topics"
    config = kafka_security(settings) if settings is not None else {}
    if config.get("security_protocol") in SASL_PROTOCOLS:
        message += (
            f", or {principal_of(config)} may not describe it: grant its ACLs "
            f"(python -m pipeline.kafka_io.acls --role {role or '<role>'})"
        )
    raise BrokerError(message)


def read_partitions(
    consumer: KafkaConsumer, topic: str, patience_s: float = METADATA_PATIENCE_S
) -> set[int] | None:
    """`consumer.partitions_for_topic`, tried again while the broker is away (at start-up,
    where no loop would try it again for us)."""
    deadline = time.monotonic() + patience_s
    away_since: float | None = None
    while True:
        try:
            partitions: set[int] | None = consumer.partitions_for_topic(topic)
        except KafkaError as exc:
            if not _broker_away(exc) or time.monotonic() >= deadline:
                raise
            if away_since is None:
                away_since = time.monotonic()
                log.warning(
                    "the broker is away (%s) while reading metadata of topic %s; "
                    "trying again for up to %.0f s",
                    exc,
                    topic,
                    patience_s,
                )
            time.sleep(OUTAGE_PAUSE_S)
            continue
        if away_since is not None:
            log.warning("the broker is back after %.1f s", time.monotonic() - away_since)
        return partitions


def _broker_away(exc: KafkaError) -> bool:
    """A retriable error other than the topic's absence, which waiting would not mend."""
    return bool(getattr(exc, "retriable", False)) and not isinstance(
        exc, UnknownTopicOrPartitionError
    )


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


# The longest pause between polls while the broker is away.
OUTAGE_PAUSE_S = 0.5


class GroupPoller:
    """`consumer.poll` for a group's loop that rides out a broker outage instead of dying.

    kafka-python 3.0.12 lets a failed metadata refresh escape `poll()` while it looks for the
    group coordinator (`ensure_coordinator_ready_async` waits for the refresh and catches only
    its timeout), so a broker restart surfaced as `KafkaConnectionError: ECONNREFUSED` and
    stopped the Trainer (the fault suite's broker restart caught it). Kafka's own clients retry
    what is retriable; so does this, saying once when the outage starts and once when it ends.
    Errors that are not retriable (authorization, authentication) still stop the loop.
    """

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.away_since: float | None = None

    def poll(self, timeout_ms: int, max_records: int | None = None) -> dict[Any, list[Any]]:
        try:
            polled: dict[Any, list[Any]] = self.consumer.poll(
                timeout_ms=timeout_ms, max_records=max_records
            )
        except KafkaError as exc:
            if not getattr(exc, "retriable", False):
                raise
            if self.away_since is None:
                self.away_since = time.monotonic()
                log.warning("the broker is away (%s); polling again until it is back", exc)
            time.sleep(min(max(timeout_ms, 1) / 1000, OUTAGE_PAUSE_S))
            return {}
        if self.away_since is not None:
            log.warning("the broker is back after %.1f s", time.monotonic() - self.away_since)
            self.away_since = None
        return polled
