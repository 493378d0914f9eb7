"""Every message the pipeline writes, spelled once: predictions, dead letters, retrain traffic.

Only plain JSON is read from or written to Kafka; nothing is ever unpickled or executed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

import msgspec

from pipeline.core.schema import Schema

RETRAIN_REQUEST: Final = "retrain_request"
TRAINING_STARTED: Final = "training_started"
MODEL_READY: Final = "model_ready"
TRAINING_FAILED: Final = "training_failed"
HEARTBEAT: Final = "heartbeat"

# Why a retrain was asked for; the Trainer records it in MLflow.
REASON_COUNT: Final = "count"
REASON_BY_HAND: Final = "by_hand"
REASON_DRIFT: Final = "drift"  # a feature's live windows stayed away from the training profile
REASON_QUALITY: Final = "quality"  # the online AUC fell below the version's holdout AUC

# Dead-letter headers: why the event was refused and where it came from.
_ENCODER = msgspec.json.Encoder()  # hot path: several times faster than json.dumps

DLQ_REASON: Final = "dlq.reason"
DLQ_FIELD: Final = "dlq.field"
DLQ_TOPIC: Final = "dlq.source.topic"
DLQ_PARTITION: Final = "dlq.source.partition"
DLQ_OFFSET: Final = "dlq.source.offset"
DLQ_INSTANCE: Final = "dlq.instance"
# Set when the original bytes had to be cut to fit the DLQ topic: their size before the cut.
DLQ_TRUNCATED: Final = "dlq.truncated"


def now_ms() -> int:
    return int(time.time() * 1000)


def to_json(message: Any) -> bytes:
    return json.dumps(
        asdict(message) if hasattr(message, "__dataclass_fields__") else message,
        separators=(",", ":"),
        allow_nan=False,
    ).encode()


class _Source(msgspec.Struct):
    topic: str
    partition: int
    offset: int


class _Prediction(msgspec.Struct):
    """The prediction contract's fields in its order; a struct encodes faster than a dict."""

    request_id: str
    probability: float
    label: str
    model_name: str
    model_version: int
    scored_at_ms: int
    source: _Source


def prediction_record(
    request_id: str,
    probability: float,
    label: str,
    model_name: str,
    model_version: int,
    topic: str,
    partition: int,
    offset: int,
    scored_at_ms: int,
) -> bytes:
    """Runs once per event on the hot path."""
    source = _Source(topic, partition, offset)
    return _ENCODER.encode(
        _Prediction(request_id, probability, label, model_name, model_version, scored_at_ms, source)
    )


class Sourced(Protocol):
    """Where an event came from: a Kafka record's fields."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


def prediction_records(
    request_ids: Sequence[str],
    probabilities: Sequence[float],
    labels: Sequence[str],
    model: tuple[str, int],
    sources: Sequence[Sourced],
    scored_at_ms: int,
) -> list[bytes]:
    """`prediction_record` for a micro-batch in one encoder call: JSON escapes every line
    break inside a value, so the encoded lines split back into one record per event."""
    name, version = model
    predictions = [
        _Prediction(
            request_id,
            probability,
            label,
            name,
            version,
            scored_at_ms,
            _Source(source.topic, source.partition, source.offset),
        )
        for request_id, probability, label, source in zip(
            request_ids, probabilities, labels, sources, strict=True
        )
    ]
    return _ENCODER.encode_lines(predictions).split(b"\n")[:-1]


@dataclass(frozen=True)
class ShadowEntry:
    """One event both models scored: the champion's and the challenger's probability, and the
    event's own label if it came with one."""

    request_id: str
    champion: float
    challenger: float
    truth: str | None
    partition: int
    offset: int


@dataclass(frozen=True)
class ShadowBatch:
    """On the shadow topic only: the events of one micro-batch (at most `SHADOW_ENTRIES`) that
    both models scored. One record per batch, not per event: a Kafka send per event would
    double the Predictor's publishing work for data that no request waits for."""

    model_name: str
    champion_version: int
    challenger_version: int
    threshold: float
    topic: str  # the input topic the events came from
    scored_at_ms: int
    entries: list[ShadowEntry]


SHADOW_ENTRIES: Final = 1000  # per record: about 100 KB, well under Kafka's 1 MB default


def shadow_record(batch: ShadowBatch) -> bytes:
    return _ENCODER.encode(
        {
            "type": "shadow",
            "model_name": batch.model_name,
            "champion_version": batch.champion_version,
            "challenger_version": batch.challenger_version,
            "threshold": batch.threshold,
            "topic": batch.topic,
            "scored_at_ms": batch.scored_at_ms,
            # Lists by hand, not dataclasses.asdict (which deep-copies): [request id, champion,
            # challenger, truth, partition, offset] per event.
            "entries": [
                [e.request_id, e.champion, e.challenger, e.truth, e.partition, e.offset]
                for e in batch.entries
            ],
        }
    )


def parse_shadow(raw: bytes | None) -> ShadowBatch:
    payload = _parse(raw)
    try:
        entries = [
            ShadowEntry(
                str(r), float(c), float(x), t if isinstance(t, str) else None, int(p), int(o)
            )
            for r, c, x, t, p, o in payload["entries"]
        ]
        return ShadowBatch(
            model_name=str(payload["model_name"]),
            champion_version=int(payload["champion_version"]),
            challenger_version=int(payload["challenger_version"]),
            threshold=float(payload["threshold"]),
            topic=str(payload["topic"]),
            scored_at_ms=int(payload["scored_at_ms"]),
            entries=entries,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"not a shadow record: {exc}") from exc


def dlq_headers(
    reason: str, field: str | None, topic: str, partition: int, offset: int, instance_id: str
) -> list[tuple[str, bytes]]:
    return [
        (DLQ_REASON, reason.encode()[:2000]),
        (DLQ_FIELD, (field or "").encode()),
        (DLQ_TOPIC, topic.encode()),
        (DLQ_PARTITION, str(partition).encode()),
        (DLQ_OFFSET, str(offset).encode()),
        (DLQ_INSTANCE, instance_id.encode()),
    ]


@dataclass(frozen=True)
class RetrainRequest:
    instance_id: str
    topic: str
    end_offsets: dict[str, int]  # partition -> first offset NOT covered
    labelled_events: int
    requested_at_ms: int = field(default_factory=now_ms)
    # Lets a restarted Trainer find the version it already registered for this request.
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    reason: str = REASON_COUNT
    type: str = RETRAIN_REQUEST


@dataclass(frozen=True)
class TrainingStarted:
    requests: int
    end_offsets: dict[str, int]
    started_at_ms: int = field(default_factory=now_ms)
    type: str = TRAINING_STARTED


@dataclass(frozen=True)
class ModelReady:
    model_name: str
    version: int
    uri: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float]
    promoted: bool
    requests: int
    end_offsets: dict[str, int]
    announced_at_ms: int = field(default_factory=now_ms)
    request_ids: list[str] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)
    type: str = MODEL_READY


@dataclass(frozen=True)
class TrainingFailed:
    reason: str
    requests: int
    failed_at_ms: int = field(default_factory=now_ms)
    request_ids: list[str] = field(default_factory=list)
    type: str = TRAINING_FAILED


@dataclass(frozen=True)
class Heartbeat:
    """What one Predictor tells `ops status`, keyed by instance on a compacted topic."""

    instance: str
    model_name: str
    version: int
    partitions: list[int]
    lag: int
    sent_at_ms: int = field(default_factory=now_ms)
    type: str = HEARTBEAT


class MessageError(ValueError):
    """A message on the retrain topic that is not one of ours; readers log and skip it."""


def _parse(raw: bytes | None) -> dict[str, Any]:
    try:
        payload = json.loads(raw or b"")
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(f"not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MessageError("not a JSON object")
    return payload


def _offsets(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise MessageError("end_offsets is not an object")
    try:
        return {str(int(k)): int(v) for k, v in value.items()}
    except (TypeError, ValueError) as exc:
        raise MessageError(f"bad end_offsets: {exc}") from exc


def _request_id(payload: dict[str, Any]) -> str:
    """Requests from before ids existed get one derived from their content, so a replay of the
    same bytes still maps to the same id."""
    given = payload.get("request_id")
    if given:
        return str(given)[:100]
    return uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(payload, sort_keys=True)).hex


def label_record(request_id: str, label: str) -> bytes:
    """A late label, keyed by request id on the labels topic."""
    return json.dumps({"request_id": request_id, "label": label}).encode()


def parse_label(raw: bytes | None, schema: Schema) -> tuple[str, int]:
    """(request id, 1 for the positive class) from a labels-topic record."""
    payload = _parse(raw)
    request_id, label = payload.get("request_id"), payload.get("label")
    if not isinstance(request_id, str) or not request_id or not isinstance(label, str):
        raise MessageError("a label needs a request_id and a label")
    normalized = schema.normalize_label(label)
    if normalized not in schema.labels:
        raise MessageError(f"label {label!r}: expected one of {', '.join(schema.labels)}")
    return request_id[:200], int(normalized == schema.positive_label)


def parse_heartbeat(raw: bytes | None) -> Heartbeat:
    payload = _parse(raw)
    try:
        return Heartbeat(
            instance=str(payload["instance"]),
            model_name=str(payload["model_name"]),
            version=int(payload["version"]),
            partitions=[int(p) for p in payload["partitions"]],
            lag=int(payload["lag"]),
            sent_at_ms=int(payload["sent_at_ms"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"malformed heartbeat: {exc!r}") from exc


def parse_retrain_message(
    raw: bytes | None,
) -> RetrainRequest | TrainingStarted | ModelReady | TrainingFailed:
    payload = _parse(raw)
    kind = payload.get("type")
    try:
        if kind == RETRAIN_REQUEST:
            return RetrainRequest(
                instance_id=str(payload["instance_id"]),
                topic=str(payload["topic"]),
                end_offsets=_offsets(payload["end_offsets"]),
                labelled_events=int(payload["labelled_events"]),
                requested_at_ms=int(payload.get("requested_at_ms", 0)),
                request_id=_request_id(payload),
                reason=str(payload.get("reason", REASON_COUNT))[:100],
            )
        if kind == MODEL_READY:
            return ModelReady(
                model_name=str(payload["model_name"]),
                version=int(payload["version"]),
                uri=str(payload.get("uri", "")),
                metrics=dict(payload.get("metrics", {})),
                champion_metrics=dict(payload.get("champion_metrics", {})),
                promoted=bool(payload["promoted"]),
                requests=int(payload.get("requests", 0)),
                end_offsets=_offsets(payload.get("end_offsets", {})),
                announced_at_ms=int(payload.get("announced_at_ms", 0)),
                request_ids=[str(r) for r in payload.get("request_ids", [])],
                gate=dict(payload.get("gate", {})),
            )
        if kind == TRAINING_STARTED:
            return TrainingStarted(
                requests=int(payload["requests"]),
                end_offsets=_offsets(payload.get("end_offsets", {})),
            )
        if kind == TRAINING_FAILED:
            return TrainingFailed(
                reason=str(payload["reason"]),
                requests=int(payload["requests"]),
                request_ids=[str(r) for r in payload.get("request_ids", [])],
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"malformed {kind}: {exc!r}") from exc
    raise MessageError(f"unknown message type {kind!r}")
