"""The Trainer's queue: failed requests retried alone, given up after their attempts, and the
group's offset moved up to the first request still owed an answer."""

from __future__ import annotations

from collections import namedtuple

from kafka import TopicPartition

from pipeline.core.messages import RetrainRequest, to_json
from pipeline.services.retrain_queue import RetrainQueue, why_unanswerable

Record = namedtuple("Record", "offset value")
TP = TopicPartition("retrain", 0)


def queue_of(*ids: str, attempts: int = 3) -> RetrainQueue:
    queue = RetrainQueue(max_attempts=attempts, first_backoff_s=0.0)
    records = [
        Record(offset, to_json(RetrainRequest("p", "in", {"0": 5}, 1, request_id=rid)))
        for offset, rid in enumerate(ids, start=10)
    ]
    queue.collect({TP: [*records, Record(99, b"{not json")]})
    return queue


def ids(waiting) -> list[str]:
    return [w.request.request_id for w in waiting]


def test_a_request_that_keeps_failing_is_given_up_alone() -> None:
    queue = queue_of("doomed")
    first = queue.next_run()
    assert queue.failed(first, counts=True) == []
    queue.collect({TP: [Record(100, to_json(RetrainRequest("p", "in", {}, 1, request_id="new")))]})
    assert ids(queue.next_run()) == ["doomed"]  # never merged with the fresh request
    queue.failed(queue.next_run(), counts=True)
    spent = queue.failed(queue.next_run(), counts=True)
    assert ids(spent) == ["doomed"] and ids(queue.next_run()) == ["new"]
    assert queue.commit_point()[TP].offset == 100  # past the given-up request


def test_outages_do_not_count_as_attempts() -> None:
    queue = queue_of("r", attempts=1)
    assert queue.failed(queue.next_run(), counts=False) == []
    assert ids(queue.waiting) == ["r"] and queue.backoff_s == 0.0


def test_the_commit_stops_at_the_first_waiting_request_and_moves_once() -> None:
    queue = queue_of("a", "b")
    assert queue.commit_point()[TP].offset == 10
    queue.succeeded(queue.next_run())
    point = queue.commit_point()
    assert point[TP].offset == 100  # everything read, the unparseable message included
    queue.committed(point)
    assert queue.commit_point() == {}


def test_requests_that_cannot_be_honoured_say_why() -> None:
    partitions = frozenset({0, 1})
    ok = RetrainRequest("p", "in", {"0": 10**9}, 1)  # past the log end: cut, not refused
    assert why_unanswerable(ok, "in", partitions) == ""
    other = RetrainRequest("p", "elsewhere", {"0": 1}, 1)
    assert "topic 'elsewhere'" in why_unanswerable(other, "in", partitions)
    missing = RetrainRequest("p", "in", {"0": 1, "7": 1}, 1)
    assert "[7]" in why_unanswerable(missing, "in", partitions)
