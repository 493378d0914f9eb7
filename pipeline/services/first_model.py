"""A first champion: trained, loaded back as a Predictor would, tagged, and given the alias.

`initialize.py` makes the product's first model with it; the demo makes a deliberately modest
one (a small sample of the data) so that its retrains have something the gate can see them beat.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from pipeline.config.settings import Settings
from pipeline.core.data import holdout_of
from pipeline.core.training import evaluate
from pipeline.core.tuning import TuningConfig
from pipeline.registry import artifacts, lifecycle, tracking
from pipeline.registry.train_job import JobResult, run_training

log = logging.getLogger(__name__)


def train_first_model(
    settings: Settings,
    train: pd.DataFrame,
    test: pd.DataFrame,
    config: TuningConfig,
    run_name: str,
    by: str,
    warm_start: Mapping[str, float] | None = None,
) -> JobResult:
    tracking.connect(settings)
    result = run_training(
        settings,
        train,
        test,
        config,
        run_name=run_name,
        tags={"pipeline.stage": by},
        warm_start=warm_start,
    )
    version = result.registered.version
    # Tagged on the Trainer's holdout rows so that the gate and `ops status` compare every
    # version on the same rows; `test` (the spec's test rows) stays the figure users are told.
    model = artifacts.load_scoring_model(
        settings.model_name, version, settings.pipeline_spec.schema
    )
    holdout = evaluate(model, holdout_of(test, settings.pipeline_spec.data.holdout_every))
    lifecycle.annotate_version(
        settings,
        version,
        {
            **{f"holdout.{k}": f"{v:.6g}" for k, v in holdout.items()},
            lifecycle.PROMOTED_TAG: "true",
            "gate.reason": f"promoted: a first model ({by})",
        },
        f"first model ({by}): holdout AUC {holdout['auc']:.4f}, "
        f"test AUC {result.metrics['auc']:.4f}",
    )
    tracking.set_champion(settings, version, by=by, reason="first model")
    return result
