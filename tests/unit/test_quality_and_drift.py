"""Online quality windows and drift figures on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.drift import DriftMonitor, js_distance, psi, reference_profile
from pipeline.core.quality import EWMA_SPANS, OnlineQuality, decayed


def labelled(rng: np.random.Generator, rows: int, flip: float = 0.0) -> list[tuple[float, int]]:
    truth = rng.integers(0, 2, rows)
    proba = np.clip(truth * 0.6 + rng.normal(0.2, 0.15, rows), 0, 1)
    flipped = np.where(rng.random(rows) < flip, 1 - truth, truth)
    return list(zip(proba.tolist(), flipped.tolist(), strict=True))


def test_a_window_closes_every_n_labels_per_version_with_its_trend() -> None:
    rng = np.random.default_rng(1)
    quality = OnlineQuality(window=200)
    assert quality.add(1, labelled(rng, 199)) == []
    first = quality.add(1, labelled(rng, 1))[0]
    assert first.version == 1 and first.index == 1 and first.rows == 200
    assert first.metrics["auc"] > 0.95 and 0.8 < first.metrics["precision"] <= 1
    assert all(first.ewma[span]["auc"] == first.metrics["auc"] for span in EWMA_SPANS)
    assert quality.add(2, labelled(rng, 200))[0].index == 1  # versions are kept apart
    second = quality.add(1, labelled(rng, 200, flip=0.5))[0]
    assert second.metrics["auc"] < 0.65
    # The short span follows the dip faster than the long one.
    assert second.ewma[3]["auc"] < second.ewma[20]["auc"] < first.metrics["auc"]


def test_flipped_labels_are_decay_against_the_holdout() -> None:
    rng = np.random.default_rng(2)
    quality = OnlineQuality(window=500)
    good = quality.add(1, labelled(rng, 500))[0]
    bad = quality.add(1, labelled(rng, 500, flip=0.4))[0]
    assert not decayed(good, holdout_auc=0.93, max_drop=0.05)
    assert decayed(bad, holdout_auc=0.93, max_drop=0.05)


def test_distances_are_zero_for_the_same_distribution_and_grow_with_a_shift() -> None:
    same = np.array([10.0, 20, 30, 40])
    assert js_distance(same, same * 3) == pytest.approx(0, abs=1e-6)
    assert psi(same, same) == pytest.approx(0, abs=1e-9)
    moved = np.array([40.0, 30, 20, 10])
    assert 0.1 < js_distance(same, moved) <= 1 and psi(same, moved) > 0.1


def test_a_shifted_number_and_a_new_category_mix_alarm_after_patience(adult, schema) -> None:
    kinds = {"age": schema.field_kinds["age"], "workclass": schema.field_kinds["workclass"]}
    profiles = reference_profile(adult.train, kinds)
    monitor = DriftMonitor(profiles, window=1000, threshold=0.1, patience=2)
    calm = adult.test.head(1000)
    figures = monitor.add({"age": calm["age"].tolist(), "workclass": calm["workclass"].tolist()})
    assert figures is not None and max(f["js"] for f in figures.values()) < 0.1
    drifted = {"age": (calm["age"] + 25).tolist(), "workclass": ["Never-worked"] * 1000}
    for _ in range(2):
        figures = monitor.add(drifted)
    assert figures["age"]["js"] > 0.3 and figures["workclass"]["psi"] > 1
    assert monitor.alarms() == ["age", "workclass"]
    monitor.add({"age": calm["age"].tolist(), "workclass": calm["workclass"].tolist()})
    assert monitor.alarms() == []


def test_profiles_round_trip_through_json_with_missing_values_counted() -> None:
    from pipeline.core.drift import FeatureProfile

    frame = pd.DataFrame({"n": [1.0, 2.0, None, 4.0], "c": ["a", None, "b", "a"]})
    profiles = reference_profile(frame, {"n": "numeric", "c": "categorical"}, bins=2)
    again = {k: FeatureProfile.from_dict(p.to_dict()) for k, p in profiles.items()}
    assert again == profiles
    assert profiles["n"].shares[-1] == pytest.approx(0.25)
    assert profiles["c"].shares[-1] == pytest.approx(0.25)


def test_window_figures_match_sklearn_and_category_counts_match_a_plain_count() -> None:
    from sklearn.metrics import log_loss, roc_auc_score

    from pipeline.core.drift import _categorical_counts
    from pipeline.core.quality import window_metrics

    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 500)
    proba = np.round(0.01 + 0.98 * rng.random(500), 2)  # ties on purpose, none clipped
    figures = window_metrics(truth, proba, 0.5)
    assert figures["auc"] == pytest.approx(roc_auc_score(truth, proba), abs=1e-12)
    assert figures["log_loss"] == pytest.approx(log_loss(truth, proba), abs=1e-12)
    values = ["a", "b", None, "zz", "a", float("nan"), "b", "a"]
    assert _categorical_counts(values, ("a", "b")).tolist() == [3, 2, 1, 2]
