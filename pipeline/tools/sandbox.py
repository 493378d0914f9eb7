"""Registered models of their own for the benchmark and the fault suite.

Swaps, retrains and refused versions there must never move the product's `@champion`, so each
tool works on `<model name><suffix>`, which starts as a copy of the product's champion.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

import mlflow
from mlflow import MlflowClient

from pipeline.config.settings import Settings
from pipeline.core.search_space import BASE_PARAMS, DEFAULT_POINT, to_plain_params
from pipeline.core.training import evaluate, fit_fixed
from pipeline.core.tuning import TuningConfig
from pipeline.registry import tracking
from pipeline.services.first_model import train_first_model
from pipeline.services.hot_swap import load_champion

log = logging.getLogger(__name__)


def sandbox_champion(settings: Settings, data: Any, suffix: str) -> int:
    """A copy of the product's `@champion` (the model really served), else a small new model.

    `settings.model_name` is the sandbox's name: the product's name plus `suffix`.
    """
    tracking.connect(settings)
    product = replace(settings, model_name=settings.model_name.removesuffix(suffix))
    if tracking.champion_version(product) is not None:
        model = load_champion(product).model
        with mlflow.start_run(run_name=f"copy-of-champion{suffix}"):
            version = tracking.log_model_version(settings, model, data.test.head(50)).version
    else:
        log.warning(
            "no @champion in %s: training a small model for %s", settings.mlflow_uri, suffix
        )
        from pipeline.registry.train_job import run_training

        config = TuningConfig(max_evals=3, folds=3, num_threads=settings.threads)
        result = run_training(settings, data.train, data.test, config, run_name=f"model{suffix}")
        version = result.registered.version
    tracking.set_champion(settings, version, by="sandbox", reason=f"copy for {suffix}")
    return version


# A deliberately modest model (a sample of the data, one short trial): what the demo starts from
# and what the benchmark's retrain replaces, so that the gate has something real to beat.
MODEST_ROWS = 2000
MODEST_TUNING = TuningConfig(max_evals=1, folds=2, max_rounds=80, early_stopping_rounds=20)


def modest_champion(settings: Settings, data: Any, by: str) -> int:
    sample = data.train.sample(MODEST_ROWS, random_state=settings.seed)
    config = replace(MODEST_TUNING, seed=settings.seed, num_threads=settings.threads)
    log.info("a modest @champion for %s (%d rows, 1 trial)", settings.model_name, MODEST_ROWS)
    return train_first_model(
        settings, sample, data.test, config, f"{by}-modest-start", by
    ).registered.version


def register_copy(settings: Settings, data: Any, run_name: str, **log_options: Any) -> int:
    """Another version of the serving model: what a swap costs, not what a new model costs."""
    serving = load_champion(settings)
    with mlflow.start_run(run_name=run_name):
        return tracking.log_model_version(
            settings, serving.model, data.test.head(50), **log_options
        ).version


RECIPE_TAG = "bench.recipe"


def fixed_champion(settings: Settings, data: Any, trees: int) -> int:
    """`@champion` of `settings.model_name` is a model of exactly `trees` trees, made from
    fixed parameters and seed on the Adult training file: trained the first time, found by its
    recipe afterwards. A benchmark figure then names a model anyone can make again, not one
    whose size depends on where Hyperopt stopped."""
    params = {
        **BASE_PARAMS,
        **to_plain_params(DEFAULT_POINT),
        "seed": settings.seed,
        "num_threads": settings.threads,
    }
    fingerprint = settings.pipeline_spec.schema.fingerprint  # a recipe is for one spec's events
    recipe = hashlib.sha256(
        json.dumps([params, trees, fingerprint], sort_keys=True).encode()
    ).hexdigest()[:16]
    tracking.connect(settings)
    made = _made_from(settings.model_name, recipe)
    if made is not None:
        if made != tracking.champion_version(settings):  # a swap test moved it to a copy
            tracking.set_champion(settings, made, by="bench", reason=f"fixed {trees}-tree recipe")
        return made
    client = MlflowClient()
    log.info("training the benchmark's %d-tree model %s (fixed recipe)", trees, settings.model_name)
    model = fit_fixed(data.train, params, trees, settings.pipeline_spec.schema)
    with mlflow.start_run(run_name=f"bench-model-{trees}-trees"):
        mlflow.log_params({**params, "trees": trees})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in evaluate(model, data.test).items()})
        version = tracking.log_model_version(settings, model, data.test.head(50)).version
    client.set_model_version_tag(settings.model_name, str(version), RECIPE_TAG, recipe)
    tracking.set_champion(settings, version, by="bench", reason=f"fixed {trees}-tree recipe")
    return version


def _made_from(name: str, recipe: str) -> int | None:
    """The newest version of `name` made from `recipe`, if any."""
    found = [
        int(v.version)
        for v in MlflowClient().search_model_versions(f"name = '{name}'")
        if (v.tags or {}).get(RECIPE_TAG) == recipe
    ]
    return max(found, default=None)
