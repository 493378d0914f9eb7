"""Two pipelines with different specs on one broker and one registry, side by side.

The second data set is the Wisconsin breast cancer data as scikit-learn's wheel ships it: it
runs initialize -> Predictor -> retrain -> swap through `specs/breast_cancer.toml` alone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

from mlflow.tracking import MlflowClient

import initialize
from pipeline.config.settings import Settings, parse_settings
from pipeline.core.data import load_data
from pipeline.core.events import encode_event
from pipeline.kafka_io.admin import ensure_topics
from pipeline.ops.__main__ import main as ops
from pipeline.services.predictor import Predictor
from pipeline.services.trainer import Trainer
from pipeline.tools.sample_stream import event_rows

from .conftest import REPO_ROOT, TopicReader, await_true, in_thread, produce
from .helpers import make_events

CANCER_SPEC = REPO_ROOT / "specs" / "breast_cancer.toml"


def cancer_argv(bootstrap: str, home: Path, unique: str) -> list[str]:
    """Only the names differ from the spec's own (one test must not read another's topics)."""
    names = {
        "model-name": f"cancer-{unique}",
        "experiment": f"cancer-exp-{unique}",
        "input-topic": f"c-in-{unique}",
        "predictions-topic": f"c-out-{unique}",
        "dlq-topic": f"c-dlq-{unique}",
        "retrain-topic": f"c-retrain-{unique}",
        "heartbeat-topic": f"c-beat-{unique}",
        "labels-topic": f"c-labels-{unique}",
        "shadow-topic": f"c-shadow-{unique}",
        "predictor-group": f"c-predictor-{unique}",
        "trainer-group": f"c-trainer-{unique}",
    }
    argv = ["--spec", str(CANCER_SPEC), "--bootstrap-servers", bootstrap, "--home", str(home)]
    for flag, value in names.items():
        argv += [f"--{flag}", value]
    return argv


def cancer_settings(argv: list[str], script: str, *extra: str) -> Settings:
    return parse_settings(script, "", [*argv, *extra])


def test_two_pipelines_with_their_own_specs_share_a_broker_and_a_registry(
    live: Settings, adult, unique, capsys
) -> None:
    base = cancer_argv(live.bootstrap_servers, live.home, unique)
    first = [*base, "--tuning-evals", "2", "--cv-folds", "2", "--no-allow-download"]
    assert initialize.main(first) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["spec"] == "breast-cancer" and summary["version"] == 1
    assert summary["test_auc"] > 0.9  # 171 test rows of a well-separated data set

    cancer = cancer_settings(base, "predictor", "--instance-id", f"c-{unique}")
    cancer = replace(cancer, batch_wait_ms=10, retrain_every=0)
    spec = cancer.pipeline_spec
    assert spec.name == "breast-cancer" and cancer.input_topic == f"c-in-{unique}"
    ensure_topics(cancer.bootstrap_servers, cancer.topic_specs())
    rows = event_rows(load_data(spec, Path("unused"), allow_download=False).test, spec.schema)
    cancer_events = [(f"c-{i}", encode_event(f"c-{i}", row)) for i, row in enumerate(rows)]
    adult_events = make_events(adult, 200, "a")

    readers = [
        TopicReader(live, live.predictions_topic),
        TopicReader(cancer, cancer.predictions_topic),
        TopicReader(cancer, cancer.dlq_topic),
        TopicReader(cancer, cancer.retrain_topic),
    ]
    try:
        _side_by_side(live, cancer, base, adult_events, cancer_events, rows, readers, capsys)
    finally:
        for reader in readers:
            reader.close()


def _side_by_side(live, cancer, base, adult_events, cancer_events, rows, readers, capsys) -> None:
    adult_out, cancer_out, cancer_dlq, news = readers
    spec = cancer.pipeline_spec
    with in_thread(Predictor(live).run), in_thread(Predictor(cancer).run):
        produce(live, adult_events)
        produce(cancer, cancer_events)
        produce(cancer, adult_events[:3])  # an Adult event is bad input to the other pipeline
        adult_out.wait_for(lambda r: len(r) >= 200, 90, "Adult predictions")
        cancer_out.wait_for(lambda r: len(r) >= len(rows), 90, "cancer predictions")
        cancer_dlq.wait_for(lambda r: len(r) >= 3, 60, "Adult events dead-lettered")

        # No cross-talk: each pipeline answered exactly its own events, in its own classes.
        adult_predictions, cancer_predictions = adult_out.json(), cancer_out.json()
        assert {p["request_id"] for p in adult_predictions} == {k for k, _ in adult_events}
        assert {p["request_id"] for p in cancer_predictions} == {k for k, _ in cancer_events}
        assert {p["label"] for p in cancer_predictions} <= {"benign", "malignant"}
        assert {p["label"] for p in adult_predictions} <= {"<=50K", ">50K"}
        assert {p["model_name"] for p in cancer_predictions} == {cancer.model_name}
        reasons = {dict(r.headers)["dlq.reason"].decode() for r in cancer_dlq.records}
        assert any("mean_radius" in reason for reason in reasons), reasons

        # retrain -> swap: the Trainer answers from the spec's data plus the labelled events.
        trainer_settings = cancer_settings(
            base, "trainer", "--retrain-evals", "1", "--retrain-folds", "2",
            "--no-allow-download", "--instance-id", f"t-{cancer.instance_id}",
        )  # fmt: skip
        with in_thread(Trainer(trainer_settings).run):
            assert ops(["retrain", *base, "--reason", "spec test"]) == 0
            news.wait_for(lambda r: any(b'"model_ready"' in x.value for x in r), 240, "v2")
        ready = next(m for m in news.json() if m["type"] == "model_ready")
        assert ready["version"] == 2
        if not ready["promoted"]:  # 86 holdout rows rarely show a significant gain
            assert ops(["promote", "2", *base]) == 0
        await_true(lambda: _serving(cancer_out, 2, cancer, rows), 90, "the swap to version 2")

    # The registry keeps the two apart, and each version says which spec it was trained for.
    client = MlflowClient()
    cancer_versions = client.search_model_versions(f"name = '{cancer.model_name}'")
    assert sorted(int(v.version) for v in cancer_versions) == [1, 2]
    assert {v.tags["pipeline.spec_name"] for v in cancer_versions} == {"breast-cancer"}
    assert {v.tags["pipeline.schema_fingerprint"] for v in cancer_versions} == {
        spec.schema.fingerprint
    }
    adult_tags = client.get_model_version(live.model_name, "1").tags
    assert adult_tags["pipeline.spec_name"] == "adult"
    run = client.get_run(cancer_versions[0].run_id)
    assert run.data.tags["pipeline.spec_sha256"] == spec.sha256
    assert "spec/breast_cancer.toml" in [
        a.path for a in client.list_artifacts(run.info.run_id, "spec")
    ]

    # A Predictor of one spec refuses the other's model, with the reason (the check the
    # Predictor's loader makes; `ops promote` makes the same one).
    adult_argv = ["--bootstrap-servers", live.bootstrap_servers, "--home", str(live.home)]
    wrong = [*adult_argv, "--model-name", cancer.model_name, "--retrain-topic", live.retrain_topic]
    capsys.readouterr()
    assert ops(["promote", "1", *wrong]) == 5
    assert "trained for another pipeline spec" in capsys.readouterr().err
    assert Counter(p["model_version"] for p in adult_out.json()) == {1: 200}


def _serving(out: TopicReader, version: int, settings: Settings, rows: list[dict]) -> bool:
    """Sends a few events and sees whether `version` answered any of them."""
    tag = f"swap-{len(out.records)}"
    produce(settings, [(f"{tag}-{i}", encode_event(f"{tag}-{i}", rows[i])) for i in range(5)])
    seen = out.wait_for(lambda r: sum(x.key.decode().startswith(tag) for x in r) >= 5, 30, tag)
    return any(
        json.loads(x.value)["model_version"] == version
        for x in seen
        if x.key.decode().startswith(tag)
    )
