"""Property-based: whatever bytes arrive, validation returns a valid Event or a ValidationError.

Four strategies of 2,500 examples each (10,000 in all): random bytes, arbitrary JSON documents,
valid events with one field replaced by anything, and deep nesting / odd unicode / huge strings.
"""

from __future__ import annotations

import json
import math
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.events import EventDecoder
from pipeline.core.spec import load_spec
from pipeline.errors import ValidationError
from tests.unit.test_events import ROW

# Module level, not fixtures: `make chaos` calls these properties as plain functions.
SCHEMA = load_spec().schema
DECODER = EventDecoder(SCHEMA, max_bytes=64 * 1024)
FIELDS = {field.name: field for field in SCHEMA.fields}

# `make chaos` runs these same properties with more examples and counts what they tried.
EXAMPLES = settings(
    max_examples=int(os.environ.get("PIPELINE_FUZZ_EXAMPLES", "2500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Tally:
    """Examples the properties have run (each once, whatever it checks): `make chaos` reports
    the count as `fuzz_cases`."""

    examples = 0


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=300)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5)
    ),
    max_leaves=30,
)


def only_valid_or_refused(raw: bytes) -> None:
    try:
        event = DECODER.parse(raw)
    except ValidationError as exc:
        assert exc.reason and exc.field
        return
    assert isinstance(event.request_id, str) and event.request_id.strip()
    assert len(event.values) == len(SCHEMA.feature_fields)
    features = DECODER.features(event)
    for name in SCHEMA.numeric_fields:
        low, high = FIELDS[name].minimum, FIELDS[name].maximum
        assert low is not None and high is not None  # every Adult number has a range
        assert isinstance(features[name], float) and math.isfinite(features[name])
        assert low <= features[name] <= high
    for name in SCHEMA.categorical_fields:
        value = features[name]
        limit = FIELDS[name].max_length
        assert value is None or (isinstance(value, str) and 0 < len(value) <= limit)
    assert event.label in (None, *SCHEMA.labels)


@EXAMPLES
@given(st.binary(max_size=2000))
def test_random_bytes(raw: bytes) -> None:
    Tally.examples += 1
    only_valid_or_refused(raw)


@EXAMPLES
@given(json_values)
def test_arbitrary_json_documents(value) -> None:
    Tally.examples += 1
    only_valid_or_refused(json.dumps(value, allow_nan=True).encode())


@EXAMPLES
@given(
    st.sampled_from([*SCHEMA.feature_fields, SCHEMA.label_field]),
    json_values,
    st.text(max_size=250),
)
def test_a_valid_event_with_one_field_replaced(field, value, request_id) -> None:
    Tally.examples += 1
    payload = {"request_id": request_id, "data": {**ROW, field: value}}
    only_valid_or_refused(json.dumps(payload, allow_nan=True).encode())


@EXAMPLES
@given(
    st.integers(1, 200_000),
    st.text(min_size=0, max_size=5000),
    st.sampled_from(SCHEMA.categorical_fields),
)
def test_deep_nesting_odd_unicode_and_huge_strings(depth, text, field) -> None:
    Tally.examples += 1
    only_valid_or_refused(b"[" * depth + b"]" * depth)
    only_valid_or_refused(
        json.dumps({"request_id": text or "r", "data": {**ROW, field: text}}).encode()
    )
    only_valid_or_refused(
        json.dumps({"request_id": "r", "data": {**ROW, field: text * 20}}).encode()
    )


ALL = [
    test_random_bytes,
    test_arbitrary_json_documents,
    test_a_valid_event_with_one_field_replaced,
    test_deep_nesting_odd_unicode_and_huge_strings,
]


def _alone(raw: bytes | None) -> object:
    try:
        return DECODER.parse(raw)
    except ValidationError as exc:
        return (exc.reason, exc.field)


labels = st.sampled_from([None, "", " ", ">50K", "<=50K.", " >50K. ", "<=50k", "maybe"])
one_event = st.one_of(
    st.none(),
    st.binary(max_size=300),
    st.builds(
        lambda request_id, inside, beside: json.dumps(
            {
                "request_id": request_id,
                "data": {**ROW, SCHEMA.label_field: inside},
                **({SCHEMA.label_field: beside} if beside is not None else {}),
            }
        ).encode(),
        st.sampled_from(["r1", "r2", " ", "", "a\nb"]) | st.text(max_size=10),
        labels,
        labels,
    ),
    st.builds(
        lambda field, value: json.dumps(
            {"request_id": "x", "data": {**ROW, field: value}}
        ).encode(),
        st.sampled_from(SCHEMA.feature_fields),
        json_values,
    ),
)


@EXAMPLES
@given(st.lists(one_event, max_size=40))
def test_a_batch_decodes_each_event_as_it_would_alone(raws: list[bytes | None]) -> None:
    """Micro-batch decoding (columns, refusals by position) agrees with each event alone: a
    bad event never spoils its neighbours, and no valid event moves to another's place."""
    batch = DECODER.parse_batch(raws)
    outcomes: dict[int, object] = {at: batch.event(i) for i, at in enumerate(batch.kept)}
    outcomes |= {at: (exc.reason, exc.field) for at, exc in batch.refused}
    assert [at for at, _ in batch.refused] == sorted(at for at, _ in batch.refused)
    assert [outcomes[at] for at in range(len(raws))] == [_alone(raw) for raw in raws]
    assert len(batch.request_ids) == len(batch.labels) == len(batch.kept)
    assert all(len(column) == len(batch.kept) for column in batch.columns.values())
