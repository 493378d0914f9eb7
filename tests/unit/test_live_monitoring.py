"""The Predictor's monitoring: quality windows and drift become retrain reasons, debounced;
the sample app's perturbations do what they say; the reference profile travels with the model."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from pipeline.config.settings import Settings
from pipeline.core.batching import BatchResult, ServingModel, columns_of, score_batch
from pipeline.core.drift import reference_profile
from pipeline.core.events import EventDecoder, encode_event
from pipeline.core.perturb import Perturbation, parse_perturbation
from pipeline.core.quality import WindowReport
from pipeline.core.scoring import ScoringModel
from pipeline.core.spec import load_spec
from pipeline.errors import ConfigError, RegistryError
from pipeline.registry.online import VersionRecord, window_metrics
from pipeline.services.metrics import PredictorMetrics
from pipeline.services.monitoring import LiveMonitor, RegistryWriter
from pipeline.tools.sample_stream import event_rows

SCHEMA = load_spec().schema
LABEL_FIELD = SCHEMA.label_field
DECODER = EventDecoder(SCHEMA, 1 << 16)
FIELDS = SCHEMA.feature_fields


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def monitor(settings: Settings, holdout_auc: float = 0.9) -> tuple[LiveMonitor, list, Clock]:
    logged: list[tuple[str, WindowReport]] = []
    writer = RegistryWriter(
        lambda v: VersionRecord(f"run-{v}", holdout_auc), lambda r, w: logged.append((r, w))
    )
    writer.records[1] = VersionRecord("run-1", holdout_auc)
    clock = Clock()
    return LiveMonitor(settings, PredictorMetrics(), writer, clock), logged, clock


def outcomes(n: int, flipped: bool, seed: int = 0) -> BatchResult:
    """A scored batch of `n` labelled events; `flipped`: the labels say the opposite."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    proba = np.clip(truth * 0.6 + rng.normal(0.2, 0.15, n), 0, 1)
    labels = 1 - truth if flipped else truth
    return BatchResult(outcome_proba=proba, outcome_truth=labels.astype(np.int8))


def test_flipped_labels_ask_for_a_quality_retrain_and_requests_are_debounced() -> None:
    settings = replace(Settings(), quality_window=100, retrain_min_interval_s=60)
    live, logged, clock = monitor(settings)
    good = live.observe(1, None, outcomes(100, flipped=False))
    assert good is None
    assert live.observe(1, None, outcomes(100, flipped=True, seed=1)) == "quality"
    # Another bad window within the interval: no second request.
    assert live.observe(1, None, outcomes(100, flipped=True, seed=2)) is None
    clock.now += 61
    assert live.observe(1, None, outcomes(100, flipped=True, seed=3)) == "quality"
    live.close()
    assert [report.index for _, report in logged] == [1, 2, 3, 4]
    assert {run for run, _ in logged} == {"run-1"}
    exposed = live.metrics.online_quality.labels(version="1", metric="auc")._value.get()
    assert exposed < 0.5


def test_a_version_without_a_holdout_auc_is_never_called_decayed() -> None:
    settings = replace(Settings(), quality_window=100, retrain_min_interval_s=0)
    live, _, _ = monitor(settings)
    live.writer.records[1] = VersionRecord("run-1", None)
    assert live.observe(1, None, outcomes(100, flipped=True)) is None
    live.close()


def test_drift_on_a_shifted_stream_asks_for_a_drift_retrain_after_patience(adult) -> None:
    # Windows of 1,000 (the default): clean adult.test windows stay under 0.07 on every feature.
    settings = replace(
        Settings(),
        drift_window=1000,
        drift_patience=2,
        retrain_min_interval_s=0,
        drift_sample_every=1,
    )
    live, _, _ = monitor(settings)
    profile = reference_profile(adult.train, SCHEMA.field_kinds)
    for start in (0, 1000, 2000):
        events = [DECODER.parse(e) for e in encoded(adult, 1000, start=start)]
        clean = columns_of(events, FIELDS)
        assert live.observe(1, profile, BatchResult(columns=clean)) is None
    assert live.drift is not None and live.drift.alarms() == [] and live.drift_alerts == []
    shifted = Perturbation(shift={"age": 25.0}, mix={"occupation": ("Farming-fishing", 0.8)})
    drifted = columns_of([DECODER.parse(e) for e in encoded(adult, 1000, shifted)], FIELDS)
    assert live.observe(1, profile, BatchResult(columns=drifted)) is None  # one window over
    assert live.observe(1, profile, BatchResult(columns=drifted)) == "drift"
    assert live.drift_alerts[-1]["features"].keys() >= {"age", "occupation"}
    assert live.metrics.drift_js.labels(feature="age")._value.get() > 0.1
    # A version without a profile is served unwatched.
    assert live.observe(2, None, BatchResult(columns=drifted)) is None and live.drift is None
    live.close()


def encoded(adult, n: int, perturbation: Perturbation | None = None, start: int = 0) -> list[bytes]:
    from pipeline.core.events import encode_event

    rows = event_rows(adult.test.iloc[start : start + n], SCHEMA)
    p = perturbation or Perturbation()
    return [encode_event(f"r{i}", p.apply(i, row)) for i, row in enumerate(rows)]


def test_perturbations_shift_mix_and_flip_as_asked() -> None:
    p = parse_perturbation("age=10", "occupation=Farming-fishing:0.5", 1.0, after=2, schema=SCHEMA)
    row = {"age": 30, "occupation": "Sales", LABEL_FIELD: ">50K"}
    assert p.apply(0, row) == row  # before `after`
    changed = [p.apply(i, row) for i in range(2, 202)]
    assert all(r["age"] == 40 and r[LABEL_FIELD] == "<=50K" for r in changed)
    assert sum(r["occupation"] == "Farming-fishing" for r in changed) == 100


@pytest.mark.parametrize(
    ("shift", "mix", "flip"),
    [
        ("workclass=3", "", 0.0),
        ("age=old", "", 0.0),
        ("age", "", 0.0),
        ("", "age=x:0.5", 0.0),
        ("", "occupation=Sales:2", 0.0),
        ("", "occupation=Sales", 0.0),
        ("", "", 1.5),
    ],
)
def test_bad_perturbations_are_config_errors(shift: str, mix: str, flip: float) -> None:
    with pytest.raises(ConfigError):
        parse_perturbation(shift, mix, flip, 0, SCHEMA)


def test_the_reference_profile_travels_with_the_model_files(tmp_path, adult) -> None:
    model = _tiny_model(adult)
    files = model.save(tmp_path)
    loaded = ScoringModel.load(files["booster"], files["features"])
    assert loaded.profile is not None and loaded.profile.keys() == set(SCHEMA.field_kinds)
    assert loaded.profile["age"] == model.profile["age"]  # type: ignore[index]


def _tiny_model(adult) -> ScoringModel:
    from pipeline.core.training import train_model
    from pipeline.core.tuning import TuningConfig

    config = TuningConfig(max_evals=1, folds=2, max_rounds=20, early_stopping_rounds=5, seed=1)
    return train_model(adult.train.head(2000), config, SCHEMA).model


def test_a_batch_hands_labelled_outcomes_and_columns_to_the_monitor(adult) -> None:
    model = _tiny_model(adult)

    class Record:
        topic, partition, key = "in", 0, None

        def __init__(self, offset: int, value: bytes) -> None:
            self.offset, self.value = offset, value

    rows = event_rows(adult.test.head(20), SCHEMA)
    for row in rows[::3]:  # every third event comes without its label (it may come later)
        del row[LABEL_FIELD]
    values = [encode_event(f"r{i}", row) for i, row in enumerate(rows)]
    records = [Record(i, v) for i, v in enumerate(values)]
    result = score_batch(records, ServingModel(model, "m", 1), DECODER, "test")
    labelled = [i for i in range(20) if i % 3]
    assert result.labelled == len(result.outcome_proba) == len(result.outcome_truth) == 13
    assert [request_id for request_id, _ in result.unlabelled] == [f"r{i}" for i in range(0, 20, 3)]
    # Each labelled event's own score and label, in order, as its published record says.
    published = [json.loads(p.value)["probability"] for p in result.predictions]
    assert result.outcome_proba.tolist() == [published[i] for i in labelled]
    truth = [SCHEMA.normalize_label(rows[i][LABEL_FIELD]) == ">50K" for i in labelled]
    assert result.outcome_truth.tolist() == [int(t) for t in truth]
    assert len(result.columns["age"]) == 20


def test_window_metrics_name_each_figure_and_skip_nan() -> None:
    report = WindowReport(1, 1, 10, {"auc": float("nan"), "recall": 0.5}, {3: {"recall": 0.5}})
    assert window_metrics(report) == {"online_recall": 0.5, "online_recall_ewma3": 0.5}


def _until(condition, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_run_gets_at_most_one_mlflow_write_an_interval_of_its_newest_window() -> None:
    clock = Clock()
    logged: list[tuple[str, int]] = []
    writer = RegistryWriter(
        lambda v: VersionRecord(f"run-{v}", 0.9),
        lambda run, report: logged.append((run, report.index)),
        interval_s=5.0,
        clock=clock,
    )

    def window(version: int, index: int) -> WindowReport:
        return WindowReport(version, index, 100, {"auc": 0.9}, {})

    writer.submit(1, window(1, 1))  # the first window of a run is written at once
    _until(lambda: logged == [("run-1", 1)], "the first window")
    writer.submit(1, window(1, 2))
    writer.submit(1, window(1, 3))
    writer.submit(2, window(2, 1))  # another version's run has an interval of its own
    _until(lambda: writer.skipped == 1 and ("run-2", 1) in logged, "windows 2 and 3 taken")
    assert ("run-1", 3) not in logged  # within run-1's interval: held, newest only
    clock.now += 5
    writer.submit(1)  # any job wakes the writer; the held window is due now
    _until(lambda: ("run-1", 3) in logged, "the held window once due")
    writer.submit(1, window(1, 4))
    writer.close()  # what is still held is written before the writer stops
    assert logged == [("run-1", 1), ("run-2", 1), ("run-1", 3), ("run-1", 4)]
    assert writer.skipped == 1


def test_a_version_looked_up_at_start_up_is_not_looked_up_again_on_the_writer() -> None:
    """The Predictor reads its champion's record before its first event, on its own thread:
    the writer's thread must not pay the registry again while the first batches are scored."""
    calls: list[tuple[int, str]] = []
    logged: list[str] = []

    def lookup(version: int) -> VersionRecord:
        calls.append((version, threading.current_thread().name))
        if version == 9:
            raise RegistryError("the registry is down")
        return VersionRecord(f"run-{version}", 0.9)

    writer = RegistryWriter(lookup, lambda run, report: logged.append(run))
    writer.look_up(3)
    assert calls == [(3, threading.current_thread().name)]
    assert writer.records[3].run_id == "run-3"
    writer.submit(3, WindowReport(3, 1, 100, {"auc": 0.9}, {}))
    _until(lambda: logged == ["run-3"], "the window of the version looked up")
    assert len(calls) == 1

    writer.look_up(9)  # a registry that fails at start-up costs a warning, not the Predictor
    assert 9 not in writer.records
    writer.close()
    assert [version for version, _ in calls] == [3, 9]
