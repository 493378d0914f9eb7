"""A batch of outputs sent in one librdkafka call: order kept through a full queue, one future
that is done only when every record is, errors as kafka-python's. No broker: the confluent
producer is replaced by one that behaves as librdkafka's produce_batch is written to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError as RdError
from kafka import errors

from pipeline.core.batching import Output
from pipeline.kafka_io.clients import send_records
from pipeline.kafka_io.rdkafka_producer import RdProducer
from pipeline.services.ack_window import AckWindow

Delivery = Callable[[RdError | None, Any], None]


class _Message:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class FakeLibrdkafka:
    """Takes `room` messages a call; from the first it cannot take, it refuses that one and
    every one after it with _QUEUE_FULL, marked on the message as confluent-kafka does. Each
    poll makes room for `drained` more and reports the deliveries queued so far."""

    def __init__(self, room: int, drained: int = 2) -> None:
        self.room, self.drained = room, drained
        self.enqueued: list[bytes] = []
        self.calls = 0
        self.refuse: dict[bytes, int] = {}  # value -> a local or broker error code
        self._reports: list[tuple[Delivery, RdError | None, str]] = []

    def produce_batch(self, topic: str, messages: list[dict], on_delivery: Delivery) -> int:
        self.calls += 1
        queued, full = 0, False
        for message in messages:
            code = self.refuse.get(message["value"])
            if full or queued == self.room:
                full = True
                message["_error"] = RdError(RdError._QUEUE_FULL)
            elif code is not None and code < 0:
                message["_error"] = RdError(code)
            else:
                self.enqueued.append(message["value"])
                error = RdError(code) if code is not None else None
                self._reports.append((on_delivery, error, topic))
                queued += 1
        self.room -= queued
        return queued

    def poll(self, timeout: float) -> int:
        self.room += self.drained
        reports, self._reports = self._reports, []
        for deliver, error, topic in reports:
            deliver(error, _Message(topic))
        return len(reports)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0


def _adapter(fake: FakeLibrdkafka) -> RdProducer:
    producer = RdProducer.__new__(RdProducer)  # the fake instead of a connected client
    producer._producer = fake  # type: ignore[assignment]
    return producer


def _outputs(n: int) -> list[Output]:
    return [Output(f"k{i}".encode(), f"v{i}".encode()) for i in range(n)]


def test_a_full_queue_delays_the_refused_records_without_reordering_them() -> None:
    fake = FakeLibrdkafka(room=3, drained=2)
    producer = _adapter(fake)
    future = producer.send_batch("out", _outputs(8))
    assert fake.enqueued == [f"v{i}".encode() for i in range(8)]  # all of them, in order
    assert fake.calls > 1  # it did have to wait for room
    assert future.is_done and future.exception is None


def test_the_batch_is_done_only_when_every_record_is_acknowledged() -> None:
    fake = FakeLibrdkafka(room=100)
    producer = _adapter(fake)
    fake.poll = lambda timeout: 0  # type: ignore[method-assign]  # nothing acknowledged yet
    future = producer.send_batch("out", _outputs(4))
    assert not future.is_done
    reports, fake._reports = fake._reports, []
    for deliver, error, topic in reports[:3]:
        deliver(error, _Message(topic))
    assert not future.is_done  # three of four
    deliver, error, topic = reports[3]
    deliver(error, _Message(topic))
    assert future.is_done and future.exception is None


def test_a_failed_delivery_fails_the_batch_and_stops_the_window_at_it() -> None:
    fake = FakeLibrdkafka(room=100)
    fake.refuse[b"v2"] = RdError.TOPIC_AUTHORIZATION_FAILED
    future = _adapter(fake).send_batch("out", _outputs(4))
    assert future.is_done
    assert isinstance(future.exception, errors.TopicAuthorizationFailedError)
    window = AckWindow(4)
    window.add([future], {"offsets": 1})  # type: ignore[dict-item]
    with pytest.raises(errors.TopicAuthorizationFailedError):
        window.settle(lambda owed: owed)
    with pytest.raises(errors.TopicAuthorizationFailedError):
        future.get(timeout=1)


def test_a_record_refused_for_another_reason_than_room_is_raised_as_kafka_pythons_error() -> None:
    fake = FakeLibrdkafka(room=100)
    fake.refuse[b"v1"] = RdError._UNKNOWN_TOPIC
    with pytest.raises(errors.UnknownTopicOrPartitionError):
        _adapter(fake).send_batch("out", _outputs(3))


class _OneByOne:
    """kafka-python's producer, as far as send_records uses it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> str:
        self.sent.append((topic, key, value))
        return f"future-{len(self.sent)}"


def test_kafka_python_sends_each_record_with_its_own_future() -> None:
    producer = _OneByOne()
    futures = send_records(producer, "out", _outputs(3))  # type: ignore[arg-type]
    assert futures == ["future-1", "future-2", "future-3"]
    assert producer.sent == [("out", b"k0", b"v0"), ("out", b"k1", b"v1"), ("out", b"k2", b"v2")]
    assert send_records(producer, "out", []) == []  # type: ignore[arg-type]


def test_librdkafka_answers_a_batch_with_one_future() -> None:
    fake = FakeLibrdkafka(room=100)
    futures = send_records(_adapter(fake), "out", _outputs(5))  # type: ignore[arg-type]
    assert len(futures) == 1 and futures[0].is_done
    assert fake.calls == 1 and len(fake.enqueued) == 5
