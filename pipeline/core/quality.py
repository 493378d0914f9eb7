"""Online model quality from live labels: rolling windows per model version, and their trend.

A holdout AUC says how a model did on last year's rows; the labels that arrive with (or after)
live events say how it does now. Every `window` labelled predictions of one version close a
window: precision, recall, AUC, log loss, accuracy and calibration over it, plus the EWMA of each
over spans of 3, 5, 10 and 20 windows, so a dip can be told from the trend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

EWMA_SPANS = (3, 5, 10, 20)
EPSILON = 1e-15


@dataclass(frozen=True)
class WindowReport:
    version: int
    index: int  # 1 for the first window of this version
    rows: int
    metrics: dict[str, float]
    ewma: dict[int, dict[str, float]]  # span -> metric -> smoothed value


def window_metrics(truth: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Calibration is the mean predicted probability minus the observed positive rate."""
    predicted = proba >= threshold
    positives = truth == 1
    tp = float(np.sum(predicted & positives))
    both_classes = 0 < positives.sum() < len(truth)
    return {
        "precision": tp / max(float(predicted.sum()), 1.0),
        "recall": tp / max(float(positives.sum()), 1.0),
        "auc": _auc(positives, proba) if both_classes else math.nan,
        "log_loss": _log_loss(positives, proba),
        "accuracy": float(np.mean(predicted == positives)),
        "calibration": float(np.mean(proba) - np.mean(truth)),
    }


def _auc(positives: np.ndarray, proba: np.ndarray) -> float:
    """Mann-Whitney: the chance a positive outscores a negative (ties count half). The same
    figure as sklearn's roc_auc_score, without its input checks, which cost 20x the sum."""
    # Average ranks (ties share theirs), as scipy's rankdata gives, at a tenth of its cost.
    _, inverse, counts = np.unique(proba, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    n_pos = float(positives.sum())
    n_neg = len(proba) - n_pos
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(positives: np.ndarray, proba: np.ndarray) -> float:
    clipped = np.clip(proba, EPSILON, 1 - EPSILON)
    return float(-np.mean(np.where(positives, np.log(clipped), np.log1p(-clipped))))


@dataclass
class _VersionState:
    """The open window as the arrays that came in; joined only when the window closes."""

    proba: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    rows: int = 0
    windows: int = 0
    ewma: dict[int, dict[str, float]] = field(default_factory=dict)


class OnlineQuality:
    """Feed (version, probabilities, labels) as labels arrive; closed windows come back."""

    def __init__(self, window: int = 1000, threshold: float = 0.5) -> None:
        if window < 10:
            raise ValueError(f"a quality window of {window} labelled events is too small")
        self.window = window
        self.threshold = threshold
        self._versions: dict[int, _VersionState] = {}

    def add(self, version: int, pairs: Iterable[tuple[float, int]]) -> list[WindowReport]:
        """(probability, label) pairs, as the late-label join completes them."""
        taken = list(pairs)
        if not taken:
            return []
        proba, truth = zip(*taken, strict=True)
        return self.add_arrays(version, np.asarray(proba, dtype=np.float64), np.asarray(truth))

    def add_arrays(self, version: int, proba: np.ndarray, truth: np.ndarray) -> list[WindowReport]:
        """Windows hold exactly `window` labelled events whatever the batch sizes."""
        state = self._versions.setdefault(version, _VersionState())
        reports = []
        while proba.size:
            room = self.window - state.rows
            state.proba.append(proba[:room])
            state.truth.append(truth[:room])
            state.rows += min(room, proba.size)
            proba, truth = proba[room:], truth[room:]
            if state.rows >= self.window:
                reports.append(self._close(version, state))
        return reports

    def _close(self, version: int, state: _VersionState) -> WindowReport:
        truth, proba = np.concatenate(state.truth), np.concatenate(state.proba)
        state.truth, state.proba, state.rows = [], [], 0
        state.windows += 1
        metrics = window_metrics(truth, proba, self.threshold)
        for span in EWMA_SPANS:
            alpha = 2.0 / (span + 1.0)
            previous = state.ewma.setdefault(span, {})
            for name, value in metrics.items():
                if math.isnan(value):
                    continue
                old = previous.get(name)
                previous[name] = value if old is None else alpha * value + (1 - alpha) * old
        return WindowReport(
            version=version,
            index=state.windows,
            rows=len(truth),
            metrics=metrics,
            ewma={span: dict(values) for span, values in state.ewma.items()},
        )


def decayed(report: WindowReport, holdout_auc: float, max_drop: float) -> bool:
    """The live AUC of a window fell more than `max_drop` below the version's holdout AUC."""
    auc = report.metrics.get("auc", math.nan)
    return not math.isnan(auc) and auc < holdout_auc - max_drop
