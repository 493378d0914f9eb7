"""At-least-once without a flush per batch: offsets pass only acknowledged outputs, in order.

No broker here: the futures and the consumer are stand-ins that record what the publisher asks
of them; the guarantees against a real broker (SIGKILL, rebalances) are in tests/integration.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from pipeline.config.settings import Settings
from pipeline.core.batching import BatchResult, Output
from pipeline.services.ack_window import AckWindow
from pipeline.services.offsets import OffsetKeeper
from pipeline.services.publishing import BatchPublisher

TOPIC = "in"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


@dataclass
class Sent:
    """A send's future as the window reads it (kafka-python's attributes)."""

    is_done: bool = False
    exception: Any = None


def at(offset: int) -> OffsetAndMetadata:
    return OffsetAndMetadata(offset, "", -1)


def held(*partitions: TopicPartition) -> OffsetKeeper:
    keeper = OffsetKeeper()
    asyncio.run(keeper.on_partitions_assigned(set(partitions)))
    return keeper


def test_an_offset_never_passes_an_unacknowledged_output() -> None:
    keeper = held(P0, P1)
    window = AckWindow(8)
    first, second = [Sent(), Sent()], [Sent()]
    window.add(first, {P0: at(10)})
    window.add(second, {P1: at(20)})
    second[0].is_done = True  # the later batch is acknowledged first: it must wait
    first[0].is_done = True
    assert window.settle(keeper.owe) == {} and keeper.owed == {}
    first[1].is_done = True
    assert window.settle(keeper.owe) == {P0: at(10), P1: at(20)}
    assert keeper.owed == {P0: at(10), P1: at(20)} and len(window) == 0


def test_a_later_batch_wins_for_its_partition() -> None:
    keeper = held(P0)
    window = AckWindow(8)
    window.add([Sent(True)], {P0: at(5)})
    window.add([Sent(True)], {P0: at(9)})
    assert window.settle(keeper.owe) == {P0: at(9)}


def test_a_failed_send_stops_everything_after_it() -> None:
    keeper = held(P0)
    window = AckWindow(8)
    window.add([Sent(True, KafkaTimeoutError("not acknowledged"))], {P0: at(3)})
    window.add([Sent(True)], {P0: at(7)})
    for _ in range(2):  # it stays at the head: asked again, it fails again
        with pytest.raises(KafkaTimeoutError):
            window.settle(keeper.owe)
    assert keeper.owed == {} and len(window) == 2


def test_a_partition_that_left_is_not_owed() -> None:
    """Acknowledged after its partition was revoked: committing it would move the new owner's
    position back."""
    keeper = held(P0, P1)
    asyncio.run(keeper.on_partitions_revoked({P1}))
    window = AckWindow(8)
    window.add([Sent(True)], {P0: at(4), P1: at(8)})
    assert window.settle(keeper.owe) == {P0: at(4)} and keeper.owed == {P0: at(4)}


def test_the_window_has_a_size() -> None:
    window = AckWindow(2)
    window.add([Sent()], {P0: at(1)})
    assert not window.full()
    window.add([Sent()], {P0: at(2)})
    assert window.full()
    with pytest.raises(ValueError):
        AckWindow(0)


@dataclass
class Producer:
    """Records stay unacknowledged until flush(), as if the broker were slow."""

    sent: list[Sent] = field(default_factory=list)
    flushes: int = 0

    def send(self, topic: str, value: bytes, key: bytes | None = None, **_: Any) -> Sent:
        self.sent.append(Sent())
        return self.sent[-1]

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1
        for future in self.sent:
            future.is_done = True

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)


class Committed:
    """What commit_async returns: the loop ignores it, the keeper's revocation awaits it."""

    def __await__(self) -> Any:
        return iter(())


@dataclass
class Consumer:
    commits: list[dict[TopicPartition, OffsetAndMetadata]] = field(default_factory=list)

    def commit_async(self, offsets: dict[TopicPartition, OffsetAndMetadata], **_: Any) -> Any:
        self.commits.append(dict(offsets))
        return Committed()


def publisher(interval_ms: int) -> tuple[BatchPublisher, OffsetKeeper, Producer, Consumer]:
    settings = replace(Settings(), commit_interval_ms=interval_ms, input_topic=TOPIC)
    keeper, producer, consumer = held(P0, P1), Producer(), Consumer()
    keeper.bind(consumer)
    return BatchPublisher(settings, producer, keeper, 1_000_000), keeper, producer, consumer  # type: ignore[arg-type]


def scored(n: int) -> BatchResult:
    result = BatchResult()
    result.predictions = [Output(f"r{i}".encode(), b"{}") for i in range(n)]
    return result


def test_publishing_does_not_wait_for_the_broker() -> None:
    pub, _, producer, consumer = publisher(interval_ms=0)
    pub.publish(consumer, scored(3), None, {P0: at(3)})  # type: ignore[arg-type]
    assert producer.flushes == 0 and consumer.commits == []  # sent, not yet acknowledged
    for future in producer.sent:
        future.is_done = True
    pub.settle(consumer)  # type: ignore[arg-type]
    assert consumer.commits == [{P0: at(3)}]


def test_commits_go_once_per_interval_and_at_close() -> None:
    pub, keeper, producer, consumer = publisher(interval_ms=3_600_000)
    for n in (1, 2, 3):
        pub.publish(consumer, scored(1), None, {P0: at(n)})  # type: ignore[arg-type]
        producer.flush()
        pub.settle(consumer)  # type: ignore[arg-type]
    assert consumer.commits == [{P0: at(1)}]  # the first at once, the rest wait an hour
    assert keeper.owed == {P0: at(3)}  # but owed: a revocation would commit them
    pub.publish(consumer, scored(1), None, {P1: at(7)})  # type: ignore[arg-type]
    pub.close(consumer)  # type: ignore[arg-type]
    assert consumer.commits[-1] == {P0: at(3), P1: at(7)}


def test_a_revocation_waits_for_the_outputs_in_flight() -> None:
    """Revoked while a batch is in flight: it is acknowledged and committed before the
    partition leaves, not replayed by its next owner."""
    pub, keeper, producer, consumer = publisher(interval_ms=3_600_000)
    pub.publish(consumer, scored(1), None, {P0: at(1)})  # type: ignore[arg-type]
    producer.flush()
    pub.settle(consumer)  # type: ignore[arg-type]
    pub.publish(consumer, scored(2), None, {P0: at(9)})  # type: ignore[arg-type]
    assert not all(f.is_done for f in producer.sent)
    asyncio.run(keeper.on_partitions_revoked({P0, P1}))
    assert consumer.commits[-1] == {P0: at(9)} and keeper.owed == {}


def test_the_window_is_flushed_when_full() -> None:
    pub, _, producer, consumer = publisher(interval_ms=0)
    for n in range(pub.window.limit):
        pub.publish(consumer, scored(1), None, {P0: at(n + 1)})  # type: ignore[arg-type]
    assert producer.flushes == 1 and len(pub.window) == 0
    assert consumer.commits[-1] == {P0: at(pub.window.limit)}


@pytest.mark.parametrize("linger_ms", [0, 2])
def test_the_output_linger_reaches_the_producer(
    monkeypatch: pytest.MonkeyPatch, linger_ms: int
) -> None:
    import pipeline.services.publishing as publishing

    made: dict[str, Any] = {}
    monkeypatch.setattr(publishing, "dead_letter_limit", lambda settings: 1_000_000)
    monkeypatch.setattr(
        publishing, "make_producer", lambda settings, role, **kw: made.update(kw) or Producer()
    )
    settings = replace(Settings(), output_linger_ms=linger_ms)
    BatchPublisher.create(settings, held(P0))
    assert made["linger_ms"] == linger_ms
