"""A group's loop rides out a broker outage: retriable errors are waited out, others stop it.

kafka-python 3.0.12 raised `KafkaConnectionError` out of `poll()` during a broker restart (the
fault suite's Trainer died of it); the loop must poll again, and say so once per outage. Its
`commit()` and `position()` raise the same in an outage's first moments (a probe's commit to a
just-stopped broker did): neither may stop a loop either. Nor may the topic's metadata, read
at start-up (the broker restart once caught a Trainer there).
"""

from __future__ import annotations

import logging

import pytest
from kafka import TopicPartition
from kafka.errors import (
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from kafka.structs import OffsetAndMetadata

from pipeline.config.settings import Settings
from pipeline.errors import BrokerError
from pipeline.kafka_io import clients
from pipeline.kafka_io.clients import GroupPoller
from pipeline.services.offsets import known_positions
from pipeline.services.retrain_queue import RetrainQueue
from pipeline.services.trainer import Trainer


class ScriptedConsumer:
    """Answers each poll with the next scripted outcome: records, or an error to raise."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.polls = 0

    def poll(self, timeout_ms: int, max_records: int | None = None) -> object:
        self.polls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients, "OUTAGE_PAUSE_S", 0.0)


def test_an_outage_is_polled_through_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    refused = KafkaConnectionError("111 ECONNREFUSED")
    consumer = ScriptedConsumer(refused, refused, refused, {"tp": ["record"]})
    poller = GroupPoller(consumer)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger=clients.__name__):
        answers = [poller.poll(timeout_ms=0) for _ in range(4)]
    assert answers == [{}, {}, {}, {"tp": ["record"]}] and consumer.polls == 4
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "away" in said[0] and "back after" in said[1]
    assert poller.away_since is None


def test_an_error_that_is_not_retriable_still_stops_the_loop() -> None:
    refused = TopicAuthorizationFailedError("app_messages")
    poller = GroupPoller(ScriptedConsumer(refused))  # type: ignore[arg-type]
    with pytest.raises(TopicAuthorizationFailedError):
        poller.poll(timeout_ms=0)


class CommitScript:
    """A consumer whose commits follow a script (an error to raise, or None to succeed), and
    whose positions are known, unknown (None) or a lookup that fails (an error)."""

    def __init__(self, *commits: Exception | None, positions: dict | None = None) -> None:
        self.commits, self.committed = list(commits), []
        self.positions = positions or {}

    def commit(self, offsets: dict) -> None:
        outcome = self.commits.pop(0)
        if outcome is not None:
            raise outcome
        self.committed.append(offsets)

    def assignment(self) -> set:
        return set(self.positions)

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        assert timeout_ms == 0, "a loop must never wait on the broker for a position"
        known = self.positions[tp]
        if isinstance(known, Exception):
            raise known
        return known  # type: ignore[no-any-return]


def answered_queue() -> RetrainQueue:
    queue = RetrainQueue(max_attempts=3, first_backoff_s=1.0)
    queue.read_up_to[TopicPartition("retrain", 0)] = 5
    return queue


def test_a_trainer_commit_refused_by_an_outage_is_made_on_a_later_round() -> None:
    trainer, queue = Trainer(Settings()), answered_queue()
    consumer = CommitScript(KafkaConnectionError("111 ECONNREFUSED"), None)
    trainer._commit_owed = True

    trainer._commit(queue, consumer)  # type: ignore[arg-type]
    assert trainer._commit_owed and consumer.committed == []
    trainer._commit(queue, consumer)  # type: ignore[arg-type]

    assert not trainer._commit_owed
    assert consumer.committed == [{TopicPartition("retrain", 0): OffsetAndMetadata(5, "", -1)}]
    assert queue.commit_point() == {}


def test_a_trainer_commit_refused_for_good_still_stops_the_trainer() -> None:
    trainer = Trainer(Settings())
    consumer = CommitScript(TopicAuthorizationFailedError("trainer"))
    with pytest.raises(TopicAuthorizationFailedError):
        trainer._commit(answered_queue(), consumer)  # type: ignore[arg-type]


def test_only_positions_known_without_the_broker_are_reported() -> None:
    known, unknown, away = (TopicPartition("in", p) for p in range(3))
    consumer = CommitScript(
        positions={known: 7, unknown: None, away: KafkaConnectionError("111 ECONNREFUSED")}
    )
    assert known_positions(consumer) == {known: 7}  # type: ignore[arg-type]


class MetadataScript:
    """Answers each metadata read with the next scripted outcome: partitions, or an error."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes, self.reads = list(outcomes), 0

    def partitions_for_topic(self, topic: str) -> object:
        self.reads += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_a_topic_read_while_the_broker_is_away_is_read_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = KafkaConnectionError("111 ECONNREFUSED")
    consumer = MetadataScript(refused, refused, {0, 1})
    with caplog.at_level(logging.WARNING, logger=clients.__name__):
        assert clients.require_topic(consumer, "app_messages") == 2  # type: ignore[arg-type]
    said = [r.getMessage() for r in caplog.records]
    assert consumer.reads == 3 and len(said) == 2
    assert "away" in said[0] and "app_messages" in said[0] and "back after" in said[1]


def test_a_broker_away_past_the_patience_stops_the_start(monkeypatch) -> None:
    monkeypatch.setattr(clients, "OUTAGE_PAUSE_S", 0.02)
    consumer = MetadataScript(*[KafkaConnectionError("111 ECONNREFUSED")] * 100)
    with pytest.raises(BrokerError, match="cannot read metadata of topic app_messages"):
        clients.require_topic(consumer, "app_messages", patience_s=0.1)  # type: ignore[arg-type]
    assert 2 <= consumer.reads < 100


@pytest.mark.parametrize(
    "error", [TopicAuthorizationFailedError("app_messages"), UnknownTopicOrPartitionError()]
)
def test_an_answer_waiting_would_not_mend_stops_the_start_at_once(error: Exception) -> None:
    consumer = MetadataScript(error, {0})
    with pytest.raises(BrokerError):
        clients.require_topic(consumer, "app_messages")  # type: ignore[arg-type]
    assert consumer.reads == 1
