"""One micro-batch: raw events in, prediction records and dead letters out. No Kafka here.

Every event is validated on its own (a bad one never spoils its neighbours), then the valid
ones are scored with ONE predict call, which is what makes micro-batching fast.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np

from pipeline.core.events import Event, EventDecoder, ParsedBatch
from pipeline.core.features import FeatureBuilder
from pipeline.core.messages import Sourced, dlq_headers, now_ms, prediction_records
from pipeline.core.scoring import ScoringModel
from pipeline.core.shadow import in_shadow, shadow_outputs

log = logging.getLogger(__name__)


class InputRecord(Sourced, Protocol):
    """The fields of a Kafka ConsumerRecord this module reads."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class Output(msgspec.Struct, frozen=True):
    """A record to send. A msgspec struct: one is made per event, at a tenth of a dataclass's
    cost."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


@dataclass
class BatchResult:
    predictions: list[Output] = field(default_factory=list)
    dead_letters: list[Output] = field(default_factory=list)
    labelled: int = 0
    # For live monitoring: the probability and the truth (1 if the event's own label is
    # positive) of each labelled event, as arrays (quality windows are numpy all the way), and
    # the scored events as columns (drift windows count them).
    outcome_proba: np.ndarray = field(default_factory=lambda: np.empty(0))
    outcome_truth: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int8))
    columns: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # (request id, probability) of the events scored without a label: a late label may join.
    unlabelled: list[tuple[str, float]] = field(default_factory=list)
    # The challenger's answers for the events in its shadow: for the shadow topic only.
    shadow: list[Output] = field(default_factory=list)


@dataclass(frozen=True)
class ServingModel:
    """What the hot path needs to know about the model in use."""

    model: ScoringModel
    name: str
    version: int


def columns_of(events: Sequence[Event], fields: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """Events as columns, the shape the model scores: one tuple of values per feature."""
    return dict(zip(fields, zip(*(event.values for event in events), strict=True), strict=True))


def score_batch(
    records: Sequence[InputRecord],
    serving: ServingModel,
    decoder: EventDecoder,
    instance_id: str,
    challenger: ServingModel | None = None,
    shadow_fraction: float = 0.0,
) -> BatchResult:
    """`challenger`: also scores the events `in_shadow` picks, in this same batch."""
    result = BatchResult()
    batch = decoder.parse_batch([record.value for record in records])
    for at, exc in batch.refused:
        record = records[at]
        headers = dlq_headers(
            exc.reason, exc.field, record.topic, record.partition, record.offset, instance_id
        )
        result.dead_letters.append(Output(record.key, record.value, headers))
    if not batch.kept:
        return result
    scored = records if len(batch.kept) == len(records) else [records[at] for at in batch.kept]
    result.columns = batch.columns
    matrix = serving.model.features.transform(result.columns)
    scores = serving.model.predict_matrix(matrix)
    probabilities = scores.tolist()
    threshold = serving.model.threshold
    negative, positive = serving.model.identity.labels
    scored_at = now_ms()
    values = prediction_records(
        batch.request_ids,
        probabilities,
        [positive if probability >= threshold else negative for probability in probabilities],
        (serving.name, serving.version),
        scored,
        scored_at,
    )
    result.predictions = list(map(Output, map(str.encode, batch.request_ids), values))
    _outcomes(result, batch, scores, probabilities, positive)
    if challenger is not None and shadow_fraction > 0:
        result.shadow = _shadow(
            (batch, scored),
            matrix,
            scores,
            (serving, challenger),
            shadow_fraction,
            scored_at,
        )
    return result


def _outcomes(
    result: BatchResult,
    batch: ParsedBatch,
    scores: np.ndarray,
    probabilities: list[float],
    positive: str,
) -> None:
    """What live monitoring needs: the labelled events' probabilities and truths as arrays,
    and the unlabelled ones by request id (a late label may join)."""
    labels = batch.labels
    labelled_at = [at for at, label in enumerate(labels) if label is not None]
    if labelled_at:
        result.outcome_proba = scores[labelled_at]
        truth = [labels[at] == positive for at in labelled_at]
        result.outcome_truth = np.array(truth, dtype=np.int8)
    result.labelled = len(labelled_at)
    if len(labelled_at) < len(labels):
        result.unlabelled = [
            (request_id, probability)
            for request_id, probability, label in zip(
                batch.request_ids, probabilities, labels, strict=True
            )
            if label is None
        ]


_SAME_FEATURES: dict[tuple[int, int], tuple[FeatureBuilder, FeatureBuilder, bool]] = {}


def same_features(mine: FeatureBuilder, theirs: FeatureBuilder) -> bool:
    """Whether two models build the same matrix from the same events (same vocabularies and
    crosses: a retrain on much the same data). Compared once per pair of models, not per batch."""
    key = (id(mine), id(theirs))
    known = _SAME_FEATURES.get(key)
    if known is None or known[0] is not mine or known[1] is not theirs:
        if len(_SAME_FEATURES) > 16:  # models come and go; a handful are ever live at once
            _SAME_FEATURES.clear()
        known = _SAME_FEATURES[key] = (mine, theirs, mine is theirs or mine == theirs)
    return known[2]


def _shadow(
    events: tuple[ParsedBatch, Sequence[InputRecord]],
    matrix: np.ndarray,
    scores: np.ndarray,
    models: tuple[ServingModel, ServingModel],
    fraction: float,
    scored_at: int,
) -> list[Output]:
    """The challenger scores its share of the valid events with one predict call of its own;
    a challenger that cannot score them costs the shadow, never the batch. `events`: the
    batch and the records of its valid events."""
    batch, records = events
    ids = batch.request_ids
    picked = [at for at, request_id in enumerate(ids) if in_shadow(request_id, fraction)]
    if not picked:
        return []
    champion, challenger = models
    everyone = len(picked) == len(ids)
    try:
        if same_features(champion.model.features, challenger.model.features):
            theirs = challenger.model.predict_matrix(matrix if everyone else matrix[picked])
        else:
            columns = batch.columns
            if not everyone:
                columns = {
                    name: tuple(map(values.__getitem__, picked)) for name, values in columns.items()
                }
            theirs = challenger.model.predict_proba(columns)
    except Exception:  # a broken challenger must not stop the champion scoring
        log.exception("the challenger (version %d) failed to score", challenger.version)
        return []
    about = [
        (ids[at], batch.labels[at], (record.topic, record.partition, record.offset))
        for at, record in ((at, records[at]) for at in picked)
    ]
    outputs = shadow_outputs(
        about,
        champion.name,
        (champion.version, challenger.version),
        (scores[picked], theirs),
        champion.model.threshold,
        scored_at,
    )
    return [Output(key, value) for key, value in outputs]
