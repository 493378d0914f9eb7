"""librdkafka's consumer (confluent-kafka) behind the slice of kafka-python's API the services use.

The seam is the client, not the loop: `make_consumer`/`make_producer` return these adapters
under `--kafka-client confluent-kafka`, and the Predictor, Trainer, sample app and ops command
run unchanged, with the same guarantees (static membership, read_committed, commits after
acknowledgements, transactions with the group's metadata, the offset keeper's settling on
revocation). Where the two clients differ, the adapter takes kafka-python's meaning:
- `poll()` returns records grouped by partition, at most `max_poll_records`.
- Rebalance listeners are kafka-python's async ones. librdkafka calls its callbacks on the
  polling thread, inside `consume()`, where a synchronous commit is allowed, so each listener
  coroutine is driven to its end there and an awaited `commit_async` commits synchronously.
- `close()` runs the revocation for the partitions held, as kafka-python's does.
- A consumer without a group (assign-only readers) gets a private group id librdkafka insists
  on; it never commits to it and reads from the reset end, never from a committed offset.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, Message
from confluent_kafka import KafkaError as RdError
from confluent_kafka import TopicPartition as RdPartition
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.kafka_io.rdkafka_config import (
    CONSUMER,
    as_kafka_error,
    broker_wait_s,
    call,
    kafka_partitions,
    logging_properties,
    rd_offsets,
    rd_partition,
    translate,
)


class Record(msgspec.Struct, gc=False):
    """The ConsumerRecord fields the services read. A msgspec struct the garbage collector
    does not track: one is made per event on the loop's thread, and reading a batch of
    messages into these took 0.9 us an event against 1.8 as a NamedTuple (with the
    TopicPartition made per message, not once per partition)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class _Completed:
    """What `commit_async` returns: already done, so a listener may await it."""

    def __await__(self) -> Any:
        return iter(())


def _drive(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run a listener coroutine whose awaits are all already complete."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("a rebalance listener awaited something the adapter cannot complete")


class RdConsumer:
    def __init__(self, **config: Any) -> None:
        self.max_poll_records = int(config.get("max_poll_records") or 500)
        self._reset = config.get("auto_offset_reset", "latest")
        self._groupless = not config.get("group_id")
        if self._groupless:  # librdkafka wants one even for assign-only reading
            config = {**config, "group_id": f"{config.get('client_id', 'reader')}-{uuid.uuid4()}"}
            config["enable_auto_commit"] = False
        properties = {**translate(config, CONSUMER), **logging_properties()}
        self._wait_s = broker_wait_s(config)
        self._consumer = call(lambda: Consumer(properties))
        self._listener: Any = None
        self._assigned: set[TopicPartition] = set()
        self._starts: dict[TopicPartition, int] = {}
        self._pending = False  # an assign() not yet taken to librdkafka
        self._in_callback = False
        # (topic, partition) -> its TopicPartition, made once, not once per message.
        self._partitions: dict[tuple[str | None, int | None], TopicPartition] = {}

    # -- group membership -------------------------------------------------------------------
    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self._listener = listener
        call(
            lambda: self._consumer.subscribe(
                topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
        )

    def _on_assign(self, _: Consumer, partitions: list[RdPartition]) -> None:
        assigned = kafka_partitions(partitions)
        self._assigned |= assigned
        self._notify("on_partitions_assigned", assigned)

    def _on_revoke(self, _: Consumer, partitions: list[RdPartition]) -> None:
        revoked = kafka_partitions(partitions)
        self._notify("on_partitions_revoked", revoked)
        self._assigned -= revoked

    def _on_lost(self, _: Consumer, partitions: list[RdPartition]) -> None:
        lost = kafka_partitions(partitions)
        self._notify("on_partitions_lost", lost)
        self._assigned -= lost

    def _notify(self, method: str, partitions: set[TopicPartition]) -> None:
        if self._listener is None:
            return
        self._in_callback = True
        try:
            _drive(getattr(self._listener, method)(partitions))
        finally:
            self._in_callback = False

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    # -- reading ----------------------------------------------------------------------------
    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        """As kafka-python's: back as soon as anything is there, with what is there.

        librdkafka's `consume(n, timeout)` waits for n messages or the timeout, which would
        add the whole wait to every event's latency at low load; so one `poll` waits for the
        first message and a `consume` that does not wait takes what is already fetched."""
        self._start_assigned()
        limit = max_records or self.max_poll_records
        first: Message | None = call(lambda: self._consumer.poll(max(timeout_ms, 0) / 1000))
        if first is None:
            return {}
        messages: list[Message] = [first]
        if limit > 1:
            messages += call(lambda: self._consumer.consume(limit - 1, 0))
        polled: dict[TopicPartition, list[Record]] = collections.defaultdict(list)
        partitions = self._partitions
        for m in messages:
            error = m.error()
            if error is not None:
                if error.code() == RdError._PARTITION_EOF or self._unused_group(error):
                    continue
                raise as_kafka_error(error)
            topic, partition = m.topic(), m.partition()
            tp = partitions.get((topic, partition))
            if tp is None:
                tp = partitions[(topic, partition)] = TopicPartition(topic, partition)
            polled[tp].append(
                Record(
                    topic,
                    partition,
                    m.offset(),
                    m.timestamp()[1],
                    m.key(),
                    m.value(),
                    m.headers() or [],
                )
            )
        return polled

    def _unused_group(self, error: RdError) -> bool:
        """A reader without a group still looks up the coordinator of the private group id it
        was given; behind ACLs that is refused, and it never needed it."""
        return self._groupless and error.code() == RdError.GROUP_AUTHORIZATION_FAILED

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        metadata = call(lambda: self._consumer.list_topics(topic, timeout=self._wait_s))
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:  # missing, or hidden by ACLs
            return None
        return set(found.partitions)

    # -- positions --------------------------------------------------------------------------
    def assign(self, partitions: list[TopicPartition]) -> None:
        """Taken to librdkafka at the first read, with the seeks made before it as start
        offsets: assigning again while fetchers start trips librdkafka 2.12's assignment
        state machine (issue 5573, an assertion that kills the process), and a seek before
        the first fetch fails with "erroneous state"."""
        self._assigned = set(partitions)
        self._starts = {}
        self._pending = True

    def _start_assigned(self) -> None:
        if not self._pending:
            return
        self._pending = False
        # Without a group, reading starts at the reset end, never at a committed offset.
        default = None
        if self._groupless:
            default = OFFSET_BEGINNING if self._reset == "earliest" else OFFSET_END
        starts = [rd_partition(tp, self._starts.get(tp, default)) for tp in self._assigned]
        call(lambda: self._consumer.assign(starts))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._starts[tp] = offset
        if not self._pending:
            call(lambda: self._consumer.seek(rd_partition(tp, offset)))

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp, (_, high) in self._watermarks(partitions or self._assigned).items():
            self.seek(tp, high)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp, (low, _) in self._watermarks(partitions or self._assigned).items():
            self.seek(tp, low)

    def pause(self, *partitions: TopicPartition) -> None:
        self._start_assigned()
        call(lambda: self._consumer.pause([rd_partition(tp) for tp in partitions]))

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The next offset to read: after the last record returned, else where reading starts."""
        if not self._pending:
            (current,) = call(lambda: self._consumer.position([rd_partition(tp)]))
            if current.offset >= 0:
                return int(current.offset)
        if tp in self._starts:
            return self._starts[tp]
        if timeout_ms == 0:
            return None
        if not self._groupless:
            (committed,) = call(lambda: self._consumer.committed([rd_partition(tp)], self._wait_s))
            if committed.offset >= 0:
                return int(committed.offset)
        low, high = self._watermark(tp)
        return low if self._reset == "earliest" else high

    def highwater(self, tp: TopicPartition) -> int | None:
        _, high = self._consumer.get_watermark_offsets(rd_partition(tp), cached=True)
        return int(high) if high >= 0 else None

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: low for tp, (low, _) in self._watermarks(partitions).items()}

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: high for tp, (_, high) in self._watermarks(partitions).items()}

    def _watermarks(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, Any]:
        return {tp: self._watermark(tp) for tp in partitions}

    def _watermark(self, tp: TopicPartition) -> tuple[int, int]:
        try:
            low, high = self._consumer.get_watermark_offsets(rd_partition(tp), timeout=self._wait_s)
        except KafkaException as exc:
            raise as_kafka_error(exc) from exc
        return int(low), int(high)

    # -- commits ----------------------------------------------------------------------------
    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata] | None = None) -> None:
        if offsets is None:
            call(lambda: self._consumer.commit(asynchronous=False))
        elif offsets:
            call(lambda: self._consumer.commit(offsets=rd_offsets(offsets), asynchronous=False))

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata] | None = None,
        callback: Callable[[Any, Any], None] | None = None,
    ) -> _Completed:
        """Asynchronous in the loop; synchronous inside a rebalance callback, where the
        revocation must be settled before the partitions move on."""
        if self._in_callback:
            self.commit(offsets)
            return _Completed()
        try:
            if offsets is None:
                self._consumer.commit(asynchronous=True)
            elif offsets:
                self._consumer.commit(offsets=rd_offsets(offsets), asynchronous=True)
        except KafkaException as exc:
            if callback is None:
                raise as_kafka_error(exc) from exc
            callback(offsets, as_kafka_error(exc))
        return _Completed()

    def close(self, autocommit: bool = False) -> None:
        """The revocation first (the keeper commits what is owed), then leave."""
        del autocommit  # never: the services commit what they mean to
        try:
            if self._listener is not None and self._assigned:
                self._on_revoke(self._consumer, [rd_partition(tp) for tp in self._assigned])
                self._listener = None
        finally:
            self._consumer.close()
