"""LightGBM's tuned parameters: the Hyperopt space, and points in it (warm starts).

A retrain starts from what works: the champion's parameters, read back from the MLflow run
that made it, are the first trial (`warm_start_from_params`). MLflow hands parameters back as
strings, and a run logs more than the space (base parameters, lineage, counts), so the point
is rebuilt from the space's own labels, each converted to a float; anything else is ignored.
Hyperopt evaluates a given point as-is: for `quniform` and `loguniform` labels the value
itself, for an `hp.choice` it would be the option's index (this space has none).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from hyperopt import hp

log = logging.getLogger(__name__)

# How numbers are cut into histogram bins: set where the dataset is built (`make_dataset`) and
# logged with every run, since a dataset is binned once and every trial must read it the same.
# LightGBM's default keeps at least 3 rows a bin, which merges the rare values of Adult's
# capital gains and losses (18 and 27 values have fewer than 3 rows) into their neighbours.
# One row a bin, measured as `initialize.py` trains (20 trials, 3 folds, the same seed):
# 3-fold CV log loss 0.27558 -> 0.27488, adult.test 0.27325 -> 0.27192 (AUC 0.9294 -> 0.9299).
BINNING: dict[str, Any] = {"min_data_in_bin": 1}

# Fixed for every trial; `first_metric_only` makes early stopping watch the log loss alone.
# Metrics as one string: every value stays a plain scalar that MLflow logs as it is.
BASE_PARAMS: dict[str, Any] = {
    **BINNING,
    "objective": "binary",
    "metric": "binary_logloss,auc",
    "first_metric_only": True,
    "verbosity": -1,
    "deterministic": True,
    "force_col_wise": True,
    "bagging_freq": 1,
}

# Ranges measured on Adult (5-fold CV log loss): a learning rate below 0.03 bought no better
# loss, only more trees (0.2743 at 0.025 with 736 rounds, 0.2739 at 0.052 with 358), so 0.03 is
# the floor that keeps the model fast to score. LightGBM's native categorical splits overfit
# Adult's larger vocabularies unless regularised: cat_l2, cat_smooth, max_cat_threshold and
# min_data_per_group are all searched (tuned runs settled on cat_l2 near 50, few categories
# per split group of at least ~100 rows).
SEARCH_SPACE: dict[str, Any] = {
    "learning_rate": hp.loguniform("learning_rate", np.log(0.03), np.log(0.15)),
    "num_leaves": hp.quniform("num_leaves", 8, 64, 1),
    "min_child_samples": hp.quniform("min_child_samples", 5, 150, 1),
    "feature_fraction": hp.uniform("feature_fraction", 0.25, 1.0),
    "bagging_fraction": hp.uniform("bagging_fraction", 0.6, 1.0),
    "lambda_l1": hp.loguniform("lambda_l1", np.log(1e-3), np.log(3.0)),
    "lambda_l2": hp.loguniform("lambda_l2", np.log(1e-2), np.log(30.0)),
    "cat_smooth": hp.loguniform("cat_smooth", np.log(0.5), np.log(50.0)),
    "cat_l2": hp.loguniform("cat_l2", np.log(1.0), np.log(100.0)),
    "max_cat_threshold": hp.quniform("max_cat_threshold", 4, 64, 1),
    "min_data_per_group": hp.quniform("min_data_per_group", 10, 300, 1),
}
INTEGER_PARAMS = frozenset(
    {"num_leaves", "min_child_samples", "max_cat_threshold", "min_data_per_group"}
)

# The first trial of the first model, and the value of any label a warm start lacks (a
# champion tuned before that parameter joined the space). Chosen by 5-fold CV on adult.data
# from a tuned run (0.2736 log loss, 0.9306 AUC), rounded.
DEFAULT_POINT: dict[str, float] = {
    "learning_rate": 0.05,
    "num_leaves": 20.0,
    "min_child_samples": 12.0,
    "feature_fraction": 0.4,
    "bagging_fraction": 0.83,
    "lambda_l1": 0.02,
    "lambda_l2": 0.08,
    "cat_smooth": 10.0,
    "cat_l2": 10.0,
    "max_cat_threshold": 53.0,
    "min_data_per_group": 125.0,
}


def to_plain_params(sampled: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperopt hands back numpy floats; LightGBM and MLflow want plain ints and floats."""
    return {k: round(float(v)) if k in INTEGER_PARAMS else float(v) for k, v in sampled.items()}


def warm_start_from_params(params: Mapping[str, Any]) -> dict[str, float]:
    """A Hyperopt point from logged parameters: the space's labels only, as floats.

    Values may be strings ("31", "0.05"), numbers or numpy scalars. A label that is absent or
    unreadable takes its `DEFAULT_POINT` value, so the point always covers the whole space;
    if none of the labels is readable there is nothing to start from and the result is {}.
    """
    point: dict[str, float] = {}
    for name in SEARCH_SPACE:
        value = _as_float(params.get(name))
        if value is not None:
            point[name] = float(round(value)) if name in INTEGER_PARAMS else value
    if not point:
        return {}
    missing = sorted(set(SEARCH_SPACE) - set(point))
    if missing:
        log.info("warm start has no %s; using the defaults for them", ", ".join(missing))
    return {name: point.get(name, DEFAULT_POINT[name]) for name in SEARCH_SPACE}


def _as_float(raw: Any) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        log.warning("ignored an unreadable warm-start value %r", raw)
        return None
    return value if math.isfinite(value) else None
