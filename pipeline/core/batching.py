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

from pipeline.core.events import Event, EventDecoder
from pipeline.core.features import FeatureBuilder
from pipeline.core.messages import dlq_headers, now_ms, prediction_record
from pipeline.core.scoring import ScoringModel
from pipeline.core.shadow import in_shadow, shadow_outputs
from pipeline.errors import ValidationError

log = logging.getLogger(__name__)


class InputRecord(Protocol):
    """The fields of a Kafka ConsumerRecord this module reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
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
    valid: list[tuple[Event, InputRecord]] = []
    for record in records:
        try:
            valid.append((decoder.parse(record.value), record))
        except ValidationError as exc:
            headers = dlq_headers(
                exc.reason, exc.field, record.topic, record.partition, record.offset, instance_id
            )
            result.dead_letters.append(Output(record.key, record.value, headers))
    if not valid:
        return result
    fields = decoder.schema.feature_fields
    result.columns = columns_of([e for e, _ in valid], fields)
    matrix = serving.model.features.transform(result.columns)
    scores = serving.model.predict_matrix(matrix)
    probabilities = scores.tolist()
    labelled_at: list[int] = []
    truth: list[bool] = []
    threshold = serving.model.threshold
    negative, positive = serving.model.identity.labels
    scored_at = now_ms()
    for at, ((event, record), probability) in enumerate(zip(valid, probabilities, strict=True)):
        label = positive if probability >= threshold else negative
        value = prediction_record(
            event.request_id,
            probability,
            label,
            serving.name,
            serving.version,
            record.topic,
            record.partition,
            record.offset,
            scored_at,
        )
        result.predictions.append(Output(event.request_id.encode(), value))
        if event.label is not None:
            labelled_at.append(at)
            truth.append(event.label == positive)
        else:
            result.unlabelled.append((event.request_id, probability))
    if truth:
        result.outcome_proba = scores[labelled_at]
        result.outcome_truth = np.array(truth, dtype=np.int8)
    result.labelled = len(truth)
    if challenger is not None and shadow_fraction > 0:
        result.shadow = _shadow(
            valid,
            (result.columns, matrix),
            scores,
            (serving, challenger),
            shadow_fraction,
            scored_at,
        )
    return result


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
    valid: Sequence[tuple[Event, InputRecord]],
    batch: tuple[dict[str, tuple[Any, ...]], np.ndarray],
    scores: np.ndarray,
    models: tuple[ServingModel, ServingModel],
    fraction: float,
    scored_at: int,
) -> list[Output]:
    """The challenger scores its share of the valid events with one predict call of its own;
    a challenger that cannot score them costs the shadow, never the batch."""
    picked = [i for i, (event, _) in enumerate(valid) if in_shadow(event.request_id, fraction)]
    if not picked:
        return []
    columns, matrix = batch
    champion, challenger = models
    everyone = len(picked) == len(valid)
    try:
        if same_features(champion.model.features, challenger.model.features):
            theirs = challenger.model.predict_matrix(matrix if everyone else matrix[picked])
        else:
            if not everyone:
                columns = columns_of([valid[i][0] for i in picked], list(columns))
            theirs = challenger.model.predict_proba(columns)
    except Exception:  # a broken challenger must not stop the champion scoring
        log.exception("the challenger (version %d) failed to score", challenger.version)
        return []
    about = [
        (event.request_id, event.label, (record.topic, record.partition, record.offset))
        for event, record in (valid[i] for i in picked)
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
