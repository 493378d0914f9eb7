"""Events for the live-loop tests, built the way a producer would send them."""

from __future__ import annotations

import json

from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.core.events import encode_event
from pipeline.core.messages import ModelReady, to_json
from pipeline.core.spec import load_spec
from pipeline.tools.sample_stream import event_rows

SCHEMA = load_spec().schema  # the default spec: Adult


def make_events(adult, count: int, prefix: str, start: int = 0) -> list[tuple[str, bytes]]:
    rows = event_rows(adult.test.iloc[start : start + count], SCHEMA)
    return [
        (f"{prefix}-{start + i}", encode_event(f"{prefix}-{start + i}", row))
        for i, row in enumerate(rows)
    ]


def model_ready(name: str, version: int, promoted: bool = True) -> bytes:
    return to_json(ModelReady(name, version, f"models:/{name}/{version}", {}, {}, promoted, 1, {}))


def retrain_request(settings: Settings, request_id: str) -> bytes:
    """A retrain request by hand, as raw JSON on the wire (what `ops retrain` sends)."""
    return json.dumps(
        {
            "type": "retrain_request",
            "request_id": request_id,
            "instance_id": "t",
            "topic": settings.input_topic,
            "end_offsets": {},
            "labelled_events": 0,
            "reason": "by_hand",
        }
    ).encode()


def log_ends(settings: Settings) -> dict[str, int]:
    """Where an honest retrain request says its Predictor stood: every input partition's end."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        tps = [TopicPartition(settings.input_topic, p) for p in range(settings.input_partitions)]
        return {str(tp.partition): end for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
