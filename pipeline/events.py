"""Decoding and validating `app_messages` events: bytes in, a valid Event or a ValidationError out.

Bad input is data: every rule here produces a ValidationError naming the field, which the
Predictor forwards to the dead-letter topic. Extra fields are tolerated; the seed article's
shape (`income_bracket` inside `data`, labels ending with a dot) is accepted as is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from pipeline.errors import ValidationError
from pipeline.schema import (
    CATEGORICAL_FIELDS,
    FEATURE_FIELDS,
    LABEL_FIELD,
    LABELS,
    NUMERIC_FIELDS,
    normalize_label,
)

MAX_REQUEST_ID_CHARS: Final = 200
MAX_CATEGORY_CHARS: Final = 100
MISSING_MARKERS: Final = (None, "?", "")

# Plausible ranges: a value outside them is a broken producer, not a person.
NUMERIC_RANGES: Final = {
    "age": (0.0, 150.0),
    "fnlwgt": (0.0, 1e8),
    "capital_gain": (0.0, 1e8),
    "capital_loss": (0.0, 1e8),
    "hours_per_week": (0.0, 168.0),
}


@dataclass(frozen=True, slots=True)
class Event:
    request_id: str
    features: dict[str, Any]
    label: str | None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def decode(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    if raw is None:
        raise ValidationError("empty message (tombstone)", "value")
    if len(raw) > max_bytes:
        raise ValidationError(
            f"message of {len(raw)} bytes exceeds the limit of {max_bytes}", "value"
        )
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"not valid UTF-8 JSON: {exc}", "value") from exc
    if not isinstance(payload, dict):
        raise ValidationError(f"expected a JSON object, got {type(payload).__name__}", "value")
    return payload


def _number(name: str, value: Any) -> float:
    field = f"data.{name}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"expected a number, got {type(value).__name__}", field)
    try:
        number = float(value)
    except OverflowError as exc:  # a JSON integer with hundreds of digits
        raise ValidationError("number too large", field) from exc
    low, high = NUMERIC_RANGES[name]
    if not math.isfinite(number) or not low <= number <= high:
        raise ValidationError(f"{number!r} is outside [{low:g}, {high:g}]", field)
    return number


def _category(name: str, value: Any) -> str | None:
    """`?`, empty and null all mean missing, as in the Adult files."""
    field = f"data.{name}"
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"expected a string, got {type(value).__name__}", field)
    text = value.strip()
    if len(text) > MAX_CATEGORY_CHARS:
        raise ValidationError(
            f"{len(text)} characters exceed the limit of {MAX_CATEGORY_CHARS}", field
        )
    return None if text in MISSING_MARKERS else text


def _label(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or normalize_label(value) not in LABELS:
        raise ValidationError(f"expected one of {LABELS}, got {value!r}", f"data.{LABEL_FIELD}")
    return normalize_label(value)


def _request_id(payload: dict[str, Any]) -> str:
    value = payload.get("request_id")
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("missing or not a non-empty string", "request_id")
    if len(value) > MAX_REQUEST_ID_CHARS:
        raise ValidationError(f"longer than {MAX_REQUEST_ID_CHARS} characters", "request_id")
    return value


def validate(payload: dict[str, Any]) -> Event:
    request_id = _request_id(payload)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ValidationError("missing or not a JSON object", "data")
    missing = [name for name in FEATURE_FIELDS if name not in data]
    if missing:
        raise ValidationError(f"missing field(s) {', '.join(missing)}", f"data.{missing[0]}")
    features: dict[str, Any] = {}
    for name in NUMERIC_FIELDS:
        features[name] = _number(name, data[name])
    for name in CATEGORICAL_FIELDS:
        features[name] = _category(name, data[name])
    label = _label(data.get(LABEL_FIELD, payload.get(LABEL_FIELD)))
    return Event(request_id=request_id, features=features, label=label)


def parse_event(raw: bytes | None, max_bytes: int = 64 * 1024) -> Event:
    """The whole path from Kafka bytes to a valid Event; raises only ValidationError."""
    return validate(decode(raw, max_bytes))


def encode_event(request_id: str, data: dict[str, Any]) -> bytes:
    """The producer side of the contract, used by sample_app and the tests."""
    return json.dumps({"request_id": request_id, "data": data}, allow_nan=False).encode()
