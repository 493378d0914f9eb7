"""Decoding and validating events: bytes in, a valid Event or a ValidationError out.

Bad input is data: every rule here produces a ValidationError naming the field, which the
Predictor forwards to the dead-letter topic. Extra fields are tolerated; the label may ride
inside `data` or beside it, spelled as the spec allows.

Decoding and type/range checks are msgspec's (typed JSON decoding in C, about ten times faster
than json.loads plus checks in Python, and it is on the hot path of every event). The typed
structs are built from the spec's schema once, at start-up, so any spec decodes at that speed.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec

from pipeline.core.schema import Field, Schema
from pipeline.errors import ValidationError

MAX_REQUEST_ID_CHARS: Final = 200
DEFAULT_MAX_BYTES: Final = 64 * 1024


def _field_type(field: Field) -> Any:
    if field.kind == "numeric":
        meta = msgspec.Meta(ge=field.minimum, le=field.maximum)
        number = Annotated[float, meta] if (field.minimum, field.maximum) != (None, None) else float
        return number if field.required else number | None
    return Annotated[str, msgspec.Meta(max_length=field.max_length)] | None


def _decoding_order(schema: Schema) -> list[Field]:
    """Numbers first, then categories: the categories that need cleaning are one slice."""
    return [f for f in schema.fields if f.kind == "numeric"] + [
        f for f in schema.fields if f.kind != "numeric"
    ]


def _structs(schema: Schema) -> type:
    """`data`'s struct lists the fields in `_decoding_order`, then the label."""
    data_fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in _decoding_order(schema):
        kind = _field_type(field)
        # A required field must be present; a required categorical may still be null (missing).
        data_fields.append((field.name, kind) if field.required else (field.name, kind, None))
    data_fields.append((schema.label_field, str | None, None))
    data = msgspec.defstruct("EventData", data_fields, kw_only=True)
    request_id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REQUEST_ID_CHARS)]
    envelope: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("request_id", request_id),
        ("data", data),
        (schema.label_field, str | None, None),
    ]
    return msgspec.defstruct("EventMessage", envelope, kw_only=True)


class Event(msgspec.Struct, frozen=True):
    """A msgspec struct, not a dataclass: one is made per event, in a tenth of the time."""

    request_id: str
    values: tuple[Any, ...]  # in the schema's feature_fields order
    label: str | None


@dataclass(frozen=True)
class ParsedBatch:
    """A micro-batch after validation: the valid events as columns (the shape the model scores),
    with their ids and labels, and the refused ones with the reason, by position in the input."""

    kept: list[int]  # the valid events' positions in the input, in order
    request_ids: list[str]
    labels: list[str | None]
    columns: dict[str, tuple[Any, ...]]  # feature -> values, in the schema's feature_fields order
    refused: list[tuple[int, ValidationError]]

    def event(self, at: int) -> Event:
        """The `at`-th valid event on its own."""
        values = tuple(column[at] for column in self.columns.values())
        return Event(self.request_ids[at], values, self.labels[at])

    def events(self) -> list[Event]:
        return [self.event(at) for at in range(len(self.kept))]


def _cleaner(missing: frozenset[str]) -> Callable[[Any], Any]:
    def clean(value: Any) -> Any:
        """Missing markers and null mean missing; stray spaces are dropped."""
        if value.__class__ is not str:
            return value
        if value and value[0] != " " and value[-1] != " ":
            return None if value in missing else value
        value = value.strip()
        return None if value in missing else value

    return clean


class _Memo(dict[Any, Any]):
    """Text -> what it means (a cleaned category, a label's class), remembered: a category is
    one of a few hundred spellings, and a dict lookup mapped in C costs a fraction of a Python
    call per value. Past `limit` spellings (a stream of unique text) it works without
    remembering."""

    def __init__(
        self, meaning: Callable[[Any], Any], known: dict[Any, Any], limit: int = 4096
    ) -> None:
        super().__init__({None: None, **known})
        self._meaning, self._limit = meaning, limit

    def __missing__(self, value: Any) -> Any:
        meant = self._meaning(value)
        if len(self) < self._limit:
            self[value] = meant
        return meant


_UNKNOWN_LABEL: Final = object()  # what `_Memo` says of a label that is no class's spelling
_data = operator.attrgetter("data")
_astuple = msgspec.structs.astuple


def _translate(exc: msgspec.MsgspecError) -> ValidationError:
    """msgspec says `... - at `$.data.age``; the DLQ wants the field and the reason apart."""
    message = str(exc)
    if not isinstance(exc, msgspec.ValidationError):  # a ValidationError is a DecodeError too
        return ValidationError(f"not valid UTF-8 JSON: {message}", "value")
    reason, _, where = message.partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    if reason.startswith("Object missing required field `"):
        name = reason.split("`")[1]
        return ValidationError(f"missing field {name}", f"{path}.{name}" if path else name)
    return ValidationError(reason, path or "value")


class EventDecoder:
    """One per running service, built from its spec's schema."""

    def __init__(self, schema: Schema, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.schema = schema
        self.max_bytes = max_bytes
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_structs(schema))
        self._order = [field.name for field in _decoding_order(schema)]
        self._numbers = sum(field.kind == "numeric" for field in schema.fields)
        self._features = len(self._order)
        self.cleaned = _Memo(_cleaner(schema.missing | {""}), {})
        self._label_field = schema.label_field
        # Every accepted spelling -> its class, looked up as sent (the hot path), else stripped.
        classes = {label: label for label in schema.labels} | dict(schema.label_spellings)
        self._classes = _Memo(lambda text: classes.get(text.strip(), _UNKNOWN_LABEL), classes)

    def parse(self, raw: bytes | None) -> Event:
        """The whole path from Kafka bytes to a valid Event; raises only ValidationError."""
        batch = self.parse_batch([raw])
        if batch.refused:
            raise batch.refused[0][1]
        return batch.event(0)

    def parse_batch(self, raws: Sequence[bytes | None]) -> ParsedBatch:
        """Each event is decoded and checked on its own (a bad one never spoils its
        neighbours); the valid ones become columns in a few passes mapped in C, not a Python
        call per event (decoding one by one was a third of `score_batch`)."""
        messages, kept, refused = self._decode_each(raws)
        request_ids = [message.request_id for message in messages]
        rows = list(map(_astuple, map(_data, messages)))
        spelled = self._spelled_labels(rows, messages)
        labels = list(map(self._classes.__getitem__, spelled))
        if not all(map(str.strip, request_ids)) or _UNKNOWN_LABEL in labels:
            keep = self._refuse_invalid(request_ids, (spelled, labels), kept, refused)
            request_ids, labels, kept = (
                [items[at] for at in keep] for items in (request_ids, labels, kept)
            )
            rows = [rows[at] for at in keep]
        return ParsedBatch(kept, request_ids, labels, self._columns(rows), refused)

    def _decode_each(
        self, raws: Sequence[bytes | None]
    ) -> tuple[list[Any], list[int], list[tuple[int, ValidationError]]]:
        decode, limit = self._decoder.decode, self.max_bytes
        messages: list[Any] = []
        kept: list[int] = []
        refused: list[tuple[int, ValidationError]] = []
        for at, raw in enumerate(raws):
            if raw is None or len(raw) > limit:
                refused.append((at, _unreadable(raw, limit)))
                continue
            try:
                messages.append(decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                error = _translate(exc)
                error.__cause__ = exc
                refused.append((at, error))
                continue
            kept.append(at)
        return messages, kept, refused

    def _spelled_labels(self, rows: list[tuple[Any, ...]], messages: list[Any]) -> list[Any]:
        """Each event's label as sent, inside `data` first, else beside it (None: unlabelled).
        `_classes` maps a spelling to its class, or to `_UNKNOWN_LABEL`."""
        n = self._features
        beside = map(operator.attrgetter(self._label_field), messages)
        return [row[n] or outside for row, outside in zip(rows, beside, strict=True)]

    def _refuse_invalid(
        self,
        request_ids: list[str],
        labels: tuple[list[Any], list[Any]],
        kept: list[int],
        refused: list[tuple[int, ValidationError]],
    ) -> list[int]:
        """The rare path: refuses blank ids and unknown labels (adding to `refused`, in input
        order) and returns the positions, among the decoded, of the events still valid.
        `labels`: (as spelled, their classes)."""
        keep = []
        for at, (request_id, spelled, label) in enumerate(zip(request_ids, *labels, strict=True)):
            if not request_id.strip():
                refused.append((kept[at], ValidationError("blank", "request_id")))
            elif label is _UNKNOWN_LABEL:
                refused.append((kept[at], self._unknown_label(spelled)))
            else:
                keep.append(at)
        refused.sort(key=operator.itemgetter(0))
        return keep

    def _unknown_label(self, spelled: str) -> ValidationError:
        return ValidationError(
            f"expected one of {self.schema.labels}, got {spelled!r}", f"data.{self._label_field}"
        )

    def _columns(self, rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        if not rows:
            return {}
        transposed = list(zip(*rows, strict=True))
        numbers, clean = self._numbers, self.cleaned.__getitem__
        by_name = dict(zip(self._order[:numbers], transposed[:numbers], strict=True))
        categories = transposed[numbers : self._features]
        for name, values in zip(self._order[numbers:], categories, strict=True):
            by_name[name] = tuple(map(clean, values))
        return {name: by_name[name] for name in self.schema.feature_fields}

    def features(self, event: Event) -> dict[str, Any]:
        return dict(zip(self.schema.feature_fields, event.values, strict=True))


def _unreadable(raw: bytes | None, limit: int) -> ValidationError:
    if raw is None:
        return ValidationError("empty message (tombstone)", "value")
    return ValidationError(f"message of {len(raw)} bytes exceeds the limit of {limit}", "value")


def encode_event(request_id: str, data: dict[str, Any]) -> bytes:
    """The producer side of the contract, used by sample_app and the tests."""
    return json.dumps({"request_id": request_id, "data": data}, allow_nan=False).encode()
