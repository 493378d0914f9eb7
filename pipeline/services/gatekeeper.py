"""The Trainer's side of the gate: score both models on the holdout, ask the core for a verdict.

The statistics live in `pipeline.core.gate` (pure, unit-tested on synthetic scores); here the
candidate and the champion are scored on the same rows and the verdict is shaped for the
registry's tags, the run's metrics and the announcement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.config.settings import Settings
from pipeline.core.gate import GateConfig, GateDecision
from pipeline.core.gate import decide as gate_decide
from pipeline.core.scoring import ScoringModel
from pipeline.core.training import evaluate, labels_of
from pipeline.registry.lifecycle import PROMOTED_TAG


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    gate: GateDecision | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def refused(cls, reason: str) -> Decision:
        return cls(promoted=False, reason=reason)

    def tags(self) -> dict[str, str]:
        tags = dict(self.gate.as_tags()) if self.gate else {"gate.reason": self.reason}
        tags["gate.reason"] = self.reason[:4000]
        tags[PROMOTED_TAG] = str(self.promoted).lower()
        if "version" in self.champion_metrics:
            tags["gate.champion_version"] = str(int(self.champion_metrics["version"]))
        return tags

    def metrics(self) -> dict[str, float]:
        metrics = dict(self.gate.as_metrics()) if self.gate else {"gate.promoted": 0.0}
        metrics.update({f"champion_{k}": v for k, v in self.champion_metrics.items()})
        return metrics

    def summary(self) -> dict[str, Any]:
        """What the announcement carries: finite numbers only (JSON has no NaN)."""
        out: dict[str, Any] = {"promoted": self.promoted, "reason": self.reason}
        for key, value in self.metrics().items():
            if math.isfinite(value):
                out[key] = value
        return out


def gate_config(settings: Settings) -> GateConfig:
    return GateConfig(
        confidence=settings.gate_confidence, min_effect=settings.gate_min_effect, seed=settings.seed
    )


def decide(
    settings: Settings,
    candidate: ScoringModel,
    champion: tuple[int, ScoringModel] | None,
    holdout: pd.DataFrame,
) -> Decision:
    schema = settings.pipeline_spec.schema
    truth = labels_of(holdout, schema.label_field, schema.positive_label)
    candidate_scores = candidate.predict_proba(holdout)
    if champion is None:
        verdict = gate_decide(truth, candidate_scores, None, gate_config(settings))
        return Decision(verdict.promoted, verdict.reason, verdict)
    version, model = champion
    verdict = gate_decide(
        truth, candidate_scores, model.predict_proba(holdout), gate_config(settings)
    )
    champion_metrics = {**evaluate(model, holdout), "version": float(version)}
    return Decision(verdict.promoted, verdict.reason, verdict, champion_metrics)
