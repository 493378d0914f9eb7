"""Retrain requests that cannot be honoured, or that keep failing, never stop retraining; a
request or an event from an aborted upstream transaction is never acted on."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
from kafka import KafkaProducer

from pipeline.config.settings import Settings
from pipeline.kafka_io.admin import admin_client
from pipeline.services.trainer import Trainer

from .conftest import TopicReader, in_thread, produce
from .helpers import log_ends, make_events


def request(settings: Settings, request_id: str, offsets: dict, topic: str = "") -> bytes:
    return json.dumps(
        {
            "type": "retrain_request",
            "request_id": request_id,
            "instance_id": "test",
            "topic": topic or settings.input_topic,
            "end_offsets": offsets,
            "labelled_events": 1,
        }
    ).encode()


def news_of(reader: TopicReader, kind: str) -> list[dict]:
    return [m for m in reader.json() if m["type"] == kind]


def await_news(reader: TopicReader, kind: str, request_id: str, timeout_s: float = 150) -> dict:
    reader.wait_for(
        lambda _: any(request_id in m.get("request_ids", []) for m in news_of(reader, kind)),
        timeout_s,
        f"a {kind} naming {request_id}",
    )
    return next(m for m in news_of(reader, kind) if request_id in m["request_ids"])


def trainer_committed(settings: Settings) -> int:
    admin = admin_client(settings.bootstrap_servers)
    try:
        offsets = admin.list_group_offsets(settings.trainer_group)[settings.trainer_group]
    finally:
        admin.close()
    return max((meta.offset for meta in offsets.values()), default=-1)


def rejected(live: Settings, request_id: str, value: bytes) -> dict:
    """Sends one request to a running Trainer; its training_failed, once committed past."""
    news = TopicReader(live, live.retrain_topic)
    with in_thread(Trainer(live).run):
        produce(live, [("r", value)], topic=live.retrain_topic)
        failed = await_news(news, "training_failed", request_id, 60)
        news.wait_for(lambda _: trainer_committed(live) >= 1, 30, "the commit past the request")
    assert not news_of(news, "training_started") and not news_of(news, "model_ready")
    news.close()
    return failed


def test_a_request_naming_a_missing_partition_is_rejected_and_committed_past(live) -> None:
    failed = rejected(live, "ghost", request(live, "ghost", {"0": 0, "99": 5}))
    assert failed["request_ids"] == ["ghost"] and "[99]" in failed["reason"]


def test_a_request_for_another_topic_is_rejected(live) -> None:
    failed = rejected(live, "foreign", request(live, "foreign", {"0": 1}, topic="someone-else"))
    assert "someone-else" in failed["reason"]


def test_offsets_past_the_log_end_are_cut_to_it(live, adult) -> None:
    produce(live, make_events(adult, 60, "e"))
    news = TopicReader(live, live.retrain_topic)
    with in_thread(Trainer(live).run):
        produce(live, [("r", request(live, "far", {"0": 10**9, "1": 10**9}))], live.retrain_topic)
        ready = await_news(news, "model_ready", "far")
    assert sum(ready["end_offsets"].values()) == 60  # the log end, not 10**9
    assert not news_of(news, "training_failed")
    news.close()


class FailsOnDoomed(Trainer):
    """A training step that fails for one request id: the failure is the request's, not Kafka's."""

    def _answer(self, requests, data, producer):
        if any(r.request_id == "doomed" for r in requests):
            raise ValueError("this request cannot be trained for")
        return super()._answer(requests, data, producer)


def test_a_request_that_keeps_failing_is_given_up_and_the_next_one_answered(live) -> None:
    settings = replace(live, retrain_max_attempts=3, retry_backoff_s=0.5)
    news = TopicReader(settings, settings.retrain_topic)
    trainer = FailsOnDoomed(settings)
    with in_thread(trainer.run):
        produce(settings, [("r", request(settings, "doomed", {}))], settings.retrain_topic)
        await_news(news, "training_failed", "doomed", 60)
        produce(settings, [("r", request(settings, "good", {}))], settings.retrain_topic)
        ready = await_news(news, "model_ready", "good")
    failed = news_of(news, "training_failed")
    assert [m["request_ids"] for m in failed] == [["doomed"]] * 4  # 3 attempts, then given up
    assert "given up after 3" in failed[-1]["reason"]
    assert ready["request_ids"] == ["good"] and trainer.given_up == 1
    news.close()


def test_an_aborted_request_and_aborted_events_are_never_acted_on(live, adult) -> None:
    produce(live, make_events(adult, 30, "kept"))
    upstream = KafkaProducer(
        bootstrap_servers=live.bootstrap_servers, transactional_id=f"up-{live.input_topic}"
    )
    upstream.init_transactions()
    upstream.begin_transaction()
    for key, value in make_events(adult, 20, "aborted", start=30):
        upstream.send(live.input_topic, key=key.encode(), value=value)
    upstream.send(live.retrain_topic, value=request(live, "aborted", log_ends(live)))
    upstream.flush()
    upstream.abort_transaction()
    upstream.close()
    news = TopicReader(live, live.retrain_topic)
    with in_thread(Trainer(live).run):
        produce(live, [("r", request(live, "honest", log_ends(live)))], live.retrain_topic)
        ready = await_news(news, "model_ready", "honest")
    assert all("aborted" not in m.get("request_ids", []) for m in news.json())
    assert ready["request_ids"] == ["honest"]
    runs = mlflow.search_runs(
        experiment_names=[live.experiment], filter_string="tags.`pipeline.stage` = 'retrain'"
    )
    assert runs["params.lineage.events_read"].tolist() == ["30"]
    news.close()
