"""Hyperparameter search: Hyperopt's TPE over LightGBM cross-validation with early stopping.

Each trial is scored by its cross-validated log loss, not its AUC: the log loss rewards
probabilities that are right, which is what the Predictor publishes, and a model tuned for it
ranks as well as one tuned for AUC (measured on Adult). The AUC is still recorded per trial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from hyperopt import STATUS_OK, Trials, fmin, tpe
from hyperopt.fmin import generate_trials_to_calculate

from pipeline.core.search_space import BASE_PARAMS, SEARCH_SPACE, to_plain_params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuningConfig:
    max_evals: int = 30
    folds: int = 5
    max_rounds: int = 3000
    early_stopping_rounds: int = 50  # at a learning rate >= 0.03, 50 flat rounds is the end
    seed: int = 42
    num_threads: int = 2


@dataclass(frozen=True)
class TuningResult:
    params: dict[str, Any]
    num_boost_round: int
    cv_auc: float
    cv_log_loss: float
    trials: int
    warm_started: bool = False


def full_params(
    sampled: Mapping[str, Any], config: TuningConfig, fixed: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Base, then `fixed` (what follows from the features), then the sampled point."""
    return {
        **BASE_PARAMS,
        **(fixed or {}),
        **to_plain_params(sampled),
        "seed": config.seed,
        "num_threads": config.num_threads,
    }


def cross_validate(
    dataset: lgb.Dataset, params: Mapping[str, Any], config: TuningConfig
) -> dict[str, Any]:
    """One trial: stratified CV, stopped early on the log loss; Hyperopt's result dict."""
    history = lgb.cv(
        dict(params),
        dataset,
        num_boost_round=config.max_rounds,
        nfold=config.folds,
        stratified=True,
        seed=config.seed,
        callbacks=[
            lgb.early_stopping(config.early_stopping_rounds, first_metric_only=True, verbose=False)
        ],
    )
    losses: list[float] = history["valid binary_logloss-mean"]  # type: ignore[assignment]
    aucs: list[float] = history["valid auc-mean"]  # type: ignore[assignment]
    return {
        "loss": float(losses[-1]),
        "auc": float(aucs[-1]),
        "rounds": len(losses),
        "status": STATUS_OK,
    }


def _stop_after(budget: int) -> Callable[..., tuple[bool, list[Any]]]:
    """Hyperopt runs `max_evals` proposals on top of given points; this holds the total.

    With one trial queued at a time, the given point is evaluated first, then one TPE
    proposal per round, and the search stops once `budget` trials are done in all.
    """

    def stop(trials: Trials, *_: Any) -> tuple[bool, list[Any]]:
        done = sum(t["result"].get("status") == STATUS_OK for t in trials.trials)
        return done >= budget, []

    return stop


def tune(
    dataset: lgb.Dataset,
    config: TuningConfig,
    warm_start: Mapping[str, float] | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> TuningResult:
    """Minimise the mean CV log loss; the best trial's rounds become the final model's rounds.

    `warm_start` (a point from `warm_start_from_params`) is the first trial and counts towards
    `max_evals`, so the best result is never worse, on this CV, than those parameters.
    `fixed`: LightGBM parameters every trial shares (see `training.feature_params`). Each
    trial logs a progress line (trial i/n, its log loss and AUC, the best so far, elapsed).
    """
    started = time.monotonic()
    progress = {"done": 0, "best": np.inf}

    def objective(sampled: dict[str, Any]) -> dict[str, Any]:
        result = cross_validate(dataset, full_params(sampled, config, fixed), config)
        progress["done"] += 1
        progress["best"] = min(progress["best"], result["loss"])
        log.info(
            "trial %d/%d: cv log loss %.5f, auc %.5f with %d rounds (best %.5f, %.0fs elapsed)",
            progress["done"],
            config.max_evals,
            result["loss"],
            result["auc"],
            result["rounds"],
            progress["best"],
            time.monotonic() - started,
        )
        return result

    trials = generate_trials_to_calculate([dict(warm_start)]) if warm_start else Trials()
    best = fmin(
        objective,
        SEARCH_SPACE,
        algo=tpe.suggest,
        max_evals=config.max_evals,
        trials=trials,
        rstate=np.random.default_rng(config.seed),
        show_progressbar=False,
        max_queue_len=1,
        early_stop_fn=_stop_after(config.max_evals) if warm_start else None,
    )
    winner = trials.best_trial["result"]
    return TuningResult(
        params=full_params(best, config, fixed),
        num_boost_round=int(winner["rounds"]),
        cv_auc=float(winner["auc"]),
        cv_log_loss=float(winner["loss"]),
        trials=len(trials.trials),
        warm_started=bool(warm_start),
    )
