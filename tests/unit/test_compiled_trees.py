"""Compiled trees score exactly as LightGBM does, are cached by model hash, and any failure
leaves the model on LightGBM."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pipeline.core import compiled as compiled_module
from pipeline.core.compiled import compile_booster, model_hash
from pipeline.core.model_checks import golden_rows
from pipeline.core.scoring import ScoringModel
from pipeline.core.training import train_model
from pipeline.core.tuning import TuningConfig


@pytest.fixture(scope="module")
def small_model(adult, schema) -> ScoringModel:
    config = TuningConfig(max_evals=1, folds=2, max_rounds=40, early_stopping_rounds=50, seed=5)
    return train_model(adult.train.head(4000), config, schema).model


def test_compiled_trees_score_adult_test_as_lightgbm_does(small_model, adult, tmp_path) -> None:
    predict = compile_booster(small_model.booster, tmp_path)
    assert predict is not None
    matrix = small_model.features.transform(adult.test)
    expected = small_model.booster.predict(matrix, num_threads=1)
    assert np.max(np.abs(predict(matrix) - expected)) <= 1e-9
    assert small_model.use_compiled(predict, golden_rows(small_model))
    np.testing.assert_allclose(small_model.predict_proba(adult.test), expected, rtol=0, atol=1e-9)
    small_model.compiled = None


def test_the_compiled_code_is_cached_by_model_hash(small_model, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.core.compiled")
    assert compile_booster(small_model.booster, tmp_path) is not None
    digest = model_hash(small_model.booster)
    assert {p.name for p in tmp_path.iterdir()} == {f"{digest}.txt", f"{digest}.so"}
    caplog.clear()
    assert compile_booster(small_model.booster, tmp_path) is not None
    assert "compiled" not in caplog.text  # loaded from the cache, not compiled again


def test_a_failed_compilation_leaves_lightgbm_in_charge(
    small_model, tmp_path, caplog, monkeypatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("LLVM says no")

    monkeypatch.setattr(compiled_module, "_compiled", broken)
    assert compile_booster(small_model.booster, tmp_path) is None
    assert "scoring with LightGBM: LLVM says no" in caplog.text


def test_compiled_trees_that_disagree_are_not_used(small_model) -> None:
    assert not small_model.use_compiled(lambda m: np.zeros(len(m)), golden_rows(small_model))
    assert small_model.compiled is None
