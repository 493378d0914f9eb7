"""What both librdkafka adapters share: kafka-python's arguments as librdkafka properties,
librdkafka's errors as kafka-python's, its logging, and partitions in both spellings.

`make_producer`/`make_consumer` speak kafka-python's argument names; with
`--kafka-client confluent-kafka` the same arguments are translated here, so security, static
membership, idempotence and transactions are decided in one place for both clients. An
argument without a translation is refused rather than dropped: a setting that silently does
nothing would be a guarantee that silently does not hold.

Errors: every service catches `kafka.errors.KafkaError` and `failures.kafka_failure` explains
it (who was refused what). librdkafka reports broker errors with the protocol's own codes, so
`kafka.errors.for_code` gives the same exception kafka-python raises; its local errors (no
broker, timeouts, a failed login) map to the kafka-python exceptions that mean the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError as RdError
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as RdPartition
from kafka import TopicPartition, errors
from kafka.structs import OffsetAndMetadata

from pipeline.errors import ConfigError

_Convert = Callable[[Any], Any]

METADATA_TIMEOUT_S = 10.0
RDKAFKA_LOG = logging.getLogger("librdkafka")


def _servers(value: Any) -> str:
    return ",".join(value) if isinstance(value, list | tuple) else str(value)


def _same(value: Any) -> Any:
    return value


def _hostname_check(value: Any) -> str:
    return "https" if value else "none"


COMMON: dict[str, tuple[str, _Convert]] = {
    "bootstrap_servers": ("bootstrap.servers", _servers),
    "client_id": ("client.id", _same),
    "reconnect_backoff_max_ms": ("reconnect.backoff.max.ms", _same),
    "security_protocol": ("security.protocol", _same),
    "ssl_check_hostname": ("ssl.endpoint.identification.algorithm", _hostname_check),
    "ssl_cafile": ("ssl.ca.location", _same),
    "sasl_mechanism": ("sasl.mechanism", _same),
    "sasl_plain_username": ("sasl.username", _same),
    "sasl_plain_password": ("sasl.password", _same),
}
PRODUCER: dict[str, tuple[str, _Convert]] = {
    **COMMON,
    "acks": ("acks", _same),
    "enable_idempotence": ("enable.idempotence", _same),
    "linger_ms": ("linger.ms", _same),
    "batch_size": ("batch.size", _same),
    "max_request_size": ("message.max.bytes", _same),
    "transactional_id": ("transactional.id", _same),
}
CONSUMER: dict[str, tuple[str, _Convert]] = {
    **COMMON,
    "group_id": ("group.id", _same),
    "group_instance_id": ("group.instance.id", _same),
    "session_timeout_ms": ("session.timeout.ms", _same),
    "enable_auto_commit": ("enable.auto.commit", _same),
    "auto_offset_reset": ("auto.offset.reset", _same),
    "isolation_level": ("isolation.level", _same),
    "fetch_max_wait_ms": ("fetch.wait.max.ms", _same),
    "fetch_max_bytes": ("fetch.max.bytes", _same),
    "max_poll_interval_ms": ("max.poll.interval.ms", _same),
}
# kafka-python's sockets are TCP_NODELAY; librdkafka's are not unless asked. With Nagle on,
# a small produce or fetch can wait for the peer's delayed ACK (tens of ms) before it leaves.
ALWAYS: dict[str, Any] = {"socket.nagle.disable": True}
# Read by the adapter itself, not by librdkafka.
ADAPTER_ONLY = frozenset({"max_poll_records"})
# kafka-python waits for a broker when a client is built; librdkafka builds it without waiting
# (its first call waits, with that call's own timeout), so there is nothing to translate: the
# adapters take it as the wait of their metadata and offset calls instead (`broker_wait_s`).
CONSTRUCTION_ONLY = frozenset({"bootstrap_timeout_ms"})


def broker_wait_s(config: Mapping[str, Any]) -> float:
    """How long an adapter's metadata and offset calls wait for the broker: the bound a caller
    gave for reaching it (the ops commands' --ops-timeout-s), else METADATA_TIMEOUT_S."""
    given = config.get("bootstrap_timeout_ms")
    return float(given) / 1000 if given else METADATA_TIMEOUT_S


def translate(config: Mapping[str, Any], table: Mapping[str, tuple[str, _Convert]]) -> dict:
    """librdkafka properties for kafka-python arguments; None means "not set"."""
    unknown = sorted(set(config) - set(table) - ADAPTER_ONLY - CONSTRUCTION_ONLY)
    if unknown:
        raise ConfigError(
            f"no librdkafka equivalent for the client argument(s) {', '.join(unknown)}"
        )
    properties: dict[str, Any] = dict(ALWAYS)
    for name, value in config.items():
        if name in ADAPTER_ONLY or name in CONSTRUCTION_ONLY or value is None:
            continue
        key, convert = table[name]
        properties[key] = convert(value)
    return properties


# librdkafka's local error codes (negative) that kafka-python spells with its own exceptions.
_LOCAL: dict[int, type[errors.KafkaError]] = {
    RdError._TRANSPORT: errors.KafkaConnectionError,
    RdError._ALL_BROKERS_DOWN: errors.KafkaConnectionError,
    RdError._TIMED_OUT: errors.KafkaTimeoutError,
    RdError._MSG_TIMED_OUT: errors.KafkaTimeoutError,
    RdError._AUTHENTICATION: errors.SaslAuthenticationFailedError,
    RdError._FENCED: errors.ProducerFencedError,
    RdError._UNKNOWN_TOPIC: errors.UnknownTopicOrPartitionError,
    RdError._UNKNOWN_PARTITION: errors.UnknownTopicOrPartitionError,
}


def as_kafka_error(
    error: RdError | KafkaException | BaseException, topic: str | None = None
) -> errors.KafkaError:
    """The kafka-python exception for a librdkafka error (raise it `from` the original).

    `topic`: the topic of a failed delivery; kafka-python names denied topics as a set."""
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], RdError):
        error = error.args[0]
    if not isinstance(error, RdError):
        return errors.KafkaError(str(error))
    code, text = error.code(), error.str()
    if code > 0:  # a code kafka-python does not know gives its UnrecognizedBrokerError
        kind = errors.for_code(code)
        if topic is not None and kind is errors.TopicAuthorizationFailedError:
            return kind({topic})
        return kind(text)
    if code == RdError._AUTHENTICATION and "SASL" not in text:  # TLS handshake, say
        return errors.KafkaConnectionError(text)
    return _LOCAL.get(code, errors.KafkaError)(f"{error.name()}: {text}")


def logging_properties() -> dict[str, Any]:
    """librdkafka's warnings through Python logging (it hands them over when polled). At
    DEBUG, its connection and login detail goes straight to stderr from its own threads, so a
    client that fails before any poll still shows why; it redacts secrets such as
    sasl.password from what it prints."""
    if RDKAFKA_LOG.isEnabledFor(logging.DEBUG):
        return {"debug": "broker,security"}
    return {"logger": RDKAFKA_LOG}


def rd_partition(tp: TopicPartition, offset: int | None = None) -> RdPartition:
    return (
        RdPartition(tp.topic, tp.partition)
        if offset is None
        else RdPartition(tp.topic, tp.partition, offset)
    )


def kafka_partitions(partitions: Iterable[RdPartition]) -> set[TopicPartition]:
    return {TopicPartition(p.topic, p.partition) for p in partitions}


def rd_offsets(offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> list[RdPartition]:
    return [rd_partition(tp, meta.offset) for tp, meta in offsets.items()]


def call(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except KafkaException as exc:
        raise as_kafka_error(exc) from exc
