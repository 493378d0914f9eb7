"""Retrains start from what works: the champion's logged parameters are the first trial."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import tuning
from pipeline.core.features import FeatureBuilder
from pipeline.core.search_space import (
    DEFAULT_POINT,
    SEARCH_SPACE,
    to_plain_params,
    warm_start_from_params,
)
from pipeline.core.training import make_dataset
from pipeline.core.tuning import TuningConfig, full_params, tune

SMALL = TuningConfig(max_evals=1, folds=2, max_rounds=100, early_stopping_rounds=10, seed=7)
CHAMPION = {  # as tune() returns them: plain ints and floats
    "learning_rate": 0.0731,
    "num_leaves": 23,
    "min_child_samples": 41,
    "feature_fraction": 0.66,
    "bagging_fraction": 0.81,
    "lambda_l1": 0.02,
    "lambda_l2": 3.5,
    "cat_smooth": 12.5,
    "cat_l2": 20.0,
    "max_cat_threshold": 32,
    "min_data_per_group": 77,
}


@pytest.fixture(scope="module")
def dataset(adult, schema):
    sample = adult.train.sample(2000, random_state=3)
    return make_dataset(FeatureBuilder.for_schema(schema).fit(sample), sample, schema)


@pytest.fixture
def evaluated(monkeypatch) -> list[dict]:
    """The tuned parameters of each trial the cross-validation actually ran, in order."""
    seen: list[dict] = []
    real = tuning.cross_validate

    def recording(dataset, params, config):
        seen.append({k: v for k, v in params.items() if k in SEARCH_SPACE})
        return real(dataset, params, config)

    monkeypatch.setattr(tuning, "cross_validate", recording)
    return seen


def logged(params: dict) -> dict[str, str]:
    """What MLflow gives back for a run that logged `params`: strings, plus other keys."""
    run = {**full_params(params, SMALL), "num_boost_round": 120, "lineage.training_rows": 32561}
    return {k: str(v) for k, v in run.items()}


def test_one_trial_with_a_warm_start_evaluates_exactly_the_warm_start(dataset, evaluated) -> None:
    result = tune(dataset, SMALL, warm_start_from_params(logged(CHAMPION)))
    assert len(evaluated) == 1 and result.trials == 1
    assert evaluated[0] == CHAMPION
    assert {k: result.params[k] for k in CHAMPION} == CHAMPION
    assert result.warm_started


def test_the_warm_start_counts_towards_the_budget_and_comes_first(dataset, evaluated) -> None:
    three = TuningConfig(**{**SMALL.__dict__, "max_evals": 3})
    result = tune(dataset, three, warm_start_from_params(logged(CHAMPION)))
    assert len(evaluated) == 3 and result.trials == 3
    assert evaluated[0] == CHAMPION
    assert evaluated[1] != CHAMPION


def test_logged_strings_and_numpy_scalars_become_the_same_point() -> None:
    from_strings = warm_start_from_params(logged(CHAMPION))
    from_numpy = warm_start_from_params({k: np.float64(v) for k, v in CHAMPION.items()})
    assert from_strings == from_numpy
    assert set(from_strings) == set(SEARCH_SPACE)
    assert all(type(v) is float for v in from_strings.values())
    assert to_plain_params(from_strings) == CHAMPION


def test_unknown_keys_are_ignored_and_missing_ones_take_the_defaults() -> None:
    point = warm_start_from_params({"learning_rate": "0.1", "num_leaves": "15.0", "x": "y"})
    assert point["learning_rate"] == 0.1 and point["num_leaves"] == 15.0
    assert point["lambda_l2"] == DEFAULT_POINT["lambda_l2"]
    assert set(point) == set(SEARCH_SPACE)


@pytest.mark.parametrize("params", [{}, {"seed": "42"}, {"learning_rate": "fast"}])
def test_nothing_usable_means_no_warm_start(params) -> None:
    assert warm_start_from_params(params) == {}


def test_unreadable_values_fall_back_to_the_defaults() -> None:
    point = warm_start_from_params({"learning_rate": "nan", "num_leaves": "31", "lambda_l1": None})
    assert point["learning_rate"] == DEFAULT_POINT["learning_rate"]
    assert point["lambda_l1"] == DEFAULT_POINT["lambda_l1"]
