"""Input drift: live windows of events against the training data's profile, per feature.

At training, every feature gets a reference profile: quantile bins for numbers (so each bin
holds a similar share of the training rows), frequencies of the most common values for
categories, and a slot for missing values. Live windows are counted into the same bins and
compared with Jensen-Shannon distance (base 2, in [0, 1]) and the population stability index;
0.1 is the usual alarm level for both on large references (Evidently, NannyML).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MISSING = "__missing__"
OTHER = "__other__"
SMOOTHING = 1e-6  # empty bins would make PSI infinite
MIN_CATEGORY_SHARE = 0.01


@dataclass(frozen=True)
class FeatureProfile:
    name: str
    kind: str  # "numeric" or "categorical"
    edges: tuple[float, ...] = ()  # numeric: inner bin edges
    categories: tuple[str, ...] = ()  # categorical: the values with their own bin
    shares: tuple[float, ...] = ()  # reference share per bin, missing last

    def bin_counts(self, values: Sequence[Any]) -> np.ndarray:
        if self.kind == "numeric":
            return _numeric_counts(values, self.edges)
        return _categorical_counts(values, self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "edges": list(self.edges),
            "categories": list(self.categories),
            "shares": list(self.shares),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> FeatureProfile:
        return cls(
            name=str(payload["name"]),
            kind=str(payload["kind"]),
            edges=tuple(float(e) for e in payload.get("edges", [])),
            categories=tuple(str(c) for c in payload.get("categories", [])),
            shares=tuple(float(s) for s in payload["shares"]),
        )


def _numeric_counts(values: Sequence[Any], edges: Sequence[float]) -> np.ndarray:
    try:  # validated events hold numbers or None, which numpy reads as NaN
        numbers = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(
            dtype=np.float64
        )
    missing = np.isnan(numbers)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges), numbers[~missing], side="right"),
        minlength=len(edges) + 1,
    ).astype(np.float64)
    return np.append(counts, float(missing.sum()))


@functools.lru_cache(maxsize=256)
def _category_index(categories: tuple[str, ...]) -> dict[str, int]:
    return {value: i for i, value in enumerate(categories)}


def _categorical_counts(values: Sequence[Any], categories: tuple[str, ...]) -> np.ndarray:
    """..., other, missing. Counter tallies in C; only the few distinct values meet Python."""
    index = _category_index(categories)
    counts = np.zeros(len(categories) + 2)
    for value, n in Counter(values).items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            counts[-1] += n
        else:
            counts[index.get(str(value), len(categories))] += n
    return counts


def profile_feature(name: str, kind: str, values: pd.Series, bins: int = 10) -> FeatureProfile:
    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        quantiles = np.unique(np.quantile(numbers, np.linspace(0, 1, bins + 1)[1:-1]))
        profile = FeatureProfile(name, kind, edges=tuple(float(q) for q in quantiles))
    else:
        # Rare values share the `other` bin: a bin of its own that holds 0.1 % of the rows is
        # all sampling noise in a live window of a thousand events, and reads as drift.
        shares = values.dropna().astype(str).value_counts(normalize=True)
        common = shares[shares >= MIN_CATEGORY_SHARE].head(bins * 3)
        profile = FeatureProfile(name, kind, categories=tuple(common.index))
    counts = profile.bin_counts(list(values))
    shares = counts / max(counts.sum(), 1.0)
    return FeatureProfile(
        name, kind, profile.edges, profile.categories, tuple(float(s) for s in shares)
    )


def reference_profile(
    frame: pd.DataFrame, kinds: Mapping[str, str], bins: int = 10
) -> dict[str, FeatureProfile]:
    return {name: profile_feature(name, kind, frame[name], bins) for name, kind in kinds.items()}


def js_distance(reference: np.ndarray, live: np.ndarray) -> float:
    p, q = _normalised(reference), _normalised(live)
    m = 0.5 * (p + q)
    divergence = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    return float(math.sqrt(max(divergence, 0.0)))


def psi(reference: np.ndarray, live: np.ndarray) -> float:
    p, q = _normalised(reference), _normalised(live)
    return float(np.sum((q - p) * np.log(q / p)))


def distances(reference: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    """Jensen-Shannon distance and PSI in one pass: a window closes 13 features at once, and
    numpy's per-call overhead, not the arithmetic, is what it costs."""
    p, q = _normalised(reference), _normalised(live)
    m = 0.5 * (p + q)
    log_p, log_q, log_m = np.log(p), np.log(q), np.log(m)
    divergence = 0.5 * float(np.dot(p, log_p - log_m) + np.dot(q, log_q - log_m)) / math.log(2)
    return math.sqrt(max(divergence, 0.0)), float(np.dot(q - p, log_q - log_p))


def _normalised(counts: np.ndarray) -> np.ndarray:
    smoothed = np.asarray(counts, dtype=np.float64) + SMOOTHING
    return smoothed / smoothed.sum()


@dataclass
class DriftMonitor:
    """Windows of `window` events; a feature alarms after `patience` windows over threshold."""

    profiles: Mapping[str, FeatureProfile]
    window: int = 1000
    threshold: float = 0.1
    patience: int = 3
    _buffer: dict[str, list[Any]] = field(default_factory=dict)
    _seen: int = 0
    over: dict[str, int] = field(default_factory=dict)  # consecutive windows over threshold

    def add(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, float]] | None:
        """Each feature's figures for the last window this call closed, else None. Windows hold
        exactly `window` events, whatever the batch sizes, so their noise is the same."""
        rows = max((len(v) for v in columns.values()), default=0)
        for name in self.profiles:
            self._buffer.setdefault(name, []).extend(columns.get(name, [None] * rows))
        self._seen += rows
        figures = None
        while self._seen >= self.window:
            figures = self._close_window()
        return figures

    def _close_window(self) -> dict[str, dict[str, float]]:
        figures = {}
        for name, profile in self.profiles.items():
            values, self._buffer[name] = (
                self._buffer[name][: self.window],
                self._buffer[name][self.window :],
            )
            live = profile.bin_counts(values)
            reference = np.asarray(profile.shares)
            js, stability = distances(reference, live)
            figures[name] = {"js": js, "psi": stability}
            over = figures[name]["js"] > self.threshold or figures[name]["psi"] > self.threshold
            self.over[name] = self.over.get(name, 0) + 1 if over else 0
        self._seen -= self.window
        return figures

    def alarms(self) -> list[str]:
        return sorted(name for name, count in self.over.items() if count >= self.patience)
