"""Kafka administration: is the broker there, and do our topics exist (idempotently)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.core.topics import TopicSpec
from pipeline.errors import BrokerError
from pipeline.kafka_io.failures import construct, explain, kafka_failure
from pipeline.kafka_io.security import warn_if_unverified

log = logging.getLogger(__name__)


def admin_client(
    bootstrap_servers: str, timeout_s: float = 30.0, security: Mapping[str, Any] | None = None
) -> KafkaAdminClient:
    """Retry until the deadline so a broker that is still starting is not an error."""
    warn_if_unverified(security or {}, "pipeline-admin")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return construct(
                KafkaAdminClient,
                bootstrap_servers=bootstrap_servers,
                client_id="pipeline-admin",
                **(security or {}),
                request_timeout_ms=int(max(timeout_s, 5) * 1000),
                bootstrap_timeout_ms=int(max(min(timeout_s, 10), 1) * 1000),
            )
        except (KafkaError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise BrokerError(
                    explain(exc, bootstrap_servers, security or {}, "connecting")
                    or f"no Kafka broker answers at {bootstrap_servers} after {timeout_s:.0f}s: {exc}"
                ) from exc
            time.sleep(0.5)


def wait_for_broker(
    bootstrap_servers: str, timeout_s: float = 30.0, security: Mapping[str, Any] | None = None
) -> None:
    """A broker is ready once it answers a metadata request."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client = admin_client(
                bootstrap_servers, max(deadline - time.monotonic(), 1.0), security
            )
            try:
                client.list_topics()
                return
            finally:
                client.close()
        except (KafkaError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise BrokerError(f"broker at {bootstrap_servers} is not ready: {exc}") from exc
            time.sleep(0.5)


def ensure_topics(
    bootstrap_servers: str,
    specs: list[TopicSpec],
    timeout_s: float = 30.0,
    security: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create what is missing; returns the names created. Existing topics are left alone."""
    client = admin_client(bootstrap_servers, timeout_s, security)
    try:
        existing = set(client.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created = []
        for spec in missing:
            try:
                client.create_topics(
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=dict(spec.configs))],
                    wait_for_metadata=True,
                )
                created.append(spec.name)
                log.info("created topic %s with %d partition(s)", spec.name, spec.partitions)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        return created
    except KafkaError as exc:
        raise kafka_failure(exc, bootstrap_servers, security or {}, "creating topics") from exc
    finally:
        client.close()


def max_message_bytes(
    bootstrap_servers: str, topic: str, security: Mapping[str, Any] | None = None
) -> int:
    """The largest record batch the broker takes on `topic`: the topic's own
    `max.message.bytes`, else the broker's default (`config_filter="all"` returns either)."""
    client = admin_client(bootstrap_servers, security=security)
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, ["max.message.bytes"])
    try:
        described = client.describe_configs([resource], config_filter="all")
        return int(described["topic"][topic]["max.message.bytes"]["value"])
    except (KafkaError, KeyError, TypeError, ValueError) as exc:
        raise BrokerError(f"cannot read max.message.bytes of topic {topic}: {exc}") from exc
    finally:
        client.close()


def wait_for_members(
    bootstrap_servers: str,
    group: str,
    count: int,
    exited: Callable[[], list],
    timeout_s: float = 90,
    settle_s: float = 4.0,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Until `count` members hold partitions in a group that stays stable for `settle_s`.

    A freshly started group rebalances a few times as each member's topic metadata arrives
    (a heartbeat interval apart); the settle time waits those out so that a measurement or a
    demo does not start in the middle of one.
    """
    admin = admin_client(bootstrap_servers, security=security)
    deadline = time.monotonic() + timeout_s
    stable_since: float | None = None
    seen: frozenset[str] = frozenset()
    try:
        while time.monotonic() < deadline:
            dead = exited()
            if dead:
                raise BrokerError(f"{dead} exited before joining group {group}; see its log")
            try:
                state = admin.describe_groups([group])[group]
            except KafkaError:  # the group coordinator is still starting up
                time.sleep(0.5)
                continue
            holding = frozenset(str(m) for m in state.get("members", []) if _holds_partitions(m))
            if state.get("group_state") != "Stable" or len(holding) < count or holding != seen:
                stable_since, seen = None, holding
            elif stable_since is None:
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since >= settle_s:
                return
            time.sleep(0.2)
    finally:
        admin.close()
    raise BrokerError(f"{count} members did not join group {group} within {timeout_s:.0f}s")


def _holds_partitions(member: dict) -> bool:
    """kafka-python decodes an empty assignment to a string, a real one to a dict."""
    assignment = member.get("member_assignment")
    return isinstance(assignment, dict) and bool(assignment.get("assigned_partitions"))
