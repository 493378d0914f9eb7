"""Decoding and validating `app_messages` events: bytes in, a valid Event or a ValidationError out.

Bad input is data: every rule here produces a ValidationError naming the field, which the
Predictor forwards to the dead-letter topic. Extra fields are tolerated; the seed article's
shape (`income_bracket` inside `data`, labels ending with a dot) is accepted as is.

Decoding and type/range checks are msgspec's (typed JSON decoding in C, about ten times faster
than json.loads plus checks in Python, and it is on the hot path of every event).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec

from pipeline.core.schema import FEATURE_FIELDS, LABEL_FIELD, LABELS, normalize_label
from pipeline.errors import ValidationError

MAX_REQUEST_ID_CHARS: Final = 200
MAX_CATEGORY_CHARS: Final = 100
MISSING_MARKERS: Final = frozenset({"?", ""})

# Plausible ranges: a value outside them is a broken producer, not a person.
Age = Annotated[float, msgspec.Meta(ge=0.0, le=150.0)]
Amount = Annotated[float, msgspec.Meta(ge=0.0, le=1e8)]
Hours = Annotated[float, msgspec.Meta(ge=0.0, le=168.0)]
Category = Annotated[str, msgspec.Meta(max_length=MAX_CATEGORY_CHARS)] | None


class EventData(msgspec.Struct):
    """Field order is FEATURE_FIELDS' order, so a struct's tuple is the feature row."""

    age: Age
    workclass: Category
    fnlwgt: Amount
    education: Category
    marital_status: Category
    occupation: Category
    relationship: Category
    race: Category
    gender: Category
    capital_gain: Amount
    capital_loss: Amount
    hours_per_week: Hours
    native_country: Category
    income_bracket: str | None = None


class EventMessage(msgspec.Struct):
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REQUEST_ID_CHARS)]
    data: EventData
    income_bracket: str | None = None  # some producers put the label beside `data`


assert tuple(EventData.__struct_fields__[: len(FEATURE_FIELDS)]) == FEATURE_FIELDS
_DECODER = msgspec.json.Decoder(EventMessage)
_FEATURES = len(FEATURE_FIELDS)


@dataclass(frozen=True, slots=True)
class Event:
    request_id: str
    values: tuple[Any, ...]  # in FEATURE_FIELDS order
    label: str | None

    @property
    def features(self) -> dict[str, Any]:
        return dict(zip(FEATURE_FIELDS, self.values, strict=True))


def _clean(value: Any) -> Any:
    """`?`, empty and null mean missing, as in the Adult files; stray spaces are dropped."""
    if value.__class__ is not str:
        return value
    if value and value[0] != " " and value[-1] != " ":
        return None if value == "?" else value
    value = value.strip()
    return None if value in MISSING_MARKERS else value


def _label(value: str | None) -> str | None:
    if value is None:
        return None
    label = normalize_label(value)
    if label not in LABELS:
        raise ValidationError(f"expected one of {LABELS}, got {value!r}", f"data.{LABEL_FIELD}")
    return label


def _translate(exc: msgspec.MsgspecError) -> ValidationError:
    """msgspec says `... - at `$.data.age``; the DLQ wants the field and the reason apart."""
    message = str(exc)
    if not isinstance(exc, msgspec.ValidationError):  # a ValidationError is a DecodeError too
        return ValidationError(f"not valid UTF-8 JSON: {message}", "value")
    reason, _, where = message.partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    if reason.startswith("Object missing required field `"):
        name = reason.split("`")[1]
        return ValidationError(f"missing field {name}", f"{path}.{name}" if path else name)
    return ValidationError(reason, path or "value")


def parse_event(raw: bytes | None, max_bytes: int = 64 * 1024) -> Event:
    """The whole path from Kafka bytes to a valid Event; raises only ValidationError."""
    if raw is None:
        raise ValidationError("empty message (tombstone)", "value")
    if len(raw) > max_bytes:
        raise ValidationError(
            f"message of {len(raw)} bytes exceeds the limit of {max_bytes}", "value"
        )
    try:
        message = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _translate(exc) from exc
    if not message.request_id.strip():
        raise ValidationError("blank", "request_id")
    values = tuple(map(_clean, msgspec.structs.astuple(message.data)[:_FEATURES]))
    label = _label(message.data.income_bracket or message.income_bracket)
    return Event(request_id=message.request_id, values=values, label=label)


def encode_event(request_id: str, data: dict[str, Any]) -> bytes:
    """The producer side of the contract, used by sample_app and the tests."""
    return json.dumps({"request_id": request_id, "data": data}, allow_nan=False).encode()
