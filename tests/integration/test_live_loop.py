"""The live loop against a real broker: scoring, DLQ, hot-swap, retraining, delivery guarantees."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import replace

import mlflow
import pytest

from pipeline.config.settings import Settings
from pipeline.registry import tracking
from pipeline.services.predictor import Predictor
from pipeline.services.trainer import Trainer
from pipeline.tools.chaos.faults import INCOMPATIBLE
from pipeline.tools.sandbox import modest_champion

from .conftest import (
    TopicReader,
    await_true,
    in_thread,
    produce,
    register,
    with_instance,
)
from .helpers import make_events, model_ready


def versions_by_partition(predictions: list[dict]) -> dict[int, list[int]]:
    ordered = defaultdict(list)
    for p in sorted(predictions, key=lambda p: (p["source"]["partition"], p["source"]["offset"])):
        ordered[p["source"]["partition"]].append(p["model_version"])
    return ordered


@pytest.mark.both_clients
def test_end_to_end_retrain_swaps_every_later_prediction(live: Settings, adult) -> None:
    # One request from the first 400 labelled events; the 200 after them stay under the bar.
    # The champion is a modest model, so the retrained one beats it through the real gate.
    settings = replace(live, retrain_every=400)
    modest = modest_champion(settings, adult, by="test")
    predictor, trainer = Predictor(settings), Trainer(settings)
    out = TopicReader(settings, settings.predictions_topic)
    with in_thread(trainer.run), in_thread(predictor.run):
        produce(settings, make_events(adult, 400, "a"))
        out.wait_for(lambda r: len(r) >= 400, what="the first 400 predictions")
        await_true(lambda: predictor.slot.current.version == modest + 1, 120, "the retrained model")
        produce(settings, make_events(adult, 200, "b", start=400))
        out.wait_for(lambda r: len(r) >= 600, what="all 600 predictions")
    predictions = out.json()
    assert Counter(p["request_id"] for p in predictions).most_common(1)[0][1] == 1
    assert {p["request_id"] for p in predictions} == {f"a-{i}" for i in range(400)} | {
        f"b-{i}" for i in range(400, 600)
    }
    assert all(
        p["model_version"] == modest for p in predictions if p["request_id"].startswith("a-")
    )
    assert all(
        p["model_version"] == modest + 1 for p in predictions if p["request_id"].startswith("b-")
    )
    for sequence in versions_by_partition(predictions).values():
        assert sequence == sorted(sequence)  # never back to the old model
    assert tracking.champion_version(settings) == modest + 1
    run = mlflow.search_runs(
        experiment_names=[settings.experiment], filter_string="tags.`pipeline.stage` = 'retrain'"
    )
    assert len(run) == 1 and run["params.lineage.event_rows_added"][0] != "0"
    out.close()


@pytest.mark.both_clients
def test_two_predictors_in_one_group_both_swap(live: Settings, adult, trained_model) -> None:
    first, second = Predictor(with_instance(live, "one")), Predictor(with_instance(live, "two"))
    out = TopicReader(live, live.predictions_topic)
    with in_thread(first.run), in_thread(second.run):
        await_true(
            lambda: first.assignment.partitions and second.assignment.partitions,
            60,
            "each Predictor to own a partition",
        )
        produce(live, make_events(adult, 200, "a"))
        out.wait_for(lambda r: len(r) >= 200, what="200 predictions")
        version = register(live, trained_model, adult.test.head(50))
        tracking.set_champion(live, version)
        produce(live, [("news", model_ready(live.model_name, version))], topic=live.retrain_topic)
        await_true(
            lambda: first.slot.current.version == second.slot.current.version == version,
            60,
            "both Predictors to swap",
        )
        produce(live, make_events(adult, 200, "b", start=200))
        out.wait_for(lambda r: len(r) >= 400, what="400 predictions")
    after = [p for p in out.json() if p["request_id"].startswith("b-")]
    assert {p["model_version"] for p in after} == {version}
    assert {p["source"]["partition"] for p in after} == {0, 1}
    assert first.counters.scored > 0 and second.counters.scored > 0
    out.close()


@pytest.mark.both_clients
def test_malformed_events_go_to_the_dlq_while_scoring_continues(live: Settings, adult) -> None:
    good = make_events(adult, 20, "ok")
    row = json.loads(good[0][1])["data"]
    bad = [
        ("not-json", b"{this is not json"),
        (
            "missing",
            json.dumps(
                {"request_id": "missing", "data": {k: v for k, v in row.items() if k != "age"}}
            ).encode(),
        ),
        (
            "wrong-type",
            json.dumps({"request_id": "wrong-type", "data": {**row, "age": "forty"}}).encode(),
        ),
        (
            "oversized",
            json.dumps(
                {"request_id": "oversized", "data": {**row, "pad": "x" * live.max_event_bytes}}
            ).encode(),
        ),
    ]
    predictor = Predictor(live)
    out, dlq = TopicReader(live, live.predictions_topic), TopicReader(live, live.dlq_topic)
    with in_thread(predictor.run):
        produce(live, good[:10] + bad + good[10:])
        out.wait_for(lambda r: len(r) >= 20, what="20 predictions")
        dlq.wait_for(lambda r: len(r) >= 4, what="4 dead letters")
    letters = {r.key.decode(): (r.value, dict(r.headers)) for r in dlq.records}
    assert set(letters) == {"not-json", "missing", "wrong-type", "oversized"}
    originals = dict(bad)
    for key, (value, headers) in letters.items():
        assert value == originals[key]  # the original bytes, untouched
        assert headers["dlq.source.topic"] == live.input_topic.encode()
        assert int(headers["dlq.source.offset"]) >= 0 and headers["dlq.reason"]
    assert letters["missing"][1]["dlq.field"] == b"data.age"
    assert letters["wrong-type"][1]["dlq.field"] == b"data.age"
    assert b"exceeds the limit" in letters["oversized"][1]["dlq.reason"]
    assert {p["request_id"] for p in out.json()} == {key for key, _ in good}
    assert predictor.counters.dead_letters == 4
    out.close()
    dlq.close()


def test_bad_announcements_are_refused_and_scoring_goes_on(
    live: Settings, adult, trained_model
) -> None:
    predictor = Predictor(live)
    out = TopicReader(live, live.predictions_topic)
    incompatible = _register_incompatible(live, adult, trained_model)
    good = register(live, trained_model, adult.test.head(50))
    with in_thread(predictor.run):
        produce(
            live,
            [
                ("x", b"{broken"),
                ("x", model_ready(live.model_name, 999)),  # the alias does not name it
                ("x", model_ready("someone-elses-model", good)),
            ],
            topic=live.retrain_topic,
        )
        tracking.set_champion(live, incompatible)  # the alias names a model that fails its checks
        produce(live, [("x", model_ready(live.model_name, incompatible))], live.retrain_topic)
        await_true(lambda: predictor.watcher.refused == 2, 60, "the incompatible version refused")
        produce(live, make_events(adult, 50, "a"))
        out.wait_for(lambda r: len(r) >= 50, what="predictions after bad news")
        tracking.set_champion(live, good)
        produce(live, [("x", model_ready(live.model_name, good))], topic=live.retrain_topic)
        await_true(lambda: predictor.slot.current.version == good, 60, "the good version")
    assert predictor.watcher.refused == 2
    assert {p["model_version"] for p in out.json()} == {1}
    out.close()


def _register_incompatible(live: Settings, adult, trained_model) -> int:
    """A version of our model whose input schema lacks a field the events carry."""
    tracking.connect(live)
    with mlflow.start_run(run_name="test-incompatible"):
        return tracking.log_model_version(
            live, trained_model, adult.test.head(5), signature=INCOMPATIBLE
        ).version


def test_retrain_requests_during_a_training_are_merged(live: Settings) -> None:
    trainer = Trainer(live)
    news = TopicReader(live, live.retrain_topic)

    def request(request_id: str) -> tuple[str, bytes]:
        value = {
            "type": "retrain_request",
            "request_id": request_id,
            "instance_id": "t",
            "topic": live.input_topic,
            "end_offsets": {"0": 0, "1": 0},
            "labelled_events": 1,
        }
        return "r", json.dumps(value).encode()

    with in_thread(trainer.run):
        produce(live, [request("first")], topic=live.retrain_topic)
        news.wait_for(
            lambda r: any(b"training_started" in x.value for x in r), what="training start"
        )
        produce(live, [request(f"during-{i}") for i in range(3)], topic=live.retrain_topic)
        news.wait_for(lambda r: sum(b'"model_ready"' in x.value for x in r) >= 2, 180, "two models")
    ready = [m for m in news.json() if m["type"] == "model_ready"]
    assert [m["requests"] for m in ready] == [1, 3]
    assert [m["request_ids"] for m in ready] == [["first"], ["during-0", "during-1", "during-2"]]
    assert trainer.trainings == 2
    news.close()
