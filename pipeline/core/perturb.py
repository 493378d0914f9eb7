"""Made-up trouble for a sample stream: drifted inputs and flipped labels, to see the
monitoring react. Deterministic by event index, so a test knows exactly what it sent.

`shift`: "age=15,hours_per_week=-10" adds to numeric fields; `mix`: "occupation=Farming-fishing:0.6"
gives that value to the share of events; `flip_labels`: the share of labels turned around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.core.schema import Schema
from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Perturbation:
    shift: dict[str, float] = field(default_factory=dict)
    mix: dict[str, tuple[str, float]] = field(default_factory=dict)
    flip_labels: float = 0.0
    after: int = 0  # events sent untouched first
    label_field: str = ""
    labels: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.shift or self.mix or self.flip_labels)

    def apply(self, index: int, row: dict[str, Any]) -> dict[str, Any]:
        if index < self.after or not self.active:
            return row
        out = dict(row)
        for name, delta in self.shift.items():
            if isinstance(out.get(name), (int, float)):
                out[name] = out[name] + delta
        for name, (value, share) in self.mix.items():
            if _chosen(index, share):
                out[name] = value
        label = out.get(self.label_field)
        if label in self.labels and _chosen(index, self.flip_labels):
            out[self.label_field] = self.labels[1 - self.labels.index(label)]
        return out


def _chosen(index: int, share: float) -> bool:
    """Every event whose place in a run of 100 falls under the share (evenly spread)."""
    return (index * 37) % 100 < share * 100


def parse_perturbation(
    shift: str, mix: str, flip_labels: float, after: int, schema: Schema
) -> Perturbation:
    if not 0.0 <= flip_labels <= 1.0:
        raise ConfigError(f"--flip-labels {flip_labels}: a share between 0 and 1")
    kinds = schema.field_kinds
    return Perturbation(
        _shifts(shift, kinds),
        _mixes(mix, kinds),
        flip_labels,
        after,
        schema.label_field,
        schema.labels,
    )


def _pairs(text: str, flag: str) -> list[tuple[str, str]]:
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not value:
            raise ConfigError(f"{flag} {text!r}: expected FIELD=VALUE[,FIELD=VALUE]")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _shifts(text: str, kinds: dict[str, str]) -> dict[str, float]:
    shifts = {}
    for name, value in _pairs(text, "--shift"):
        if kinds.get(name) != "numeric":
            raise ConfigError(f"--shift {name}: not a numeric field")
        try:
            shifts[name] = float(value)
        except ValueError as exc:
            raise ConfigError(f"--shift {name}={value}: not a number") from exc
    return shifts


def _mixes(text: str, kinds: dict[str, str]) -> dict[str, tuple[str, float]]:
    mixes = {}
    for name, value in _pairs(text, "--mix"):
        if kinds.get(name) != "categorical":
            raise ConfigError(f"--mix {name}: not a categorical field")
        category, _, share_text = value.rpartition(":")
        try:
            share = float(share_text)
        except ValueError as exc:
            raise ConfigError(f"--mix {name}={value}: expected VALUE:SHARE") from exc
        if not category or not 0 < share <= 1:
            raise ConfigError(f"--mix {name}={value}: expected VALUE:SHARE with 0 < SHARE <= 1")
        mixes[name] = (category, share)
    return mixes
