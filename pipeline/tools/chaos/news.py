"""The retrain topic as the faults watch it: what the Trainer says, from now on."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.kafka_io.clients import kafka_security
from pipeline.tools.chaos.harness import Script


class RetrainNews:
    def __init__(self, settings: Settings) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            enable_auto_commit=False,
            **kafka_security(settings),
        )
        partition = TopicPartition(settings.retrain_topic, 0)
        self.consumer.assign([partition])
        self.consumer.seek_to_end(partition)
        self.consumer.position(partition)  # now, not at the first poll
        self.seen: list[dict[str, Any]] = []

    def wait_for(self, kind: str, timeout_s: float, watch: list[Script]) -> dict[str, Any] | None:
        """The first message of this type from now on, or None when the time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=200).values():
                for record in records:
                    try:
                        message = json.loads(record.value)
                    except ValueError:
                        continue
                    if isinstance(message, dict):
                        self.seen.append(message)
            for message in self.seen:
                if message.get("type") == kind:
                    self.seen.remove(message)
                    return message
            for script in watch:
                script.check()
        return None

    def close(self) -> None:
        self.consumer.close()
