"""The retrain requests a Trainer holds: which to answer next, when to give up, what to commit.

A request that cannot be honoured must not hold up the ones behind it. So each request keeps
its own offset on the retrain topic and its own count of failed trainings: requests that
failed before are retried on their own, never merged with fresh ones into the same doomed run;
after `max_attempts` they are given up. The group's offset moves up to the first request still
waiting, so a rejected or given-up request is committed past at once, and a restart serves
again only what is still owed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.core.messages import MessageError, RetrainRequest, parse_retrain_message

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


@dataclass
class Waiting:
    request: RetrainRequest
    partition: TopicPartition
    offset: int  # its record on the retrain topic
    attempts: int = 0  # failed trainings, Kafka or MLflow outages not counted


@dataclass
class RetrainQueue:
    max_attempts: int
    first_backoff_s: float
    waiting: list[Waiting] = field(default_factory=list)
    read_up_to: dict[TopicPartition, int] = field(default_factory=dict)
    retry_at: float = 0.0
    backoff_s: float = 0.0
    _committed: dict[TopicPartition, int] = field(default_factory=dict)

    def collect(self, polled: dict) -> list[RetrainRequest]:
        """Queue the requests among the records; returns the new ones."""
        new: list[RetrainRequest] = []
        for tp, records in polled.items():
            for record in records:
                self.read_up_to[tp] = record.offset + 1
                try:
                    message = parse_retrain_message(record.value)
                except MessageError as exc:
                    log.warning("ignored a message on %s: %s", tp.topic, exc)
                    continue
                if isinstance(message, RetrainRequest):
                    self.waiting.append(Waiting(message, tp, record.offset))
                    new.append(message)
                    log.info(
                        "retrain requested by %s, reason %s (%d waiting)",
                        message.instance_id,
                        message.reason,
                        len(self.waiting),
                    )
        return new

    def due(self) -> bool:
        return bool(self.waiting) and time.monotonic() >= self.retry_at

    def next_run(self) -> list[Waiting]:
        """Requests that failed before go alone; otherwise every waiting request, merged."""
        return [w for w in self.waiting if w.attempts] or list(self.waiting)

    def remove(self, done: list[Waiting]) -> None:
        ids = {id(w) for w in done}
        self.waiting = [w for w in self.waiting if id(w) not in ids]

    def succeeded(self, run: list[Waiting]) -> None:
        self.remove(run)
        self.backoff_s = self.retry_at = 0.0

    def failed(self, run: list[Waiting], counts: bool) -> list[Waiting]:
        """Backs off; returns the requests that have now used up their attempts (removed)."""
        self.backoff_s = min(max(self.backoff_s * 2, self.first_backoff_s), MAX_BACKOFF_S)
        self.retry_at = time.monotonic() + self.backoff_s
        if not counts:
            return []
        for w in run:
            w.attempts += 1
        spent = [w for w in run if w.attempts >= self.max_attempts]
        if spent:
            self.remove(spent)
            self.backoff_s = self.retry_at = 0.0  # the requests behind them need not wait
        return spent

    def commit_point(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Everything read, up to the first request still waiting; empty when nothing moved."""
        point = dict(self.read_up_to)
        for w in self.waiting:
            point[w.partition] = min(point.get(w.partition, w.offset), w.offset)
        moved = {tp: o for tp, o in point.items() if self._committed.get(tp) != o}
        return {tp: OffsetAndMetadata(o, "", -1) for tp, o in moved.items()}

    def committed(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self._committed.update({tp: meta.offset for tp, meta in offsets.items()})


def why_unanswerable(request: RetrainRequest, topic: str, partitions: frozenset[int]) -> str:
    """Why a request can never be honoured as asked ("" when it can). Offsets past the log end
    are not on this list: the reader cuts them to the log end."""
    if request.topic != topic:
        return f"it asks for topic {request.topic!r}; this Trainer trains on {topic!r}"
    unknown = sorted(int(p) for p in request.end_offsets if int(p) not in partitions)
    if unknown:
        return f"it names partition(s) {unknown} that topic {topic!r} does not have"
    negative = sorted(int(p) for p, offset in request.end_offsets.items() if offset < 0)
    if negative:
        return f"it asks for negative offsets on partition(s) {negative}"
    return ""
