"""The promotion gate on synthetic scores: noise, ties and losses keep the champion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.core import paired_auc
from pipeline.core.gate import NO_CHAMPION, GateConfig, decide, no_champion

ROWS = 4000


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Labels and champion scores; each test also gets a generator of its own seed."""
    rng = np.random.default_rng(11)
    labels = rng.random(ROWS) < 0.25
    champion = labels * 1.0 + rng.normal(0, 1.0, ROWS)  # AUC about 0.76
    return labels, champion, np.random.default_rng(101)


@pytest.mark.parametrize("min_effect", [0.001, 0.0])
def test_identical_scores_keep_the_champion(rows, min_effect) -> None:
    labels, champion, _ = rows
    decision = decide(labels, champion.copy(), champion, GateConfig(min_effect=min_effect))
    assert not decision.promoted  # a tie is no evidence, whatever the minimum effect
    assert decision.difference == 0.0
    assert decision.reason.startswith("kept the champion")


def test_a_lucky_gain_above_the_minimum_effect_is_still_noise(rows) -> None:
    labels, champion, rng = rows
    candidate = champion + 0.05 * labels + rng.normal(0, 0.3, ROWS)  # another model, luckier
    decision = decide(labels, candidate, champion)
    assert decision.difference >= decision.min_effect and decision.ci_low <= 0  # the premise
    assert not decision.promoted
    assert "lower bound" in decision.reason and "<= 0" in decision.reason


def test_the_champion_plus_noise_is_kept(rows) -> None:
    labels, champion, _ = rows
    rng = np.random.default_rng(7)
    for _ in range(5):  # several draws: a lucky one must not get through either
        candidate = champion + rng.normal(0, 0.05, ROWS)
        decision = decide(labels, candidate, champion)
        assert not decision.promoted, decision.reason


def test_a_worse_candidate_is_kept_out(rows) -> None:
    labels, champion, _ = rows
    rng = np.random.default_rng(8)
    worse = champion + rng.normal(0, 0.7, ROWS)
    decision = decide(labels, worse, champion)
    assert not decision.promoted
    assert decision.difference < 0
    assert decision.p_value > 0.5


def test_a_clearly_better_candidate_is_promoted(rows) -> None:
    labels, champion, _ = rows
    better = champion + 0.6 * labels  # the same noise, a stronger signal
    decision = decide(labels, better, champion)
    assert decision.promoted, decision.reason
    assert decision.ci_low > 0 and decision.difference >= decision.min_effect
    assert decision.p_value < 0.05
    assert decision.reason.startswith("promoted")


def test_a_sure_but_tiny_gain_is_below_the_minimum_effect(rows) -> None:
    labels, champion, _ = rows
    better = champion + 0.6 * labels
    decision = decide(labels, better, champion, GateConfig(min_effect=0.2))
    assert decision.ci_low > 0
    assert not decision.promoted
    assert "minimum effect" in decision.reason


def test_delong_aucs_match_sklearn_with_ties(rows) -> None:
    labels, champion, _ = rows
    tied = np.round(champion, 1)  # many tied scores
    stats = paired_auc.delong(labels, tied, champion, 0.95)
    assert stats.candidate_auc == pytest.approx(roc_auc_score(labels, tied), abs=1e-12)
    assert stats.champion_auc == pytest.approx(roc_auc_score(labels, champion), abs=1e-12)


def test_bootstrap_weights_count_rows_like_repeating_them(rows) -> None:
    labels, champion, _ = rows
    tied = np.round(champion, 1)
    unit = paired_auc._weighted_auc(labels, tied, np.ones((1, ROWS), dtype=np.int64))
    assert unit[0] == pytest.approx(roc_auc_score(labels, tied), abs=1e-12)
    weights = np.random.default_rng(4).integers(0, 3, size=ROWS)
    repeated = np.repeat(np.arange(ROWS), weights)
    weighted = paired_auc._weighted_auc(labels, tied, weights[None, :])
    assert weighted[0] == pytest.approx(roc_auc_score(labels[repeated], tied[repeated]), abs=1e-12)


def test_delong_and_the_paired_bootstrap_agree(rows) -> None:
    labels, champion, _ = rows
    rng = np.random.default_rng(9)
    candidate = champion + 0.15 * labels + rng.normal(0, 0.3, ROWS)
    exact = paired_auc.delong(labels, candidate, champion, 0.95)
    boot = paired_auc.bootstrap(labels, candidate, champion, 0.95, resamples=1000, seed=3)
    assert boot.difference == pytest.approx(exact.difference, abs=1e-12)
    assert boot.ci_low == pytest.approx(exact.ci_low, abs=0.003)
    assert boot.ci_high == pytest.approx(exact.ci_high, abs=0.003)
    assert boot.p_value == pytest.approx(exact.p_value, abs=0.02)


def test_the_bootstrap_is_deterministic_with_a_seed(rows) -> None:
    labels, champion, _ = rows
    rng = np.random.default_rng(10)
    candidate = champion + rng.normal(0, 0.3, ROWS)
    config = GateConfig(method="bootstrap", resamples=500, seed=5)
    first = decide(labels, candidate, champion, config)
    assert decide(labels, candidate, champion, config) == first
    other = decide(labels, candidate, champion, GateConfig(method="bootstrap", resamples=500))
    assert other.ci_low != first.ci_low


def test_the_bootstrap_gate_keeps_noise_and_promotes_a_clear_gain(rows) -> None:
    labels, champion, _ = rows
    rng = np.random.default_rng(12)
    config = GateConfig(method="bootstrap", resamples=500, seed=1)
    assert not decide(labels, champion.copy(), champion, config).promoted
    assert not decide(labels, champion + rng.normal(0, 0.05, ROWS), champion, config).promoted
    assert decide(labels, champion + 0.6 * labels, champion, config).promoted


def test_without_a_champion_the_candidate_is_promoted(rows) -> None:
    labels, champion, _ = rows
    decision = decide(labels, champion, None)
    assert decision.as_tags() == no_champion(labels, champion).as_tags()
    assert decision.promoted and decision.reason == NO_CHAMPION
    assert decision.candidate_auc == pytest.approx(roc_auc_score(labels, champion))
    assert math.isnan(decision.champion_auc)
    metrics = decision.as_metrics()
    assert all(math.isfinite(v) for v in metrics.values())
    assert "gate.champion_auc" not in metrics and metrics["gate.promoted"] == 1.0


def test_tags_and_metrics_name_the_decision(rows) -> None:
    labels, champion, _ = rows
    decision = decide(labels, champion + 0.6 * labels, champion)
    assert decision.as_tags() == {
        "gate.promoted": "true",
        "gate.method": "delong",
        "gate.reason": decision.reason,
    }
    metrics = decision.as_metrics()
    assert metrics["gate.auc_difference"] == decision.difference
    assert metrics["gate.ci_low"] == decision.ci_low
    assert metrics["gate.n_rows"] == ROWS
    assert set(metrics) >= {"gate.p_value", "gate.confidence", "gate.min_effect"}


@pytest.mark.parametrize(
    ("labels", "candidate", "champion"),
    [
        ([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2]),
        ([1, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]),
        ([0, 1, 1], [0.1, np.nan, 0.3], [0.1, 0.2, 0.3]),
    ],
)
def test_unpaired_one_class_or_missing_scores_are_refused(labels, candidate, champion) -> None:
    with pytest.raises(ValueError):
        decide(np.array(labels), np.array(candidate), np.array(champion))


@pytest.mark.parametrize("config", [{"confidence": 1.0}, {"min_effect": -0.01}, {"method": "t"}])
def test_a_gate_that_could_let_anything_through_is_refused(config) -> None:
    with pytest.raises(ValueError):
        GateConfig(**config)
