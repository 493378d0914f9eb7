"""A Predictor's heartbeat: which version it serves, its partitions and lag, for `ops status`.

Published from the scoring loop (the consumer that knows positions is not thread-safe) every
`--heartbeat-interval-s`, keyed by instance on a compacted topic, so the topic holds the latest
word of each instance. A clean stop writes a tombstone: a stopped instance leaves the listing,
a crashed one stays with its last-seen time.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.messages import Heartbeat, to_json
from pipeline.kafka_io.clients import make_producer

log = logging.getLogger(__name__)


def consumer_lag(consumer: KafkaConsumer) -> dict[int, int]:
    """Events waiting per owned partition (where the high-water mark is known yet)."""
    lag: dict[int, int] = {}
    for tp in consumer.assignment():
        lag[tp.partition] = 0
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        try:
            position = consumer.position(tp, timeout_ms=0)
        except KafkaError:
            continue
        if position is not None:
            lag[tp.partition] = max(highwater - position, 0)
    return lag


class HeartbeatPublisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = settings.instance_name.encode()
        # Its own plain producer: the scoring producer may be transactional (exactly-once).
        self.producer: KafkaProducer = make_producer(settings, "heartbeat", linger_ms=0)
        self._next = 0.0
        self._partitions: set[int] = set()

    def maybe_send(self, consumer: KafkaConsumer, version: int) -> dict[int, int] | None:
        """The lag per partition when a heartbeat went out, else None."""
        now = time.monotonic()
        owned = {tp.partition for tp in consumer.assignment()}
        # A rebalance is news at once: lag gauges and `ops status` should not wait a whole interval.
        if now < self._next and owned == self._partitions:
            return None
        self._partitions = owned
        self._next = now + self.settings.heartbeat_interval_s
        lag = consumer_lag(consumer)
        beat = Heartbeat(
            instance=self.settings.instance_name,
            model_name=self.settings.model_name,
            version=version,
            partitions=sorted(lag),
            lag=sum(lag.values()),
        )
        self.producer.send(self.settings.heartbeat_topic, key=self.key, value=to_json(beat))
        return lag

    def close(self) -> None:
        """A tombstone, so `ops status` stops listing an instance that stopped cleanly."""
        try:
            self.producer.send(self.settings.heartbeat_topic, key=self.key, value=None)
            self.producer.flush(timeout=5)
        except KafkaError as exc:
            log.warning("could not clear this instance's heartbeat: %s", exc)
        finally:
            self.producer.close(timeout=5)
