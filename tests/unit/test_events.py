import json

import pytest

from pipeline.core.events import EventDecoder, encode_event
from pipeline.core.spec import load_spec
from pipeline.errors import ValidationError

SCHEMA = load_spec().schema
DECODER = EventDecoder(SCHEMA)

ROW = {
    "age": 39,
    "workclass": "State-gov",
    "fnlwgt": 77516,
    "education": "Bachelors",
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "gender": "Male",
    "capital_gain": 2174,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
}


def event(**changes) -> bytes:
    return json.dumps({"request_id": "r1", "data": {**ROW, **changes}}).encode()


def test_the_seed_article_shape_is_accepted_with_its_dotted_label() -> None:
    parsed = DECODER.parse(event(income_bracket="<=50K."))
    assert parsed.request_id == "r1"
    assert parsed.label == "<=50K"
    features = DECODER.features(parsed)
    assert features["age"] == 39.0 and features["workclass"] == "State-gov"


def test_extra_fields_are_tolerated_and_missing_markers_mean_missing() -> None:
    parsed = DECODER.parse(event(extra_field={"nested": [1, 2]}, workclass="?", occupation=None))
    features = DECODER.features(parsed)
    assert features["workclass"] is None and features["occupation"] is None
    assert parsed.label is None


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (b"{nope", "value", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "value", "not valid UTF-8 JSON"),
        (b"[1, 2]", "value", "Expected `object`, got `array`"),
        (None, "value", "tombstone"),
        (json.dumps({"data": ROW}).encode(), "request_id", "missing field request_id"),
        (json.dumps({"request_id": "r", "data": [1]}).encode(), "data", "Expected `object`"),
        (event(age="39"), "data.age", "got `str`"),
        (event(age=True), "data.age", "got `bool`"),
        (event(age=-1), "data.age", ">= 0.0"),
        (event(hours_per_week=1e300), "data.hours_per_week", "<= 168.0"),
        (event(hours_per_week=float("inf")), "value", "not valid"),  # json writes Infinity
        (event(fnlwgt=10**400), "data.fnlwgt", "out of range"),
        (b'{"request_id": "r", "data": {"age": NaN}}', "value", "not valid"),
        (event(gender=7), "data.gender", "got `int`"),
        (event(education="x" * 500), "data.education", "length <= 100"),
        (event(income_bracket="rich"), "data.income_bracket", "expected one of"),
        (
            json.dumps(
                {"request_id": "r", "data": {k: v for k, v in ROW.items() if k != "race"}}
            ).encode(),
            "data.race",
            "missing field",
        ),
    ],
)
def test_invalid_events_name_the_field_and_reason(raw, field, reason) -> None:
    with pytest.raises(ValidationError) as caught:
        DECODER.parse(raw)
    assert caught.value.field == field
    if reason:
        assert reason in caught.value.reason


def test_oversized_events_are_refused_before_parsing() -> None:
    with pytest.raises(ValidationError, match="exceeds the limit"):
        EventDecoder(SCHEMA, max_bytes=1000).parse(event(padding="x" * 2000))


def test_deep_nesting_is_a_validation_error_not_a_crash() -> None:
    with pytest.raises(ValidationError):
        EventDecoder(SCHEMA, max_bytes=10**6).parse(b"[" * 100_000 + b"]" * 100_000)


def test_blank_request_ids_and_spaced_categories() -> None:
    with pytest.raises(ValidationError, match="blank"):
        DECODER.parse(json.dumps({"request_id": "  ", "data": ROW}).encode())
    parsed = DECODER.parse(event(workclass=" State-gov ", occupation="  ?  ", race=""))
    features = DECODER.features(parsed)
    assert features["workclass"] == "State-gov"
    assert features["occupation"] is None and features["race"] is None


def test_the_label_may_stand_beside_data() -> None:
    raw = json.dumps({"request_id": "r", "data": ROW, "income_bracket": ">50K"}).encode()
    assert DECODER.parse(raw).label == ">50K"


def test_encode_event_round_trips() -> None:
    assert DECODER.parse(encode_event("abc", ROW)).request_id == "abc"


def test_values_follow_the_schema_order_with_categories_cleaned_past_the_cache() -> None:
    """Categories are cleaned through a bounded memo; numbers pass as they are. Past its limit
    every spelling is still cleaned, and the values keep the schema's field order."""
    decoder = EventDecoder(SCHEMA)
    spellings = [f" Other-{i} " for i in range(5000)]  # more than the memo holds
    parsed = [
        decoder.parse(event(workclass=s, occupation=" ? ", age=i % 100))
        for i, s in enumerate(spellings)
    ]
    assert [decoder.features(p)["workclass"] for p in parsed] == [s.strip() for s in spellings]
    assert {decoder.features(p)["occupation"] for p in parsed} == {None}
    last = decoder.features(parsed[-1])
    assert list(last) == list(SCHEMA.feature_fields)
    assert last == {**ROW, "age": 99.0, "workclass": "Other-4999", "occupation": None}
    assert len(decoder.cleaned) <= 4096
