"""The events' fields and label as one value, built from a pipeline spec and passed down.

Validation, features, data loading, retraining datasets and the model checks all read the
schema they are given: nothing in the package spells a field of any one data set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Kind = Literal["numeric", "categorical"]
KINDS: tuple[str, ...] = ("numeric", "categorical")
# The event envelope's own keys: a field may not take them.
ENVELOPE_KEYS = frozenset({"request_id", "data"})


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = True
    minimum: float | None = None  # numeric only
    maximum: float | None = None  # numeric only
    max_length: int = 100  # categorical only

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "required": self.required,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "max_length": self.max_length,
        }


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...]
    label_field: str
    labels: tuple[str, str]  # (negative, positive): a prediction's label is one of these
    label_spellings: tuple[tuple[str, str], ...] = ()  # (as written, class), after strip()
    missing: frozenset[str] = frozenset({""})  # categorical values that mean missing
    crosses: tuple[tuple[str, str], ...] = ()
    _spellings: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spellings", dict(self.label_spellings))

    @cached_property
    def feature_fields(self) -> tuple[str, ...]:
        """In the events' (and the model signature's) order."""
        return tuple(f.name for f in self.fields)

    @cached_property
    def numeric_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind == "numeric")

    @cached_property
    def categorical_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind == "categorical")

    @cached_property
    def field_kinds(self) -> dict[str, str]:
        return {f.name: f.kind for f in self.fields}

    @property
    def positive_label(self) -> str:
        return self.labels[1]

    def normalize_label(self, raw: str) -> str:
        """A label as some producer writes it (`>50K.`, `1`) -> the class it means."""
        stripped = raw.strip()
        return self._spellings.get(stripped, stripped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [f.to_dict() for f in self.fields],
            "label_field": self.label_field,
            "labels": list(self.labels),
            "label_spellings": [list(pair) for pair in self.label_spellings],
            "missing": sorted(self.missing),
            "crosses": [list(pair) for pair in self.crosses],
        }

    @cached_property
    def fingerprint(self) -> str:
        """What a model depends on (not topics or data files): models with another
        fingerprint were trained for other events and must not serve these."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def missing_row(self) -> dict[str, list[Any]]:
        """One event with every field missing: a model must still give a probability."""
        return {name: [None] for name in self.feature_fields}
