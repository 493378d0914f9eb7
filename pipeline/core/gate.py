"""The promotion gate: a candidate replaces the champion only with evidence, never by tolerance.

A tolerance ("promote if AUC >= champion - 0.002") lets a slightly worse model through, and the
next retrain measures itself against that worse model: the losses compound and the champion
drifts down. The gate instead asks two things of the candidate, both on the same holdout rows:

1. the one-sided lower confidence bound of (candidate AUC - champion AUC) is above 0, from a
   paired test (`pipeline.core.paired_auc`), so the gain is unlikely to be noise;
2. the observed gain is at least `min_effect`, so a statistically sure but useless gain does not
   churn models through every Predictor.

Anything else, ties included, keeps the champion. The default test is DeLong's: closed-form
paired variance, deterministic, O(n log n), milliseconds on a holdout of thousands of rows;
the seeded paired bootstrap is available (`method="bootstrap"`) when one wants no normal
approximation at all.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from pipeline.core import paired_auc

log = logging.getLogger(__name__)

Method = Literal["delong", "bootstrap"]
NO_CHAMPION = "promoted: no champion yet"


@dataclass(frozen=True)
class GateConfig:
    """What counts as evidence; `seed` and `resamples` only matter for the bootstrap."""

    confidence: float = 0.95
    min_effect: float = 0.001
    method: Method = "delong"
    resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"gate confidence {self.confidence} must be in [0.5, 1)")
        if self.min_effect < 0:
            raise ValueError(f"gate min_effect {self.min_effect} must be >= 0")
        if self.method not in ("delong", "bootstrap"):
            raise ValueError(f"unknown gate method {self.method!r}")


@dataclass(frozen=True)
class GateDecision:
    """The verdict and the numbers behind it, ready to log and to announce."""

    promoted: bool
    candidate_auc: float
    champion_auc: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float
    min_effect: float
    method: str
    n_rows: int
    reason: str

    def as_tags(self) -> dict[str, str]:
        """String tags for the run: the verdict, how it was reached, and why."""
        return {
            "gate.promoted": str(self.promoted).lower(),
            "gate.method": self.method,
            "gate.reason": self.reason,
        }

    def as_metrics(self) -> dict[str, float]:
        """Numeric facts for the run; undefined ones (no champion) are left out, not NaN."""
        values = {k: v for k, v in asdict(self).items() if k not in ("method", "reason")}
        names = {"difference": "auc_difference", "promoted": "promoted"}
        return {
            f"gate.{names.get(k, k)}": float(v)
            for k, v in values.items()
            if math.isfinite(float(v))
        }


def decide(
    labels: np.ndarray,
    candidate_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    config: GateConfig | None = None,
) -> GateDecision:
    """Promote the candidate only if it beats the champion on these rows with evidence.

    `champion_scores` None means there is no champion yet: the candidate is promoted.
    """
    config = config or GateConfig()
    if champion_scores is None:
        return no_champion(labels, candidate_scores, config)
    stats = _paired_test(labels, candidate_scores, champion_scores, config)
    promoted = stats.ci_low > 0 and stats.difference >= config.min_effect
    decision = GateDecision(
        promoted=promoted,
        candidate_auc=stats.candidate_auc,
        champion_auc=stats.champion_auc,
        difference=stats.difference,
        ci_low=stats.ci_low,
        ci_high=stats.ci_high,
        p_value=stats.p_value,
        confidence=config.confidence,
        min_effect=config.min_effect,
        method=config.method,
        n_rows=len(labels),
        reason=_reason(promoted, stats, config),
    )
    log.info("gate: %s (p=%.4f, %d rows)", decision.reason, decision.p_value, decision.n_rows)
    return decision


def no_champion(
    labels: np.ndarray, candidate_scores: np.ndarray, config: GateConfig | None = None
) -> GateDecision:
    """The first model has nothing to beat; its AUC is still recorded."""
    config = config or GateConfig()
    y, a, _ = paired_auc.check_inputs(labels, candidate_scores, candidate_scores)
    auc = paired_auc.delong(y, a, a, config.confidence).candidate_auc
    nan = float("nan")
    return GateDecision(
        promoted=True,
        candidate_auc=auc,
        champion_auc=nan,
        difference=nan,
        ci_low=nan,
        ci_high=nan,
        p_value=nan,
        confidence=config.confidence,
        min_effect=config.min_effect,
        method=config.method,
        n_rows=len(y),
        reason=NO_CHAMPION,
    )


def _paired_test(
    labels: np.ndarray, candidate: np.ndarray, champion: np.ndarray, config: GateConfig
) -> paired_auc.PairedAuc:
    if config.method == "bootstrap":
        return paired_auc.bootstrap(
            labels, candidate, champion, config.confidence, config.resamples, config.seed
        )
    return paired_auc.delong(labels, candidate, champion, config.confidence)


def _reason(promoted: bool, stats: paired_auc.PairedAuc, config: GateConfig) -> str:
    """One sentence an operator can read in a log line or the MLflow UI."""
    level = f"{config.confidence:.0%} lower bound {stats.ci_low:+.4f}"
    gain = f"{stats.difference:+.4f} AUC"
    if promoted:
        return f"promoted: {gain}, {level} > 0, gain >= {config.min_effect:.4f}"
    if stats.ci_low <= 0:
        return f"kept the champion: {gain}, {level} <= 0"
    return f"kept the champion: {gain} < minimum effect {config.min_effect:.4f} ({level} > 0)"
