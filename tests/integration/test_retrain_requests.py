"""A retrain request or an event from an aborted upstream transaction is never acted on."""

from __future__ import annotations

import json

import mlflow
from kafka import KafkaProducer

from pipeline.config.settings import Settings
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
        produce(
            live, [("r", request(live, "honest", {"0": 10**9, "1": 10**9}))], live.retrain_topic
        )
        ready = await_news(news, "model_ready", "honest")
    assert all("aborted" not in m.get("request_ids", []) for m in news.json())
    assert ready["request_ids"] == ["honest"]
    runs = mlflow.search_runs(
        experiment_names=[live.experiment], filter_string="tags.`pipeline.stage` = 'retrain'"
    )
    assert runs["params.lineage.events_read"].tolist() == ["30"]
    news.close()
