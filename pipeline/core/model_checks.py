"""What a model must pass before it may serve: the right inputs, finite scores on known rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from pipeline.core.schema import FEATURE_FIELDS
from pipeline.core.scoring import ScoringModel
from pipeline.errors import ModelError

# Rows from adult.test, plus the seed article's crash case and an all-missing row.
GOLDEN_SAMPLE: Final[dict[str, list[Any]]] = {
    "age": [25.0, 38.0, 41.0, 50.0],
    "workclass": ["Private", "Private", "Private", None],
    "fnlwgt": [226802.0, 89814.0, 177989.0, 100000.0],
    "education": ["11th", "HS-grad", "Bachelors", None],
    "marital_status": ["Never-married", "Married-civ-spouse", "Married-civ-spouse", None],
    "occupation": ["Machine-op-inspct", "Farming-fishing", "Farming-fishing", None],
    "relationship": ["Own-child", "Husband", "Husband", None],
    "race": ["Black", "White", "White", None],
    "gender": ["Male", "Male", "Male", None],
    "capital_gain": [0.0, 0.0, 0.0, 0.0],
    "capital_loss": [0.0, 0.0, 0.0, 0.0],
    "hours_per_week": [40.0, 50.0, 60.0, 40.0],
    "native_country": ["United-States", "United-States", "Columbia", None],
}


def check_input_schema(input_names: Sequence[str] | None) -> None:
    if input_names is None:
        raise ModelError("the model has no input signature")
    if sorted(input_names) != sorted(FEATURE_FIELDS):
        missing = sorted(set(FEATURE_FIELDS) - set(input_names))
        extra = sorted(set(input_names) - set(FEATURE_FIELDS))
        raise ModelError(
            f"input schema does not match the events: missing {missing}, extra {extra}"
        )


def check_scores(model: ScoringModel) -> None:
    try:
        scores = model.predict_proba(GOLDEN_SAMPLE)
    except Exception as exc:  # any failure on known-good rows disqualifies the model
        raise ModelError(f"scoring the golden sample failed: {exc}") from exc
    rows = len(GOLDEN_SAMPLE["age"])
    if scores.shape != (rows,) or not np.isfinite(scores).all():
        raise ModelError(f"golden sample scores are not {rows} finite values: {scores!r}")
    if ((scores < 0) | (scores > 1)).any():
        raise ModelError(f"golden sample scores are not probabilities: {scores!r}")


def check_model(model: ScoringModel, input_names: Sequence[str] | None) -> None:
    check_input_schema(input_names)
    check_scores(model)
