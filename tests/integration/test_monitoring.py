"""Monitoring in a running Predictor: a drifting stream asks for a retrain with reason `drift`,
flipped labels ask with reason `quality`, and clean traffic asks for nothing."""

from __future__ import annotations

from dataclasses import replace

from mlflow.tracking import MlflowClient

from pipeline.config.settings import Settings
from pipeline.core.events import encode_event
from pipeline.core.messages import label_record
from pipeline.core.perturb import Perturbation
from pipeline.core.spec import load_spec
from pipeline.kafka_io.broker import free_port
from pipeline.services.predictor import Predictor
from pipeline.tools.sample_stream import event_rows

from .conftest import TopicReader, await_true, in_thread, produce
from .test_metrics_and_health import get, sample

SCHEMA = load_spec().schema  # the default spec: Adult
LABEL_FIELD = SCHEMA.label_field


def events(adult, start: int, count: int, prefix: str, change: Perturbation) -> list:
    rows = event_rows(adult.test.iloc[start : start + count], SCHEMA)
    return [
        (f"{prefix}-{i}", encode_event(f"{prefix}-{i}", change.apply(i, row)))
        for i, row in enumerate(rows)
    ]


def requests(reader: TopicReader) -> list[dict]:
    return [m for m in reader.json() if m.get("type") == "retrain_request"]


def test_a_drifting_stream_asks_for_a_drift_retrain(live: Settings, adult) -> None:
    settings = replace(
        live,
        drift_window=1000,
        drift_sample_every=1,  # every event counts, so 3,000 drifted events close 3 windows
        drift_patience=2,
        retrain_min_interval_s=600,  # windows 4 and 5 both alarm; the second is debounced
        metrics_port=free_port(),
    )
    out = TopicReader(settings, settings.predictions_topic)
    news = TopicReader(settings, settings.retrain_topic)
    drifted = Perturbation(shift={"age": 25.0}, mix={"occupation": ("Farming-fishing", 0.8)})
    try:
        with in_thread(Predictor(settings).run):
            produce(settings, events(adult, 0, 2000, "clean", Perturbation()))
            out.wait_for(lambda r: len(r) >= 2000, 120, "2,000 clean predictions")
            clean_requests = requests(news)
            produce(settings, events(adult, 2000, 3000, "drift", drifted))
            news.wait_for(lambda _: bool(requests(news)), 120, "a retrain request")
            counted = 'pipeline_retrain_requests_total{reason="drift"} 1.0'
            await_true(
                lambda: counted in get(settings.metrics_port, "/metrics")[1], 10, "it counted"
            )
            scraped = get(settings.metrics_port, "/metrics")[1]
    finally:
        out.close()
        news.close()
    assert clean_requests == []
    asked = requests(news)
    assert [r["reason"] for r in asked] == ["drift"]
    assert sample(scraped, 'pipeline_drift_js_distance{feature="age"}') > 0.1
    assert sample(scraped, 'pipeline_retrain_requests_total{reason="drift"}') == len(asked)


def test_flipped_labels_ask_for_a_quality_retrain_and_quality_is_logged(
    live: Settings, adult
) -> None:
    settings = replace(  # every window to MLflow (interval 0): the steps are counted below
        live,
        quality_window=200,
        quality_max_drop=0.1,
        retrain_min_interval_s=0,
        drift_patience=0,
        quality_log_interval_s=0,
    )
    client = MlflowClient()
    client.set_model_version_tag(settings.model_name, "1", "holdout.auc", "0.90")
    run_id = client.get_model_version(settings.model_name, "1").run_id
    out = TopicReader(settings, settings.predictions_topic)
    news = TopicReader(settings, settings.retrain_topic)
    try:
        with in_thread(Predictor(settings).run):
            produce(settings, events(adult, 0, 600, "clean", Perturbation()))
            out.wait_for(lambda r: len(r) >= 600, 120, "600 clean predictions")
            clean_requests = requests(news)
            produce(
                settings,
                events(
                    adult,
                    600,
                    400,
                    "flip",
                    Perturbation(flip_labels=1.0, label_field=LABEL_FIELD, labels=SCHEMA.labels),
                ),
            )
            news.wait_for(lambda _: bool(requests(news)), 120, "a retrain request")
            await_true(
                lambda: len(client.get_metric_history(run_id, "online_auc")) >= 4,
                30,
                "four quality windows logged to the version's run",
            )
    finally:
        out.close()
        news.close()
    assert clean_requests == []
    assert {r["reason"] for r in requests(news)} == {"quality"}
    history = client.get_metric_history(run_id, "online_auc")
    assert [m.step for m in sorted(history, key=lambda m: m.step)][:3] == [1, 2, 3]
    assert min(m.value for m in history) < 0.5 < max(m.value for m in history)


def test_labels_sent_later_on_the_labels_topic_are_joined_into_online_quality(
    live: Settings, adult
) -> None:
    settings = replace(live, quality_window=100, metrics_port=free_port(), heartbeat_interval_s=0.5)
    rows = event_rows(adult.test.iloc[:300], SCHEMA)
    unlabelled = [
        (f"late-{i}", encode_event(f"late-{i}", {k: v for k, v in row.items() if k != LABEL_FIELD}))
        for i, row in enumerate(rows)
    ]
    labels = [
        (f"late-{i}", label_record(f"late-{i}", row[LABEL_FIELD])) for i, row in enumerate(rows)
    ]
    out = TopicReader(settings, settings.predictions_topic)
    try:
        with in_thread(Predictor(settings).run):
            port = settings.metrics_port
            await_true(lambda: get(port, "/readyz")[0] == 200, 30, "the Predictor to be ready")
            produce(settings, unlabelled[:150])
            out.wait_for(lambda r: len(r) >= 150, 60, "150 predictions")
            produce(settings, labels, topic=settings.labels_topic)  # half before their event
            produce(settings, unlabelled[150:])
            await_true(
                lambda: "pipeline_labels_joined_total 300.0" in get(port, "/metrics")[1],
                60,
                "300 labels joined",
            )
            scraped = get(port, "/metrics")[1]
    finally:
        out.close()
    assert sample(scraped, 'pipeline_online_quality{metric="auc",version="1"}') > 0.8
