"""Hyperparameter search: Hyperopt's TPE over LightGBM cross-validation with early stopping."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from hyperopt import STATUS_OK, Trials, fmin, hp, tpe

log = logging.getLogger(__name__)

BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "verbosity": -1,
    "deterministic": True,
    "force_col_wise": True,
    "bagging_freq": 1,
}

SEARCH_SPACE = {
    "learning_rate": hp.loguniform("learning_rate", np.log(0.02), np.log(0.2)),
    "num_leaves": hp.quniform("num_leaves", 8, 128, 1),
    "min_child_samples": hp.quniform("min_child_samples", 5, 200, 1),
    "feature_fraction": hp.uniform("feature_fraction", 0.4, 1.0),
    "bagging_fraction": hp.uniform("bagging_fraction", 0.5, 1.0),
    "lambda_l1": hp.loguniform("lambda_l1", np.log(1e-3), np.log(10.0)),
    "lambda_l2": hp.loguniform("lambda_l2", np.log(1e-3), np.log(10.0)),
    "cat_smooth": hp.loguniform("cat_smooth", np.log(1.0), np.log(100.0)),
    "min_data_per_group": hp.quniform("min_data_per_group", 10, 200, 1),
}
INTEGER_PARAMS = ("num_leaves", "min_child_samples", "min_data_per_group")


@dataclass(frozen=True)
class TuningConfig:
    max_evals: int = 30
    folds: int = 5
    max_rounds: int = 3000
    early_stopping_rounds: int = 100
    seed: int = 42
    num_threads: int = 2


@dataclass(frozen=True)
class TuningResult:
    params: dict[str, Any]
    num_boost_round: int
    cv_auc: float
    trials: int


def to_plain_params(sampled: dict[str, Any]) -> dict[str, Any]:
    """Hyperopt hands back numpy floats; LightGBM and MLflow want plain ints and floats."""
    return {k: round(float(v)) if k in INTEGER_PARAMS else float(v) for k, v in sampled.items()}


def full_params(sampled: dict[str, Any], config: TuningConfig) -> dict[str, Any]:
    return {
        **BASE_PARAMS,
        **to_plain_params(sampled),
        "seed": config.seed,
        "num_threads": config.num_threads,
    }


def tune(dataset: lgb.Dataset, config: TuningConfig) -> TuningResult:
    """Minimise 1 - mean CV AUC; the best trial's rounds become the final model's rounds.

    Each trial logs a progress line (trial i/n, its AUC, the best so far, elapsed time).
    """
    rounds_by_trial: dict[int, int] = {}
    best_auc = -np.inf
    started = time.monotonic()

    def objective(sampled: dict[str, Any]) -> dict[str, Any]:
        nonlocal best_auc
        history = lgb.cv(
            full_params(sampled, config),
            dataset,
            num_boost_round=config.max_rounds,
            nfold=config.folds,
            stratified=True,
            seed=config.seed,
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
        )
        aucs: list[float] = history["valid auc-mean"]  # type: ignore[assignment]
        auc = float(aucs[-1])
        trial = len(rounds_by_trial)
        rounds_by_trial[trial] = len(aucs)
        best_auc = max(best_auc, auc)
        log.info(
            "trial %d/%d: cv auc %.5f with %d rounds (best %.5f, %.0fs elapsed)",
            trial + 1,
            config.max_evals,
            auc,
            len(aucs),
            best_auc,
            time.monotonic() - started,
        )
        return {"loss": 1.0 - auc, "status": STATUS_OK, "trial": trial}

    trials = Trials()
    best = fmin(
        objective,
        SEARCH_SPACE,
        algo=tpe.suggest,
        max_evals=config.max_evals,
        trials=trials,
        rstate=np.random.default_rng(config.seed),
        show_progressbar=False,
    )
    best_trial = trials.best_trial["result"]["trial"]
    return TuningResult(
        params=full_params(best, config),
        num_boost_round=rounds_by_trial[best_trial],
        cv_auc=1.0 - float(trials.best_trial["result"]["loss"]),
        trials=len(trials.trials),
    )
