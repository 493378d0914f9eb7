"""What a model must pass before it may serve: made for these events, finite scores on known rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.core.schema import Schema
from pipeline.core.scoring import ScoringModel
from pipeline.errors import ModelError


def check_spec(model: ScoringModel, schema: Schema) -> None:
    """A model trained for another spec reads other fields or names other classes."""
    identity = model.identity
    if identity.fingerprint == schema.fingerprint:
        return
    fields = set(model.features.input_fields)
    expected = set(schema.feature_fields)
    detail = (
        f"missing {sorted(expected - fields)}, extra {sorted(fields - expected)}"
        if fields != expected
        else f"labels {identity.labels} on {identity.label_field!r}, expected {schema.labels} "
        f"on {schema.label_field!r}, or other field kinds, ranges or crosses"
    )
    raise ModelError(
        f"the model was trained for another pipeline spec (schema {identity.fingerprint}, "
        f"this one's is {schema.fingerprint}): {detail}"
    )


def check_input_schema(input_names: Sequence[str] | None, schema: Schema) -> None:
    if input_names is None:
        raise ModelError("the model has no input signature")
    if sorted(input_names) != sorted(schema.feature_fields):
        missing = sorted(set(schema.feature_fields) - set(input_names))
        extra = sorted(set(input_names) - set(schema.feature_fields))
        raise ModelError(
            f"input schema does not match the events: missing {missing}, extra {extra}"
        )


def golden_rows(model: ScoringModel) -> dict[str, list[Any]]:
    """The model's own training rows and a row with every field missing."""
    golden = model.identity.golden
    return {name: [*golden.get(name, []), None] for name in model.features.input_fields}


def check_scores(model: ScoringModel) -> None:
    rows = golden_rows(model)
    count = len(next(iter(rows.values())))
    try:
        scores = model.predict_proba(rows)
    except Exception as exc:  # any failure on known-good rows disqualifies the model
        raise ModelError(f"scoring the golden sample failed: {exc}") from exc
    if scores.shape != (count,) or not np.isfinite(scores).all():
        raise ModelError(f"golden sample scores are not {count} finite values: {scores!r}")
    if ((scores < 0) | (scores > 1)).any():
        raise ModelError(f"golden sample scores are not probabilities: {scores!r}")


def check_model(model: ScoringModel, input_names: Sequence[str] | None, schema: Schema) -> None:
    check_spec(model, schema)
    check_input_schema(input_names, schema)
    check_scores(model)
