"""Labels that come after their events, joined to the predictions they judge.

Upstream often learns the truth later (a payment clears, a customer churns) and sends it on the
labels topic as `{"request_id", "label"}`. Each Predictor reads every partition of that topic
(by assign, from the end) and keeps two bounded maps: predictions still waiting for a label and
labels that came before their prediction. Whichever side arrives second completes the pair,
which then counts toward the online quality of the version that made the prediction. A
prediction of another instance simply never meets its label here and ages out.

Bounded by `--label-ttl-s` and `--label-state-max` per map, oldest first: memory stays flat
(the benchmark reports it at the limit) whatever upstream does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.messages import MessageError, parse_label
from pipeline.core.schema import Schema
from pipeline.kafka_io.clients import make_consumer

log = logging.getLogger(__name__)
POLL_MS = 200


class JoinState:
    """The two maps and the pairs they completed; every method takes the lock briefly."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.max_entries, self.clock = ttl_s, max_entries, clock
        self.predictions: OrderedDict[str, tuple[float, int, float]] = OrderedDict()
        self.labels: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.joined: dict[int, list[tuple[float, int]]] = defaultdict(list)
        self.read = self.matched = self.expired = 0
        self._lock = threading.Lock()

    def predicted(self, version: int, scored: Iterable[tuple[str, float]]) -> None:
        now = self.clock()
        with self._lock:
            for request_id, probability in scored:
                early = self.labels.pop(request_id, None)
                if early is not None:
                    self._pair(version, probability, early[1])
                else:
                    self.predictions[request_id] = (now, version, probability)
            self._trim(self.predictions, now)

    def labelled(self, pairs: Iterable[tuple[str, int]]) -> None:
        now = self.clock()
        with self._lock:
            for request_id, label in pairs:
                self.read += 1
                waiting = self.predictions.pop(request_id, None)
                if waiting is not None:
                    self._pair(waiting[1], waiting[2], label)
                else:
                    self.labels[request_id] = (now, label)
            self._trim(self.labels, now)

    def drain(self) -> dict[int, list[tuple[float, int]]]:
        """The completed (probability, label) pairs per version since the last drain."""
        if not self.joined:  # the scoring loop's common case: one attribute read
            return {}
        with self._lock:
            joined, self.joined = dict(self.joined), defaultdict(list)
        return joined

    def _pair(self, version: int, probability: float, label: int) -> None:
        self.matched += 1
        self.joined[version].append((probability, label))

    def _trim(self, entries: OrderedDict, now: float) -> None:
        while entries and (
            len(entries) > self.max_entries or next(iter(entries.values()))[0] < now - self.ttl_s
        ):
            entries.popitem(last=False)
            self.expired += 1


class LabelReader:
    """A thread that reads the labels topic into a JoinState."""

    def __init__(
        self, consumer: KafkaConsumer, topic: str, state: JoinState, schema: Schema
    ) -> None:
        self.schema = schema
        self.consumer, self.topic, self.state = consumer, topic, state
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="label-join", daemon=True)

    def start(self) -> LabelReader:
        partitions = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end now: labels sent from here on are joined
            self.consumer.position(tp)
        self._thread.start()
        log.info("joining late labels from %s (%d partitions)", self.topic, len(tps))
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        self.consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                polled = self.consumer.poll(timeout_ms=POLL_MS)
            except KafkaError as exc:  # the join is a nicety: scoring goes on without it
                log.warning("reading %s failed (%s); retrying", self.topic, exc)
                self._stop.wait(1.0)
                continue
            pairs = []
            for records in polled.values():
                for record in records:
                    try:
                        pairs.append(parse_label(record.value, self.schema))
                    except MessageError as exc:
                        log.debug("skipped a record on %s: %s", self.topic, exc)
            if pairs:
                self.state.labelled(pairs)


def start_label_reader(settings: Settings, state: JoinState) -> LabelReader | None:
    """Late labels are a nicety: without the topic (or the right to read it) a Predictor scores
    as before, with online quality from the labels that ride with events."""
    topic = settings.labels_topic
    consumer: KafkaConsumer | None = None
    try:
        consumer = make_consumer(settings, "predictor-labels", isolation_level="read_committed")
        if not consumer.partitions_for_topic(topic):
            raise KafkaError(f"topic {topic} does not exist")
        return LabelReader(consumer, topic, state, settings.pipeline_spec.schema).start()
    except KafkaError as exc:
        log.warning("late labels are not joined: %s", exc)
        if consumer is not None:
            consumer.close()
        return None
