"""A group's loop rides out a broker outage: retriable poll errors are waited out, others stop it.

kafka-python 3.0.12 raised `KafkaConnectionError` out of `poll()` during a broker restart (the
fault suite's Trainer died of it); the loop must poll again, and say so once per outage.
"""

from __future__ import annotations

import logging

import pytest
from kafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from pipeline.kafka_io import clients
from pipeline.kafka_io.clients import GroupPoller


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
