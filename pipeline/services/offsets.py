"""The input offsets a Predictor owes its group, settled when a partition leaves it, never later.

At-least-once commits are asynchronous and go every --commit-interval-ms, so the last offsets
of a partition may still be owed when a rebalance takes the partition away. Kept past that
point, they are stale: the partition may come back after another instance committed further,
and committing the old value then (at close, say) would move the group backwards, replaying
events and rewinding the Trainer's view of what was scored. So owed offsets are committed
when their partition is revoked, while this instance is still the recognised owner, and
forgotten; a partition *lost* (the broker already expelled this member) is forgotten without
a commit, which the broker would refuse.

kafka-python 3.x calls the listener on the consumer's IO thread, for rebalances and on
`close()` as well (`ConsumerCoordinator._on_close_prepare_async`; `on_partitions_lost` when the
membership is already gone). A blocking commit there would raise ("cannot block on net.run()
from the IO thread"), hence the async listener that awaits an asynchronous commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from pipeline.core.batching import InputRecord

log = logging.getLogger(__name__)

Offsets = dict[TopicPartition, OffsetAndMetadata]


def known_positions(consumer: KafkaConsumer) -> dict[TopicPartition, int]:
    """Each owned partition's next offset, where the client knows it without asking the broker.

    A position kafka-python 3.0.12 must look up (a partition just assigned) asks the group
    coordinator, and in the first moments of a broker outage that lookup raises the outage's
    connection error: a retrain request's offsets are no reason to stop scoring, so such a
    partition is left out of the request (the Trainer reads nothing of it for that one)."""
    known: dict[TopicPartition, int] = {}
    for tp in consumer.assignment():
        try:
            position = consumer.position(tp, timeout_ms=0)
        except KafkaError:
            continue
        if position is not None:
            known[tp] = position
    return known


class OffsetKeeper(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks the assignment and the offsets acknowledged but possibly not yet committed."""

    def __init__(self) -> None:
        self.partitions: frozenset[int] = frozenset()
        self.commits_on_revoke = 0
        self.dropped_on_loss = 0
        self._owed: Offsets = {}
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()  # the loop writes, the consumer's IO thread settles
        self._acknowledge: Callable[[], None] = lambda: None

    def bind(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer

    def acknowledge_first(self, acknowledge: Callable[[], None]) -> None:
        """What a revocation runs before it settles: the publisher waits for the outputs still
        in flight and owes their offsets, so the partitions leave with everything scored on
        them committed instead of replayed by their next owner."""
        self._acknowledge = acknowledge

    def owe(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> Offsets:
        """Offsets whose outputs the broker acknowledged, not committed yet or in flight.

        Only partitions still held are kept (and returned): a batch acknowledged after its
        partition left must not move the new owner's position back."""
        with self._lock:
            held = {tp: o for tp, o in offsets.items() if tp.partition in self.partitions}
            self._owed.update(held)
            return held

    @property
    def owed(self) -> Offsets:
        with self._lock:
            return dict(self._owed)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            self._acknowledge()
        except KafkaError as exc:  # what was not acknowledged is replayed: at-least-once
            log.warning("outputs in flight at revocation not acknowledged: %s", exc)
        self.partitions = self.partitions - {tp.partition for tp in revoked}
        owed = self._take(revoked)
        if revoked:
            log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))
        if not owed or self._consumer is None:
            return
        try:
            await self._consumer.commit_async(owed)
            self.commits_on_revoke += 1
        except KafkaError as exc:  # the next owner replays from the older commit: at-least-once
            log.warning("commit of revoked partitions failed; they may be replayed: %s", exc)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.partitions = self.partitions - {tp.partition for tp in lost}
        owed = self._take(lost)
        self.dropped_on_loss += len(owed)
        log.warning(
            "partitions lost (expelled from the group): %s; %d owed offset(s) dropped uncommitted",
            sorted(tp.partition for tp in lost),
            len(owed),
        )

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.partitions = self.partitions | {tp.partition for tp in assigned}
        log.info("partitions assigned: %s", sorted(self.partitions))

    def _take(self, partitions: Iterable[TopicPartition]) -> Offsets:
        with self._lock:
            return {tp: o for tp in partitions if (o := self._owed.pop(tp, None)) is not None}


def next_offsets(polled: Mapping[TopicPartition, Sequence[InputRecord]]) -> Offsets:
    """The offset to commit per partition is the one after the last record processed.

    Read from the poll's own grouping, whose records come in offset order within a partition
    (both clients): one TopicPartition per record was 4.5 % of the loop on librdkafka."""
    return {
        tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
        for tp, records in polled.items()
        if records
    }


def log_failed_commit(offsets: object, response: object) -> None:
    """A failed asynchronous commit is covered by the next one; only worth a warning."""
    if isinstance(response, Exception):
        log.warning("offset commit failed (the next one covers it): %s", response)
