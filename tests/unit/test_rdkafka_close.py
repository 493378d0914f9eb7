"""The librdkafka consumer's `close()` runs the revocation for the partitions it holds before it
leaves the group, as kafka-python's does: that is when the offset keeper commits what is owed.
On a real broker librdkafka's asynchronous commits usually land before the close anyway, so only
a consumer whose calls are recorded shows the order. No broker here."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import TopicPartition as RdPartition
from kafka import TopicPartition

from pipeline.kafka_io import rdkafka_consumer
from pipeline.kafka_io.rdkafka_consumer import RdConsumer


class FakeConsumer:
    """librdkafka's consumer, reduced to what subscribing and closing do, calls written down."""

    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.steps.append(f"subscribe {','.join(topics)}")

    def close(self) -> None:
        self.steps.append("leave the group")


class Listener:
    """kafka-python's listener shape: coroutines, as the offset keeper's are."""

    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.steps.append(f"assigned {sorted(tp.partition for tp in assigned)}")

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.steps.append(f"revoked {sorted(tp.partition for tp in revoked)}")

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.steps.append(f"lost {sorted(tp.partition for tp in lost)}")


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(rdkafka_consumer, "Consumer", lambda properties: FakeConsumer(seen))
    return seen


def subscribed(steps: list[str]) -> RdConsumer:
    consumer = RdConsumer(bootstrap_servers="127.0.0.1:1", group_id="g", client_id="c")
    consumer.subscribe(["events"], listener=Listener(steps))
    return consumer


def test_close_revokes_what_is_held_before_leaving(steps: list[str]) -> None:
    consumer = subscribed(steps)
    consumer._on_assign(None, [RdPartition("events", 0), RdPartition("events", 2)])

    consumer.close()

    assert steps == ["subscribe events", "assigned [0, 2]", "revoked [0, 2]", "leave the group"]


def test_close_after_a_rebalance_revokes_only_what_is_still_held(steps: list[str]) -> None:
    consumer = subscribed(steps)
    consumer._on_assign(None, [RdPartition("events", 0), RdPartition("events", 1)])
    consumer._on_revoke(None, [RdPartition("events", 0)])
    consumer._on_lost(None, [RdPartition("events", 1)])  # lost: nothing to commit for it
    consumer._on_assign(None, [RdPartition("events", 3)])

    consumer.close()

    assert steps[-2:] == ["revoked [3]", "leave the group"]


def test_close_with_nothing_held_just_leaves(steps: list[str]) -> None:
    consumer = subscribed(steps)

    consumer.close()

    assert steps == ["subscribe events", "leave the group"]
