"""One tracked training: tune, fit, evaluate, log everything to MLflow, register a version.

Shared by `initialize.py` (first model) and the Trainer (retrains), so every model in the
registry is made and documented the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from pipeline.config.settings import Settings
from pipeline.core.data import source_uri
from pipeline.core.training import evaluate, labels_of, train_model
from pipeline.core.tuning import TuningConfig
from pipeline.registry import tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobResult:
    registered: tracking.RegisteredModel
    metrics: dict[str, float]
    params: dict[str, Any]
    holdout_scores: np.ndarray  # the candidate's holdout probabilities: the gate's input


def run_training(
    settings: Settings,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    config: TuningConfig,
    run_name: str,
    tags: Mapping[str, str] | None = None,
    lineage: Mapping[str, Any] | None = None,
    warm_start: Mapping[str, float] | None = None,
) -> JobResult:
    """Runs inside one MLflow run; the caller decides about promotion.

    `warm_start`: the champion's parameters as a point (`warm_start_from_params`), tried first.
    """
    started = time.monotonic()
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {})):
        spec = settings.pipeline_spec
        sources = (spec.data.train, spec.data.test or spec.data.train)
        roles = (("train", "training"), ("holdout", "evaluation"))
        for frame, source, (role, context) in zip((train, holdout), sources, roles, strict=True):
            where = source_uri(source, settings.data_folder)
            label = spec.schema.label_field
            tracking.log_dataset(frame, f"{spec.name}-{role}", where, context, label)
        tracking.log_spec(spec)
        if lineage:
            mlflow.log_dict(dict(lineage), "lineage.json")
            mlflow.log_params(
                {f"lineage.{k}": v for k, v in lineage.items() if not isinstance(v, (dict, list))}
            )
        trained = train_model(train, config, spec.schema, warm_start)
        metrics = evaluate(trained.model, holdout)
        truth = labels_of(holdout, spec.schema.label_field, spec.schema.positive_label)
        proba = trained.model.predict_proba(holdout)
        mlflow.log_params(
            {
                **trained.tuning.params,
                "num_boost_round": trained.tuning.num_boost_round,
                "max_evals": config.max_evals,
                "cv_folds": config.folds,
                "warm_started": trained.tuning.warm_started,
            }
        )
        mlflow.log_metrics(
            {f"test_{k}": v for k, v in metrics.items()}
            | {
                "cv_auc": trained.tuning.cv_auc,
                "cv_log_loss": trained.tuning.cv_log_loss,
                "train_rows": float(len(train)),
                "training_seconds": time.monotonic() - started,
            }
        )
        tracking.log_figures(trained.model, truth, proba)
        registered = tracking.log_model_version(settings, trained.model, holdout)
    log.info(
        "registered %s version %d (test auc %.4f)",
        registered.name,
        registered.version,
        metrics["auc"],
    )
    return JobResult(
        registered=registered,
        metrics=metrics,
        params=trained.tuning.params,
        holdout_scores=proba,
    )
