"""Live evidence about a challenger: both models' answers on the same labelled events, the
figures that compare them, and the verdict once there is enough.

The verdict is the offline gate's (`pipeline.core.gate`): the paired test of the AUC
difference on the same rows, at the same confidence and minimum effect. Evidence is kept per
(champion, challenger) pair: a challenger measured against one champion says nothing about
the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.core.gate import GateConfig, GateDecision, decide
from pipeline.core.messages import ShadowBatch
from pipeline.core.quality import window_metrics

Pair = tuple[int, int]  # (champion version, challenger version)


@dataclass
class _Rows:
    champion: list[float] = field(default_factory=list)
    challenger: list[float] = field(default_factory=list)
    truth: list[int] = field(default_factory=list)
    agreed: int = 0


class ShadowEvidence:
    """Feed shadow records; ask for the figures and, past `min_labelled`, the verdict."""

    def __init__(self, min_labelled: int, labels: tuple[str, str], threshold: float = 0.5) -> None:
        if min_labelled < 10:
            raise ValueError(f"{min_labelled} labelled events are too few to judge a challenger")
        self.min_labelled = min_labelled
        self.threshold = threshold
        self.labels = labels  # (negative, positive): any other truth is not evidence
        self.seen = 0
        self._pairs: dict[Pair, _Rows] = {}

    def add(self, batch: ShadowBatch) -> Pair | None:
        """The pair a shadow record counts for, if any of its events carried a label."""
        self.seen += len(batch.entries)
        pair = (batch.champion_version, batch.challenger_version)
        rows = self._pairs.get(pair) or _Rows()
        before = len(rows.truth)
        for entry in batch.entries:
            if entry.truth not in self.labels:
                continue
            rows.champion.append(entry.champion)
            rows.challenger.append(entry.challenger)
            rows.truth.append(int(entry.truth == self.labels[1]))
            rows.agreed += (entry.champion >= self.threshold) == (
                entry.challenger >= self.threshold
            )
        if len(rows.truth) == before:
            return None
        self._pairs[pair] = rows
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
