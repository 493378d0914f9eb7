"""Compiled trees score exactly as LightGBM does, are cached by model hash, and any failure
leaves the model on LightGBM."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import pytest

from pipeline.core import compiled as compiled_module
from pipeline.core.compiled import compile_booster, model_hash
from pipeline.core.model_checks import golden_rows
from pipeline.core.scoring import ScoringModel
from pipeline.core.training import train_model
from pipeline.core.tuning import TuningConfig
from pipeline.services import tree_optimizer
from pipeline.services.tree_optimizer import TreeOptimizer, optimize


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
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{digest}.txt",
        f"{digest}.so",
        f"{digest}.so.lock",
    }
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
    caplog.clear()
    assert compile_booster(small_model.booster, tmp_path, optimized=True) is None
    assert "keeping the quick build: LLVM says no" in caplog.text


def test_compiled_trees_that_disagree_are_not_used(small_model) -> None:
    assert not small_model.use_compiled(lambda m: np.zeros(len(m)), golden_rows(small_model))
    assert small_model.compiled is None


def test_the_optimized_build_scores_as_lightgbm_and_is_cached_apart(
    small_model, adult, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.core.compiled")
    assert compile_booster(small_model.booster, tmp_path, optimized=True, cached_only=True) is None
    assert not any(tmp_path.iterdir())  # asked for the cache only: nothing built
    predict = compile_booster(small_model.booster, tmp_path, optimized=True)
    assert predict is not None
    digest = model_hash(small_model.booster)
    built = {p.name for p in tmp_path.iterdir()}
    assert built == {f"{digest}.txt", f"{digest}-inlined.so", f"{digest}-inlined.so.lock"}
    matrix = small_model.features.transform(adult.test)
    expected = small_model.booster.predict(matrix, num_threads=1)
    assert np.max(np.abs(predict(matrix) - expected)) <= 1e-9
    caplog.clear()
    cached = compile_booster(small_model.booster, tmp_path, optimized=True, cached_only=True)
    assert cached is not None and "compiled" not in caplog.text
    assert compile_booster(small_model.booster, tmp_path, cached_only=True) is None  # the quick


def test_a_model_moves_from_its_quick_build_to_the_optimized_one(small_model, tmp_path) -> None:
    model = replace(small_model, compiled=None, optimized=False)
    assert not optimize(model, tmp_path)  # nothing compiled to improve on: LightGBM stays
    quick = compile_booster(model.booster, tmp_path)
    assert quick is not None and model.use_compiled(quick, golden_rows(model))
    optimizer = TreeOptimizer(tmp_path, after_s=0.0)
    optimizer.start()
    optimizer.offer(model)
    deadline = time.monotonic() + 60
    while not model.optimized:
        assert time.monotonic() < deadline, "the optimized build never arrived"
        time.sleep(0.05)
    assert model.compiled is not quick and optimizer.optimized == 1
    optimizer.offer(model)  # already optimized: not queued again
    optimizer.stop()
    optimizer.finish(10)
    assert not optimizer.is_alive() and optimizer.optimized == 1


def test_an_optimized_build_that_disagrees_leaves_the_quick_one(
    small_model, tmp_path, monkeypatch
) -> None:
    model = replace(small_model, compiled=None, optimized=False)
    quick = compile_booster(model.booster, tmp_path)
    assert quick is not None and model.use_compiled(quick, golden_rows(model))
    monkeypatch.setattr(
        tree_optimizer, "compile_booster", lambda *a, **k: lambda m: np.zeros(len(m))
    )
    assert not optimize(model, tmp_path)
    assert model.compiled is quick and not model.optimized


def test_a_model_replaced_before_its_turn_is_never_built(small_model, tmp_path) -> None:
    model = replace(small_model, compiled=None, optimized=False)
    quick = compile_booster(model.booster, tmp_path)
    assert quick is not None and model.use_compiled(quick, golden_rows(model))
    optimizer = TreeOptimizer(tmp_path, after_s=0.5)
    optimizer.start()
    optimizer.offer(model)
    del model, quick  # swapped out: the Predictor holds it no more
    deadline = time.monotonic() + 30
    while optimizer.skipped == 0:
        assert time.monotonic() < deadline, "the dropped model was not skipped"
        time.sleep(0.05)
    optimizer.stop()
    optimizer.finish(10)
    assert optimizer.optimized == 0
    assert not list(tmp_path.glob("*-inlined.so"))


def test_two_processes_wanting_the_same_build_compile_it_once(small_model, tmp_path) -> None:
    """The second waits on the first's lock, then loads what it wrote (Predictors on one
    machine share --home; a thread stands in for the second process: flock is per open file)."""
    import threading

    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    compiled_log = logging.getLogger("pipeline.core.compiled")
    compiled_log.addHandler(handler)
    compiled_log.setLevel(logging.INFO)
    try:
        results: list[object] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(
                    compile_booster(small_model.booster, tmp_path, optimized=True)
                )
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        compiled_log.removeHandler(handler)
    assert len(results) == 2 and all(r is not None for r in results)
    assert sum("compiled" in line for line in logged) == 1


def test_the_predictor_offers_every_model_it_loads_to_its_optimizer(
    small_model, tmp_path, monkeypatch
) -> None:
    """The champion at start-up and every swap or challenger go through `_load`: each, on its
    quick build, waits its turn for the optimized one."""
    from pipeline.config.settings import Settings
    from pipeline.core.batching import ServingModel
    from pipeline.services import predictor as predictor_module

    model = replace(small_model, compiled=None, optimized=False)
    quick = compile_booster(model.booster, tmp_path)
    assert quick is not None and model.use_compiled(quick, golden_rows(model))
    served = ServingModel(model, "adult-income", 7)
    monkeypatch.setattr(predictor_module, "load_version", lambda settings, version: served)
    predictor = predictor_module.Predictor(Settings(home=tmp_path))
    assert predictor._load(7) is served
    _due, held = predictor.optimizer._models.get_nowait()
    assert held() is model
