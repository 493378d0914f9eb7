"""Kafka failures as messages an operator can act on: who was refused what, or why a login failed.

kafka-python says `TopicAuthorizationFailedError({'app_predictions'})` or, for a wrong password,
only "Unable to bootstrap". The services turn every KafkaError into a BrokerError (exit code 4)
through `kafka_failure`, which names the principal, the topic, group or transactional id, what
the service was doing, and the command that prints the role's ACLs. Passwords never appear: the
messages are built from names only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from kafka.errors import (
    AuthorizationError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
)

from pipeline.errors import BrokerError
from pipeline.kafka_io.login_probe import login_failure
from pipeline.kafka_io.security import SASL_PROTOCOLS, principal_of

Client = TypeVar("Client")


def construct(cls: type[Client], **config: Any) -> Client:
    """`cls(**config)`, but a constructor that fails leaves no thread behind.

    kafka-python 3.0.12's consumer and admin client start their network thread before they
    bootstrap; when the bootstrap fails (a refused login, no broker) the constructor raises and
    that thread runs on with nobody to close it. Here the half-built client is closed first.
    """
    client = cls.__new__(cls)
    try:
        client.__init__(**config)  # type: ignore[misc]
    except BaseException:
        network = getattr(client, "_client", None)
        if network is not None:
            network.close()
        raise
    return client


def kafka_failure(
    exc: BaseException,
    bootstrap_servers: str,
    config: Mapping[str, Any],
    doing: str,
    role: str | None = None,
    group: str | None = None,
    transactional_id: str | None = None,
) -> BrokerError:
    """The BrokerError to raise `from exc`; `group`/`transactional_id` name the resource when
    the client's error does not carry it."""
    message = explain(exc, bootstrap_servers, config, doing, role, group, transactional_id)
    return BrokerError(message or f"{doing} failed on Kafka at {bootstrap_servers}: {exc}")


def explain(
    exc: BaseException,
    bootstrap_servers: str,
    config: Mapping[str, Any],
    doing: str,
    role: str | None = None,
    group: str | None = None,
    transactional_id: str | None = None,
) -> str | None:
    """A message for a refused login or a denied request; None for other failures."""
    if isinstance(exc, AuthorizationError):
        return _denied(exc, config, doing, role, group, transactional_id)
    user = config.get("sasl_plain_username") or "(none)"
    if isinstance(exc, SaslAuthenticationFailedError):
        return f"Kafka authentication failed for user {user}: {exc}"
    # kafka-python times out "bootstrapping"; librdkafka finds "all broker connections down".
    unreachable = isinstance(exc, KafkaConnectionError) or (
        isinstance(exc, KafkaTimeoutError) and "bootstrap" in str(exc).lower()
    )
    if unreachable:
        reason = login_failure(bootstrap_servers, config)
        if reason and config.get("security_protocol") in SASL_PROTOCOLS:
            return f"Kafka authentication failed for user {user}: {reason}"
        if reason:
            return f"cannot connect to Kafka at {bootstrap_servers}: {reason}"
    return None


def _denied(
    exc: AuthorizationError,
    config: Mapping[str, Any],
    doing: str,
    role: str | None,
    group: str | None,
    transactional_id: str | None,
) -> str:
    principal = principal_of(config)
    if isinstance(exc, TopicAuthorizationFailedError):
        resource = f"topic {_names(exc.args)}"
    elif isinstance(exc, GroupAuthorizationFailedError):
        resource = f"group {_names(exc.args) or group or '(unknown)'}"
    elif isinstance(exc, TransactionalIdAuthorizationFailedError):
        resource = f"transactional id {transactional_id or '(unknown)'}"
    elif isinstance(exc, ClusterAuthorizationFailedError):
        resource = "the cluster"
    else:
        resource = "a resource"
    hint = (
        f"; the ACLs of this role: python -m pipeline.kafka_io.acls --role {role}" if role else ""
    )
    return (
        f"Kafka denied {principal} access to {resource} while {doing} ({type(exc).__name__}){hint}"
    )


def _names(args: Iterable[object]) -> str:
    """kafka-python passes a set of topics, a group id, or nothing."""
    names: list[str] = []
    for arg in args:
        if isinstance(arg, set | frozenset | list | tuple):
            names += sorted(str(a) for a in arg)
        elif isinstance(arg, str) and arg and " " not in arg:
            names.append(arg)
    return ", ".join(names)
