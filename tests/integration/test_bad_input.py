"""A mixed stream through a real Predictor: every event ends as one prediction or one dead letter."""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import replace

from pipeline.config.settings import Settings
from pipeline.core.events import EventDecoder
from pipeline.core.topics import TopicSpec
from pipeline.errors import ValidationError
from pipeline.kafka_io.admin import ensure_topics
from pipeline.services.predictor import Predictor

from .conftest import TopicReader, in_thread, produce
from .helpers import make_events

DLQ_LIMIT = "max.message.bytes"
SPOILERS = [
    lambda rng, row: bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))),
    lambda rng, row: {k: v for k, v in row.items() if k != rng.choice(list(row))},
    lambda rng, row: {**row, rng.choice(list(row)): rng.choice([None, [], {}, True, "NaN"])},
    lambda rng, row: {**row, "age": rng.choice([-1, 1e308, float("inf"), float("nan"), "40"])},
    lambda rng, row: {**row, "occupation": rng.choice(["\u202e\u0000", "x" * 5000, "💥" * 50])},
    lambda rng, row: {**row, "extra_field": "tolerated"},
]


def mixed_stream(adult, count: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    events = []
    for i, (key, value) in enumerate(make_events(adult, count, "mix")):
        if rng.random() < 0.6:
            events.append((key, value))
            continue
        spoiled = rng.choice(SPOILERS)(rng, json.loads(value)["data"])
        if isinstance(spoiled, dict):
            spoiled = json.dumps({"request_id": key, "data": spoiled}, allow_nan=True).encode()
        events.append((f"{key}-{i}", spoiled))
    return events


def test_valid_events_are_scored_invalid_ones_dead_lettered_and_the_counts_add_up(
    live: Settings, adult
) -> None:
    events = mixed_stream(adult, 1000, seed=5)
    valid = set()
    decoder = EventDecoder(live.pipeline_spec.schema, live.max_event_bytes)
    for _, value in events:
        with contextlib.suppress(ValidationError):
            valid.add(decoder.parse(value).request_id)
    invalid = len(events) - len(valid)
    assert 200 < invalid < 600, "the stream must really be mixed"
    out, dlq = TopicReader(live, live.predictions_topic), TopicReader(live, live.dlq_topic)
    predictor = Predictor(live)
    with in_thread(predictor.run):
        produce(live, events)
        out.wait_for(lambda r: len(r) >= len(valid), what="every valid event's prediction")
        dlq.wait_for(lambda r: len(r) >= invalid, what="every invalid event's dead letter")
    assert sorted(p["request_id"] for p in out.json()) == sorted(valid)
    assert len(dlq.records) == invalid
    assert all(dict(r.headers)["dlq.reason"] for r in dlq.records)
    assert predictor.counters.scored + predictor.counters.dead_letters == len(events)
    out.close()
    dlq.close()


def test_dead_letters_bigger_than_the_dlq_takes_are_cut_not_a_crash_loop(
    live: Settings, adult
) -> None:
    """Events just under --max-event-bytes, refused for a bad field, plus the dlq.* headers,
    do not fit a DLQ topic that takes 8 KiB: they are stored cut, and the loop goes on. Three
    in a row: cut, each fits, but not in one batch, which the producer must split."""
    small = replace(live, dlq_topic=f"{live.dlq_topic}-small", max_event_bytes=32 * 1024)
    ensure_topics(small.bootstrap_servers, [TopicSpec(small.dlq_topic, 1, {DLQ_LIMIT: "8192"})])
    row = json.loads(make_events(adult, 1, "x")[0][1])["data"]
    big = json.dumps({"request_id": "big", "data": {**row, "age": "forty", "pad": ""}}).encode()
    big = big.replace(
        b'"pad": ""', b'"pad": "' + b"x" * (small.max_event_bytes - len(big) - 1) + b'"'
    )
    assert small.max_event_bytes - 10 < len(big) <= small.max_event_bytes
    out, dlq = TopicReader(small, small.predictions_topic), TopicReader(small, small.dlq_topic)
    predictor = Predictor(small)
    with in_thread(predictor.run):
        produce(small, [(f"big-{i}", big) for i in range(3)] + make_events(adult, 20, "after"))
        dlq.wait_for(lambda r: len(r) >= 3, what="the dead letters, cut")
        out.wait_for(lambda r: len(r) >= 20, what="the events after them scored")
    assert len(dlq.records) == 3
    for letter in dlq.records:
        headers = dict(letter.headers)
        assert headers["dlq.truncated"] == str(len(big)).encode()
        assert headers["dlq.field"] == b"data.age" and headers["dlq.reason"]
        assert 0 < len(letter.value) < 8192 and big.startswith(letter.value)
    out.close()
    dlq.close()
