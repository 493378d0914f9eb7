"""The least-privilege ACLs of each role, spelled once, derived from the settings.

Why each grant exists (what the service really does with Kafka):

- predictor: consumes `input_topic` in group `predictor_group` (Read on both); reads
  `retrain_topic` by assign+seek with no group and sends retrain requests to it (Read, Write);
  publishes predictions and dead letters (Write). Its producer is idempotent: Kafka 3+ accepts
  InitProducerId from a principal that may Write to any topic, so no IdempotentWrite on the
  cluster. With `--exactly-once` it also needs Write on the transactional ids `<group>-*`
  (prefixed), and the group's Read covers the offsets committed in its transactions.
- trainer: consumes `retrain_topic` in group `trainer_group` and announces on it (Read, Write);
  reads `input_topic` by assign (Read); reads the committed offsets of `predictor_group`
  (Describe on the group; Read on `input_topic` already allows describing it).
- sample-app: produces to `input_topic` (Write); reads predictions and dead letters by assign,
  with no group (Read).
- ops: the operator command reads and writes `retrain_topic` (Read, Write, Describe: news,
  announcements, retrain requests), describes `predictor_group` and reads `heartbeat_topic`
  (by assign) for its status. The predictor writes its heartbeats there (Write).

Creating topics and granting ACLs stay with the admin principal (a super user). Read, Write and
Alter imply Describe in Kafka; where Describe is listed on its own, it is all the role needs.
`python -m pipeline.kafka_io.acls --role predictor` prints the equivalent kafka-acls.sh commands.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError

from pipeline.config.settings import Settings, settings_from
from pipeline.errors import BrokerError, PipelineError

ROLES = ("predictor", "trainer", "sample-app", "ops")
RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional-id": ResourceType.TRANSACTIONAL_ID,
}


@dataclass(frozen=True)
class Grant:
    """Operations allowed on one resource (`prefixed`: every name that starts with `name`)."""

    resource: str  # a key of RESOURCE_TYPES
    name: str
    operations: tuple[str, ...]  # Kafka's names: Read, Write, Describe
    why: str
    prefixed: bool = False


def role_grants(role: str, settings: Settings) -> list[Grant]:
    """What `role` needs with these topic and group names, nothing more."""
    s = settings
    if role == "predictor":
        grants = [
            Grant("topic", s.input_topic, ("Read",), "consume events in its group"),
            Grant("topic", s.retrain_topic, ("Read", "Write"), "hear model news, ask retrains"),
            Grant("topic", s.predictions_topic, ("Write",), "publish predictions"),
            Grant("topic", s.shadow_topic, ("Write",), "publish the challenger's shadow scores"),
            Grant(
                "topic",
                s.dlq_topic,
                ("Write", "DescribeConfigs"),
                "publish dead letters, cut to fit",
            ),
            Grant("topic", s.heartbeat_topic, ("Write",), "heartbeats for ops status"),
            Grant("topic", s.labels_topic, ("Read",), "join late labels, by assign"),
            Grant("group", s.predictor_group, ("Read",), "join, commit offsets"),
        ]
        if s.exactly_once:
            grants.append(
                Grant(
                    "transactional-id",
                    f"{s.predictor_group}-",
                    ("Write",),
                    "exactly-once: one transactional id per instance",
                    prefixed=True,
                )
            )
        return grants
    if role == "trainer":
        return [
            Grant("topic", s.retrain_topic, ("Read", "Write"), "take requests, announce models"),
            Grant("topic", s.input_topic, ("Read",), "read labelled events by assign"),
            Grant("topic", s.shadow_topic, ("Read",), "judge the challenger, by assign"),
            Grant("group", s.trainer_group, ("Read",), "consume requests, commit"),
            Grant("group", s.predictor_group, ("Describe",), "read the scored offsets"),
        ]
    if role == "sample-app":
        return [
            Grant("topic", s.input_topic, ("Write",), "send events"),
            Grant("topic", s.labels_topic, ("Write",), "send labels after their events"),
            Grant("topic", s.predictions_topic, ("Read",), "read predictions by assign"),
            Grant("topic", s.dlq_topic, ("Read",), "read dead letters by assign"),
        ]
    if role == "ops":
        return [
            Grant("topic", s.retrain_topic, ("Read", "Write", "Describe"), "read news, retrain"),
            Grant("group", s.predictor_group, ("Describe",), "status: the group's offsets"),
            Grant("topic", s.heartbeat_topic, ("Read",), "status: every Predictor's heartbeat"),
        ]
    raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")


# Kafka spells the operation DescribeConfigs; kafka-python's enum, DESCRIBE_CONFIGS.
_ENUM_NAME = {"DescribeConfigs": "DESCRIBE_CONFIGS"}


def to_acls(principal: str, grants: Sequence[Grant]) -> list[ACL]:
    """kafka-python ACL objects: one ALLOW per operation, from any host."""
    return [
        ACL(
            principal=principal,
            host="*",
            operation=ACLOperation[_ENUM_NAME.get(operation, operation.upper())],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                RESOURCE_TYPES[grant.resource],
                grant.name,
                ACLResourcePatternType.PREFIXED
                if grant.prefixed
                else ACLResourcePatternType.LITERAL,
            ),
        )
        for grant in grants
        for operation in grant.operations
    ]


def grant_role(admin: KafkaAdminClient, principal: str, role: str, settings: Settings) -> int:
    """Create the role's ACLs for `principal` with an admin client of a principal allowed to
    alter the cluster's ACLs; returns how many were created."""
    acls = to_acls(principal, role_grants(role, settings))
    try:
        result = admin.create_acls(acls)
    except KafkaError as exc:
        raise BrokerError(f"creating the ACLs of {principal} ({role}) failed: {exc}") from exc
    if result["failed"]:
        raise BrokerError(f"the broker refused ACLs of {principal} ({role}): {result['failed']}")
    return len(result["succeeded"])


def kafka_acls_commands(
    principal: str,
    role: str,
    settings: Settings,
    bootstrap_server: str = "localhost:9092",
    command_config: str = "admin.properties",
) -> list[str]:
    """The same grants as `kafka-acls.sh` commands, one per resource."""
    flags = {"topic": "--topic", "group": "--group", "transactional-id": "--transactional-id"}
    commands = []
    for grant in role_grants(role, settings):
        words = [
            "kafka-acls.sh",
            "--bootstrap-server",
            bootstrap_server,
            "--command-config",
            command_config,
            "--add",
            "--allow-principal",
            principal,
        ]
        for operation in grant.operations:
            words += ["--operation", operation]
        words += [flags[grant.resource], grant.name]
        if grant.prefixed:
            words += ["--resource-pattern-type", "prefixed"]
        commands.append(shlex.join(words))
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.kafka_io.acls",
        description="Print the kafka-acls.sh commands that grant one role its ACLs. Topic and "
        "group names come from the PIPELINE_* variables, as for the services.",
    )
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--principal", help="default: User:<role>")
    parser.add_argument("--exactly-once", action="store_true", help="the predictor's EOS grant")
    parser.add_argument("--bootstrap-server", help="default: the configured bootstrap servers")
    parser.add_argument("--command-config", default="admin.properties")
    args = parser.parse_args(argv)
    try:
        settings = settings_from(argparse.Namespace(exactly_once=args.exactly_once or None))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    principal = args.principal or f"User:{args.role}"
    if not principal.startswith("User:"):
        parser.error("--principal must look like User:<name>")
    for command in kafka_acls_commands(
        principal,
        args.role,
        settings,
        args.bootstrap_server or settings.bootstrap_servers,
        args.command_config,
    ):
        print(command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
