"""The librdkafka side of the client seam, without a broker: arguments and errors."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError as RdError
from confluent_kafka import KafkaException
from kafka import errors

from pipeline.config.settings import Settings
from pipeline.errors import ConfigError
from pipeline.kafka_io.clients import _common
from pipeline.kafka_io.rdkafka_config import (
    CONSUMER,
    METADATA_TIMEOUT_S,
    PRODUCER,
    as_kafka_error,
    broker_wait_s,
    translate,
)


def test_security_and_membership_arguments_become_librdkafka_properties() -> None:
    settings = Settings(
        bootstrap_servers="a:9093,b:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="predictor",
        kafka_sasl_password="secret",
        kafka_ssl_cafile="/ca.pem",
    )
    config = {
        **_common(settings, "predictor"),
        "group_id": "g",
        "group_instance_id": "p-1",
        "session_timeout_ms": 10_000,
        "isolation_level": "read_committed",
        "max_poll_records": 500,
    }
    properties = translate(config, CONSUMER)
    assert properties["bootstrap.servers"] == "a:9093,b:9093"
    assert properties["security.protocol"] == "SASL_SSL"
    assert properties["sasl.mechanism"] == "SCRAM-SHA-512"
    assert properties["sasl.username"] == "predictor"
    assert properties["sasl.password"] == "secret"
    assert properties["ssl.ca.location"] == "/ca.pem"
    assert properties["ssl.endpoint.identification.algorithm"] == "https"
    assert properties["group.instance.id"] == "p-1"
    assert properties["isolation.level"] == "read_committed"
    assert "max_poll_records" not in properties and "max.poll.records" not in properties


def test_no_static_membership_leaves_the_instance_id_unset() -> None:
    assert "group.instance.id" not in translate({"group_instance_id": None}, CONSUMER)


def test_hostname_checking_off_is_said_to_librdkafka() -> None:
    properties = translate({"ssl_check_hostname": False}, PRODUCER)
    assert properties["ssl.endpoint.identification.algorithm"] == "none"


def test_sockets_send_small_requests_at_once_as_kafka_pythons_do() -> None:
    # Nagle's algorithm held small produce and fetch requests for the peer's delayed ACK:
    # p99 at 1,000 events/s read 416 ms with it, 32-49 ms without (benchmark, this machine).
    assert translate({}, CONSUMER)["socket.nagle.disable"] is True
    assert translate({}, PRODUCER)["socket.nagle.disable"] is True


def test_an_argument_without_a_translation_is_refused_not_dropped() -> None:
    with pytest.raises(ConfigError, match="retry_backoff_ms"):
        translate({"acks": "all", "retry_backoff_ms": 100}, PRODUCER)


def test_how_long_to_wait_for_a_broker_at_construction_means_nothing_to_librdkafka() -> None:
    """kafka-python's client waits for a broker when built (ops gives it 10 s); librdkafka's
    never does, and its first call waits with its own timeout."""
    for table in (CONSUMER, PRODUCER):
        assert translate({"bootstrap_timeout_ms": 10_000}, table) == translate({}, table)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (RdError.TOPIC_AUTHORIZATION_FAILED, errors.TopicAuthorizationFailedError),
        (RdError.GROUP_AUTHORIZATION_FAILED, errors.GroupAuthorizationFailedError),
        (
            RdError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            errors.TransactionalIdAuthorizationFailedError,
        ),
        (RdError._TRANSPORT, errors.KafkaConnectionError),
        (RdError._TIMED_OUT, errors.KafkaTimeoutError),
        (RdError._FENCED, errors.ProducerFencedError),
    ],
)
def test_librdkafka_errors_become_the_kafka_python_errors_the_services_explain(
    code: int, expected: type
) -> None:
    error = as_kafka_error(KafkaException(RdError(code)))
    assert isinstance(error, expected)
    assert isinstance(error, errors.KafkaError)


def test_a_failed_sasl_login_is_an_authentication_error() -> None:
    error = as_kafka_error(RdError(RdError._AUTHENTICATION, "SASL authentication error: bad"))
    assert isinstance(error, errors.SaslAuthenticationFailedError)


def test_the_client_setting_is_checked() -> None:
    from pipeline.config.settings import parse_settings

    with pytest.raises(ConfigError, match="kafka_client"):
        parse_settings("predictor", "", ["--kafka-client", "librdkafka"], env={})
    chosen = parse_settings("predictor", "", [], env={"PIPELINE_KAFKA_CLIENT": "confluent-kafka"})
    assert chosen.kafka_client == "confluent-kafka"


def test_a_bound_for_reaching_the_broker_becomes_the_adapters_wait() -> None:
    """librdkafka builds a client without waiting; the ops commands' bound still holds, on the
    calls that wait for the broker."""
    assert broker_wait_s({}) == METADATA_TIMEOUT_S
    assert broker_wait_s({"bootstrap_timeout_ms": 2500}) == 2.5
