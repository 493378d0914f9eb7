"""From a labelled frame to a fitted ScoringModel and its metrics; no Kafka, no MLflow."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from pipeline.core.drift import reference_profile
from pipeline.core.features import FeatureBuilder
from pipeline.core.schema import Schema
from pipeline.core.scoring import ModelIdentity, ScoringModel
from pipeline.core.search_space import BINNING
from pipeline.core.tuning import TuningConfig, TuningResult, tune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedModel:
    model: ScoringModel
    tuning: TuningResult


GOLDEN_ROWS = 3  # training rows a model keeps to prove, when loaded, that it still scores


def labels_of(frame: pd.DataFrame, label_field: str, positive: str) -> np.ndarray:
    return (frame[label_field] == positive).to_numpy(dtype=np.int32)


def make_dataset(features: FeatureBuilder, frame: pd.DataFrame, schema: Schema) -> lgb.Dataset:
    return lgb.Dataset(
        features.transform(frame),
        label=labels_of(frame, schema.label_field, schema.positive_label),
        feature_name=features.feature_names,
        categorical_feature=features.categorical_features,
        free_raw_data=False,
        # Tuning varies min_child_samples; a pre-filtered dataset would pin it to the first value.
        params={"feature_pre_filter": False, **BINNING},
    )


def feature_params(features: FeatureBuilder) -> dict[str, Any]:
    """LightGBM parameters that follow from the features: the trees never split on the crosses.

    The seed article's crossed columns stay in the matrix, so every registered model, old or
    new, reads the same preprocessing; but on Adult they overfit, the trees find the
    interactions themselves: 5-fold CV log loss 0.2739 without them, 0.2756 with them as
    numeric codes and worse as native categoricals (same parameters). `feature_contri` 0
    zeroes their split gain, so no tree uses them.
    """
    plain = set(features.input_fields)
    weights = ("1" if name in plain else "0" for name in features.feature_names)
    return {"feature_contri": ",".join(weights)}  # one string: MLflow logs it as it is


def train_model(
    frame: pd.DataFrame,
    config: TuningConfig,
    schema: Schema,
    warm_start: Mapping[str, float] | None = None,
) -> TrainedModel:
    """Tune on cross-validation, then fit once on all rows with exactly the tuned parameters.

    `warm_start`: parameters to try first (the champion's, for a retrain); see `tune`.
    """
    features = FeatureBuilder.for_schema(schema).fit(frame)
    dataset = make_dataset(features, frame, schema)
    result = tune(dataset, config, warm_start, feature_params(features))
    log.info(
        "best cv log loss %.5f, auc %.5f after %d trials; fitting %d rounds",
        result.cv_log_loss,
        result.cv_auc,
        result.trials,
        result.num_boost_round,
    )
    model = _fit(frame, features, dataset, result.params, result.num_boost_round, schema)
    return TrainedModel(model=model, tuning=result)


def fit_fixed(
    frame: pd.DataFrame, params: Mapping[str, Any], trees: int, schema: Schema
) -> ScoringModel:
    """Exactly `trees` rounds of the given parameters, no tuning and no early stop: a model
    whose size and content depend on nothing else (what a benchmark scores with)."""
    features = FeatureBuilder.for_schema(schema).fit(frame)
    fixed = {**params, **feature_params(features)}
    return _fit(frame, features, make_dataset(features, frame, schema), fixed, trees, schema)


def _fit(
    frame: pd.DataFrame,
    features: FeatureBuilder,
    dataset: lgb.Dataset,
    params: Mapping[str, Any],
    rounds: int,
    schema: Schema,
) -> ScoringModel:
    booster = lgb.train(dict(params), dataset, num_boost_round=rounds)
    profile = reference_profile(frame, schema.field_kinds)
    golden = frame[list(schema.feature_fields)].head(GOLDEN_ROWS).astype(object)
    identity = ModelIdentity(
        schema.fingerprint,
        schema.label_field,
        schema.labels,
        {name: [None if pd.isna(v) else v for v in golden[name]] for name in golden},
    )
    return ScoringModel(features=features, booster=booster, profile=profile, identity=identity)


def evaluate(model: ScoringModel, frame: pd.DataFrame) -> dict[str, float]:
    truth = labels_of(frame, model.identity.label_field, model.identity.labels[1])
    proba = model.predict_proba(frame)
    return {
        "auc": float(roc_auc_score(truth, proba)),
        "accuracy": float(accuracy_score(truth, proba >= model.threshold)),
        "log_loss": float(log_loss(truth, np.clip(proba, 1e-15, 1 - 1e-15))),
        "rows": float(len(frame)),
    }
