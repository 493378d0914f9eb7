import json
import time
from dataclasses import dataclass

import pytest
from kafka import TopicPartition

from pipeline.config.settings import parse_settings, settings_to_argv
from pipeline.core.batching import ServingModel, score_batch
from pipeline.core.data import holdout_of
from pipeline.core.datasets import build_retrain_dataset, merge_end_offsets
from pipeline.core.events import EventDecoder, encode_event
from pipeline.core.messages import (
    MessageError,
    ModelReady,
    RetrainRequest,
    now_ms,
    parse_retrain_message,
    prediction_record,
    prediction_records,
    to_json,
)
from pipeline.core.model_checks import check_input_schema
from pipeline.core.stream_stats import StreamStats
from pipeline.core.training import train_model
from pipeline.core.tuning import TuningConfig
from pipeline.errors import ModelError
from pipeline.services.hot_swap import ModelSlot
from pipeline.services.offsets import next_offsets
from pipeline.tools.sample_stream import event_rows


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@pytest.fixture(scope="module")
def serving(adult, schema) -> ServingModel:
    config = TuningConfig(max_evals=1, folds=2, max_rounds=50, early_stopping_rounds=10)
    return ServingModel(train_model(adult.train.head(3000), config, schema).model, "m", 7)


@pytest.fixture(scope="module")
def decoder(schema) -> EventDecoder:
    return EventDecoder(schema, 65536)


def test_a_batch_scores_valid_events_once_and_letters_the_rest(
    serving, decoder, adult, schema
) -> None:
    rows = event_rows(adult.test.head(5), schema)
    records = [
        Record("in", 0, i, f"r{i}".encode(), encode_event(f"r{i}", row))
        for i, row in enumerate(rows)
    ]
    records.insert(2, Record("in", 1, 9, b"bad", b"{oops"))
    result = score_batch(records, serving, decoder, "me")
    assert [o.key for o in result.predictions] == [f"r{i}".encode() for i in range(5)]
    assert result.labelled == 5
    first = json.loads(result.predictions[0].value)
    assert first["model_version"] == 7 and first["source"] == {
        "topic": "in",
        "partition": 0,
        "offset": 0,
    }
    assert 0.0 <= first["probability"] <= 1.0 and first["label"] in ("<=50K", ">50K")
    [letter] = result.dead_letters
    headers = dict(letter.headers)
    assert letter.value == b"{oops" and headers["dlq.source.offset"] == b"9"
    assert headers["dlq.field"] == b"value"


def test_scores_do_not_depend_on_the_batch_around_them(serving, decoder, adult, schema) -> None:
    rows = event_rows(adult.test.head(50), schema)
    records = [Record("in", 0, i, None, encode_event(f"r{i}", row)) for i, row in enumerate(rows)]
    together = [
        json.loads(o.value)["probability"]
        for o in score_batch(records, serving, decoder, "x").predictions
    ]
    alone = [
        json.loads(score_batch([r], serving, decoder, "x").predictions[0].value)["probability"]
        for r in records
    ]
    assert together == alone


def test_commit_offsets_are_one_past_the_last_record_per_partition() -> None:
    polled = {
        TopicPartition("t", 0): [Record("t", 0, 5, None, None), Record("t", 0, 6, None, None)],
        TopicPartition("t", 1): [Record("t", 1, 2, None, None)],
        TopicPartition("t", 2): [],
    }
    offsets = {tp.partition: meta.offset for tp, meta in next_offsets(polled).items()}
    assert offsets == {0: 7, 1: 3}


def test_model_slot_swaps_only_when_asked(serving) -> None:
    slot = ModelSlot(serving)
    assert not slot.swap_if_pending()
    slot.offer(ServingModel(serving.model, "m", 8))
    assert slot.current.version == 7
    assert slot.swap_if_pending() and slot.current.version == 8
    assert not slot.swap_if_pending()


def test_retrain_messages_round_trip_and_garbage_is_refused() -> None:
    request = RetrainRequest("p1", "in", {"0": 10}, 5)
    assert parse_retrain_message(to_json(request)) == request
    ready = ModelReady("m", 3, "models:/m/3", {"auc": 0.9}, {}, True, 2, {"0": 1})
    assert parse_retrain_message(to_json(ready)) == ready
    for garbage in (b"", b"[]", b'{"type": "model_ready"}', b'{"type": "launch_missiles"}'):
        with pytest.raises(MessageError):
            parse_retrain_message(garbage)


def test_merged_requests_keep_the_furthest_offset_per_partition() -> None:
    assert merge_end_offsets([{"0": 5, "1": 9}, {"0": 7}]) == {"0": 7, "1": 9}


def test_retrain_dataset_drops_duplicates_unlabelled_and_holdout_rows(
    adult, adult_spec, schema, decoder
) -> None:
    assert adult_spec.data.holdout_every == 2
    holdout = holdout_of(adult.test, adult_spec.data.holdout_every)
    assert holdout.equals(adult.holdout)
    rows = event_rows(adult.test.head(10), schema)
    events = [decoder.parse(encode_event(f"r{i}", row)) for i, row in enumerate(rows)]
    events.append(events[1])  # the same request id again
    unlabelled = {k: v for k, v in rows[3].items() if k != "income_bracket"}
    events.append(decoder.parse(encode_event("no-label", unlabelled)))
    dataset = build_retrain_dataset(adult.train, events, holdout, schema, {"0": [0, 12]})
    lineage = dataset.lineage
    assert lineage["duplicate_request_ids_dropped"] == 1
    assert lineage["holdout_overlap_dropped"] == 5  # rows 0, 2, 4, 6, 8 belong to the holdout
    assert lineage["event_rows_added"] == 5
    assert len(dataset.frame) == len(adult.train) + 5
    again = build_retrain_dataset(adult.train, events, holdout, schema, {"0": [0, 12]})
    assert again.lineage["dataset_sha256"] == lineage["dataset_sha256"]


def test_stream_stats_count_missing_duplicates_and_accuracy() -> None:
    stats = StreamStats()
    for rid in ("a", "b", "c"):
        stats.sent(rid, ">50K", 0.0)
    stats.received("a", ">50K", 1, 0.01)
    stats.received("a", ">50K", 1, 0.02)
    stats.received("b", "<=50K", 2, 0.03)
    stats.received("stranger", ">50K", 1, 0.03)
    summary = stats.summary()
    assert (summary["missing"], summary["duplicates"], summary["predictions"]) == (1, 1, 3)
    assert summary["model_versions"] == [1, 2] and summary["accuracy"] == 0.5


def test_stream_stats_split_latency_at_the_scoring_stamp() -> None:
    stats = StreamStats()
    stats.sent("a", None, 0.0)
    sent_ms = stats.sent_wall_ms["a"]
    stats.received("a", ">50K", 1, 0.010, scored_at_ms=sent_ms + 4.0)
    stats.received("a", ">50K", 1, 0.020, scored_at_ms=sent_ms + 9.0)  # a duplicate: ignored
    assert stats.to_scored_ms == [4.0] and stats.latencies_ms == [10.0]


def test_a_hop_within_one_millisecond_never_reads_below_zero(monkeypatch) -> None:
    """The Predictor stamps whole milliseconds; a send at 0.7 ms into a millisecond and an
    answer 0.2 ms later carry the same stamp."""
    clock = iter([1_000.0007, 1_000.0009])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    stats = StreamStats()
    stats.sent("a", None, 0.0)
    stats.received("a", ">50K", 1, 0.003, scored_at_ms=now_ms())
    assert stats.to_scored_ms == [0]


def test_settings_hand_over_to_another_script_unchanged() -> None:
    argv = ["--exactly-once", "--instance-id", "p-1", "--batch-size", "7"]
    settings = parse_settings("predictor", "", argv, env={})
    again = parse_settings("predictor", "", settings_to_argv(settings, "predictor"), env={})
    assert again.exactly_once and again.batch_size == 7
    assert again == settings


def test_a_schema_that_does_not_match_the_events_is_refused(schema) -> None:
    with pytest.raises(ModelError, match="missing"):
        check_input_schema(["age"], schema)
    with pytest.raises(ModelError, match="no input signature"):
        check_input_schema(None, schema)


def test_a_batch_of_prediction_records_is_each_record_as_encoded_alone() -> None:
    """One encoder call for a batch, split by line: ids with line breaks, quotes and
    non-ASCII text still come back one record per event, each as `prediction_record` says."""
    ids = ["r1", "a\nb", 'q"\r\n', "é\u2028x", ""]
    sources = [Record("in", i, 10 + i, None, None) for i in range(len(ids))]
    probabilities = [0.0, 0.25, 1.0, 1e-17, 0.5]
    labels = ["<=50K", "<=50K", ">50K", "<=50K", ">50K"]
    batch = prediction_records(ids, probabilities, labels, ("m", 3), sources, 123)
    alone = [
        prediction_record(i, p, label, "m", 3, s.topic, s.partition, s.offset, 123)
        for i, p, label, s in zip(ids, probabilities, labels, sources, strict=True)
    ]
    assert batch == alone
    assert [json.loads(value)["request_id"] for value in batch] == ids
    assert prediction_records([], [], [], ("m", 3), [], 123) == []
