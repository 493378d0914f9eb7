"""Paired statistics of the difference of two ROC AUCs measured on the same rows.

Two models scored on the same holdout are correlated: the rows that are hard for one are hard
for the other. Comparing their AUCs as if independent overstates the noise and hides real gains;
ignoring the noise altogether promotes luck. Both tests here keep the pairing:

- `delong`: DeLong, DeLong & Clarke-Pearson (1988), in the O(n log n) form of Sun & Xu (2014).
  The AUC is a Mann-Whitney statistic, and its per-row placement values give the covariance of
  the two AUCs in closed form. Exact for this statistic up to the normal approximation, which is
  excellent at the thousands of rows a holdout has; deterministic and takes milliseconds.
- `bootstrap`: rows resampled with replacement, the same rows for both models, seeded. Assumes
  nothing about the shape of the distribution; slower (resamples x rows) and carries Monte Carlo
  noise. Kept as the cross-check of DeLong's variance (the unit tests compare the two).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

log = logging.getLogger(__name__)

BOOTSTRAP_CHUNK = 100  # resamples per vectorised block: ~100 x rows floats at a time


@dataclass(frozen=True)
class PairedAuc:
    """AUCs of both models, their difference, its one-sided bounds and p-value."""

    candidate_auc: float
    champion_auc: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float


def check_inputs(
    labels: np.ndarray, candidate: np.ndarray, champion: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refuse what would give a meaningless AUC: unpaired rows, one class, missing scores."""
    y = np.asarray(labels).astype(bool).ravel()
    a = np.asarray(candidate, dtype=np.float64).ravel()
    b = np.asarray(champion, dtype=np.float64).ravel()
    if not len(y) == len(a) == len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(y)}, {len(a)}, {len(b)}")
    if y.all() or not y.any():
        raise ValueError("an AUC needs both positive and negative rows")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite")
    return y, a, b


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (what the Mann-Whitney AUC counts as 1/2)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def _placements(y: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC, and each positive's / negative's share of the pairs it wins (DeLong's V10, V01)."""
    pos, neg = scores[y], scores[~y]
    m, n = len(pos), len(neg)
    all_ranks = midranks(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - midranks(pos)) / n
    v01 = 1.0 - (all_ranks[m:] - midranks(neg)) / m
    return float(v10.mean()), v10, v01


def delong(
    labels: np.ndarray, candidate: np.ndarray, champion: np.ndarray, confidence: float
) -> PairedAuc:
    """DeLong's test of candidate AUC > champion AUC, one-sided at `confidence`."""
    y, a, b = check_inputs(labels, candidate, champion)
    auc_a, v10_a, v01_a = _placements(y, a)
    auc_b, v10_b, v01_b = _placements(y, b)
    # Var(A - B) = Var(V10_A - V10_B) / m + Var(V01_A - V01_B) / n, the sample covariances.
    variance = np.var(v10_a - v10_b, ddof=1) / len(v10_a) + np.var(v01_a - v01_b, ddof=1) / len(
        v01_a
    )
    difference = auc_a - auc_b
    se = float(np.sqrt(max(variance, 0.0)))
    z_crit = NormalDist().inv_cdf(confidence)
    return PairedAuc(
        candidate_auc=auc_a,
        champion_auc=auc_b,
        difference=difference,
        ci_low=difference - z_crit * se,
        ci_high=difference + z_crit * se,
        p_value=_one_sided_p(difference, se),
    )


def _one_sided_p(difference: float, se: float) -> float:
    """P(difference this large | no true gain); a zero spread decides by the sign alone."""
    if se == 0.0:
        return 0.0 if difference > 0 else 1.0
    return 1.0 - NormalDist().cdf(difference / se)


def bootstrap(
    labels: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    confidence: float,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedAuc:
    """Paired percentile bootstrap: both models are scored on the same resampled rows."""
    y, a, b = check_inputs(labels, candidate, champion)
    rng = np.random.default_rng(seed)
    diffs = np.concatenate(
        [
            _resampled_diffs(y, a, b, rng, min(BOOTSTRAP_CHUNK, resamples - start))
            for start in range(0, resamples, BOOTSTRAP_CHUNK)
        ]
    )
    diffs = diffs[np.isfinite(diffs)]  # a resample without one of the classes has no AUC
    auc_a, auc_b = _placements(y, a)[0], _placements(y, b)[0]
    return PairedAuc(
        candidate_auc=auc_a,
        champion_auc=auc_b,
        difference=auc_a - auc_b,
        ci_low=float(np.quantile(diffs, 1.0 - confidence)),
        ci_high=float(np.quantile(diffs, confidence)),
        p_value=float((1 + np.count_nonzero(diffs <= 0)) / (1 + len(diffs))),
    )


def _resampled_diffs(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, count: int
) -> np.ndarray:
    """AUC(a) - AUC(b) on `count` resamples, each drawn as row multiplicities."""
    rows = len(y)
    drawn = rng.integers(0, rows, size=(count, rows))
    offsets = (np.arange(count) * rows)[:, None]
    weights = np.bincount((drawn + offsets).ravel(), minlength=count * rows).reshape(count, rows)
    return _weighted_auc(y, a, weights) - _weighted_auc(y, b, weights)


def _weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC per row of `weights` (row multiplicities), ties counted as 1/2."""
    order = np.argsort(scores, kind="stable")
    ranked, pos = scores[order], y[order]
    w = weights[:, order].astype(np.float64)
    neg_cum = np.cumsum(np.where(pos, 0.0, w), axis=1)
    starts = np.searchsorted(ranked, ranked, side="left")  # first index of each tie group
    ends = np.searchsorted(ranked, ranked, side="right") - 1  # last index of each tie group
    zero = np.zeros((len(w), 1))
    below = np.hstack([zero, neg_cum])[:, starts]  # negatives strictly below the tie group
    tied = neg_cum[:, ends] - below
    wins = np.sum(np.where(pos, w, 0.0) * (below + 0.5 * tied), axis=1)
    n_pos = np.sum(np.where(pos, w, 0.0), axis=1)
    n_neg = neg_cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / (n_pos * n_neg)
