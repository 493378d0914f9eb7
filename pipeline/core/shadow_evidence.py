"""Live evidence about a challenger: both models' answers on the same labelled events, the
figures that compare them, and the verdict once there is enough.

The verdict is the offline gate's (`pipeline.core.gate`): the paired test of the AUC
difference on the same rows, at the same confidence and minimum effect. Evidence is kept per
(champion, challenger) pair: a challenger measured against one champion says nothing about
the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.core.gate import GateConfig, GateDecision, decide
from pipeline.core.quality import window_metrics
from pipeline.core.schema import LABELS

Pair = tuple[int, int]  # (champion version, challenger version)


@dataclass
class _Rows:
    champion: list[float] = field(default_factory=list)
    challenger: list[float] = field(default_factory=list)
    truth: list[int] = field(default_factory=list)
    agreed: int = 0


class ShadowEvidence:
    """Feed shadow records; ask for the figures and, past `min_labelled`, the verdict."""

    def __init__(self, min_labelled: int, threshold: float = 0.5) -> None:
        if min_labelled < 10:
            raise ValueError(f"{min_labelled} labelled events are too few to judge a challenger")
        self.min_labelled = min_labelled
        self.threshold = threshold
        self.seen = 0
        self._pairs: dict[Pair, _Rows] = {}

    def add(self, record: Mapping[str, Any]) -> Pair | None:
        """The pair a labelled record counts for (None: unlabelled or malformed, skipped)."""
        self.seen += 1
        try:
            truth = record["truth"]
            pair = (int(record["champion"]["version"]), int(record["challenger"]["version"]))
            mine = float(record["champion"]["probability"])
            theirs = float(record["challenger"]["probability"])
        except (KeyError, TypeError, ValueError):
            return None
        if truth not in LABELS:
            return None
        rows = self._pairs.setdefault(pair, _Rows())
        rows.champion.append(mine)
        rows.challenger.append(theirs)
        rows.truth.append(int(truth == LABELS[1]))
        rows.agreed += (mine >= self.threshold) == (theirs >= self.threshold)
        return pair

    def labelled(self, pair: Pair) -> int:
        rows = self._pairs.get(pair)
        return len(rows.truth) if rows else 0

    def ready(self, pair: Pair) -> bool:
        """Enough labelled events, and both classes among them (else no AUC to compare)."""
        rows = self._pairs.get(pair)
        if rows is None or len(rows.truth) < self.min_labelled:
            return False
        positives = sum(rows.truth)
        return 0 < positives < len(rows.truth)

    def figures(self, pair: Pair) -> dict[str, float]:
        """Both models on the same labelled events: AUC, log loss, precision, recall and
        accuracy at the threshold, and how often their answers agree."""
        rows = self._pairs[pair]
        truth = np.asarray(rows.truth)
        out = {"labelled": float(len(truth)), "agreement": rows.agreed / max(len(truth), 1)}
        for who, proba in (("champion", rows.champion), ("challenger", rows.challenger)):
            metrics = window_metrics(truth, np.asarray(proba), self.threshold)
            out.update({f"{who}_{name}": value for name, value in metrics.items()})
        return out

    def verdict(self, pair: Pair, config: GateConfig) -> GateDecision:
        rows = self._pairs[pair]
        return decide(
            np.asarray(rows.truth),
            np.asarray(rows.challenger),
            np.asarray(rows.champion),
            config,
        )

    def forget(self, pair: Pair) -> None:
        self._pairs.pop(pair, None)
