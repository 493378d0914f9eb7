"""The client side of Kafka security: the kafka-python arguments, who we are, and TLS checks.

Every producer, consumer and admin client is built from `kafka_security(settings)`, so TLS,
SASL and hostname verification are decided here once. Hostname verification is on by default;
turning it off (`--no-kafka-ssl-check-hostname`) accepts any certificate the CA signed, for any
host, so each client built that way says so in a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeline.config.settings import Settings

log = logging.getLogger(__name__)

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


def kafka_security(settings: Settings) -> dict[str, Any]:
    """The kafka-python arguments for SSL/SASL: the protocol, hostname checking, and whatever
    else is set."""
    config: dict[str, Any] = {
        "security_protocol": settings.kafka_security_protocol,
        "ssl_check_hostname": settings.kafka_ssl_check_hostname,
    }
    optional = {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": settings.kafka_sasl_password,
        "ssl_cafile": settings.kafka_ssl_cafile,
    }
    config.update({key: value for key, value in optional.items() if value})
    return config


def principal_of(config: Mapping[str, Any]) -> str:
    """The principal the broker's ACLs see for these arguments (no client certificates here)."""
    if config.get("security_protocol") in SASL_PROTOCOLS and config.get("sasl_plain_username"):
        return f"User:{config['sasl_plain_username']}"
    return "User:ANONYMOUS"


def warn_if_unverified(config: Mapping[str, Any], client: str) -> None:
    """One warning per client built over TLS without hostname verification."""
    if config.get("security_protocol") in TLS_PROTOCOLS and not config.get(
        "ssl_check_hostname", True
    ):
        log.warning(
            "TLS hostname verification is off for Kafka client %s: any certificate the CA "
            "signed is accepted for any host (--kafka-ssl-check-hostname turns it back on)",
            client,
        )
