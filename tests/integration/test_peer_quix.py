"""The benchmark's peer does the Predictor's job: the same answers, the same dead letters.

A peer row compares engines only if the work is the same; this runs the Quix Streams
application against a real broker and checks its records against the Predictor's own scoring.
"""

from __future__ import annotations

import json

from pipeline.config.settings import Settings, settings_to_argv
from pipeline.core.batching import ServingModel, score_batch
from pipeline.core.events import EventDecoder
from pipeline.services.hot_swap import load_champion
from pipeline.tools.bench import peer_quix

from .conftest import TopicReader, produce
from .helpers import make_events


class Record:
    def __init__(self, value: bytes, offset: int) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "t", 0, offset, None, value


def test_the_quix_peer_answers_as_the_predictor_does(live: Settings, adult) -> None:
    events = make_events(adult, 40, "q")
    bad = [("bad-1", b"{not json"), ("bad-2", json.dumps({"request_id": "x"}).encode())]
    produce(live, events + bad)
    argv = [*settings_to_argv(live, "predictor"), "--events", str(len(events) + len(bad))]
    assert peer_quix.main(argv) == 0  # returns once it has processed every input

    out, dlq = TopicReader(live, live.predictions_topic), TopicReader(live, live.dlq_topic)
    try:
        _same_answers(live, events, bad, out, dlq)
    finally:
        out.close()
        dlq.close()


def _same_answers(live: Settings, events, bad, out: TopicReader, dlq: TopicReader) -> None:
    out.wait_for(lambda r: len(r) >= 40, 60, "the peer's predictions")
    answers = {p["request_id"]: p for p in out.json()}
    letters = dlq.wait_for(lambda r: len(r) >= 2, 60, "the peer's dead letters")
    serving: ServingModel = load_champion(live)
    decoder = EventDecoder(live.pipeline_spec.schema, live.max_event_bytes)
    records = [Record(value, i) for i, (_, value) in enumerate(events + bad)]
    expected = score_batch(records, serving, decoder, "test")
    mine = {json.loads(o.value)["request_id"]: json.loads(o.value) for o in expected.predictions}
    assert answers.keys() == mine.keys() and len(out.records) == 40
    for request_id, answer in answers.items():
        assert abs(answer["probability"] - mine[request_id]["probability"]) < 1e-9
        assert answer["label"] == mine[request_id]["label"]
        assert answer["model_version"] == mine[request_id]["model_version"] == 1
    reasons = sorted(dict(r.headers)["dlq.reason"] for r in letters)
    assert reasons == sorted(dict(o.headers)["dlq.reason"] for o in expected.dead_letters)
    assert sorted(r.value for r in letters) == sorted(value for _, value in bad)
