"""The benchmark's delivery figures come from the output topic and count request ids, so a
duplicate can never stand in for a missing answer."""

from __future__ import annotations

import json

import pytest

from pipeline.config.settings import Settings
from pipeline.kafka_io.admin import ensure_topics
from pipeline.tools.bench.workloads import output_ledger, read_predictions

from .conftest import produce


@pytest.fixture
def answered(kafka_bootstrap, unique) -> Settings:
    """A predictions topic where a and b are answered twice each, c once, d never."""
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        input_topic=f"in-{unique}",
        predictions_topic=f"out-{unique}",
        dlq_topic=f"dlq-{unique}",
        retrain_topic=f"retrain-{unique}",
        heartbeat_topic=f"beats-{unique}",
        input_partitions=2,
    )
    ensure_topics(settings.bootstrap_servers, settings.topic_specs())
    predictions = [
        (rid, json.dumps({"request_id": rid, "scored_at_ms": 1000 + i}).encode())
        for i, rid in enumerate(["a", "b", "c", "a", "b"])
    ]
    produce(settings, predictions, topic=settings.predictions_topic)
    return settings


def test_throughput_counts_unique_ids_not_records(answered: Settings) -> None:
    first, repeats = read_predictions(answered, count=5, timeout_s=3)
    assert sorted(first) == ["a", "b", "c"] and repeats == 2  # 5 records, 3 events answered


def test_the_swap_ledger_counts_each_id_on_the_output_topic(answered: Settings) -> None:
    answers = output_ledger(answered, ["a", "c", "d"], timeout_s=30)
    assert answers == {"a": 2, "c": 1, "d": 0}  # d lost, a duplicated; b is not ours
