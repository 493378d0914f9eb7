"""The latency floor: a Predictor's two hops with nothing in between.

`python -m pipeline.tools.bench.floor` takes the Predictor's flags and reads the input topic as a
Predictor does (its group, its consumer settings, the same client seam) and publishes as it does
(the same BatchPublisher: acknowledgement window, commit interval, output linger), but answers
every event at once with the smallest record the sample app reads as a prediction: no decoding,
no model, no monitoring. What its answers take at a load is what these clients, this broker and
this machine cost before any of the Predictor's own work, so the benchmark reports the
Predictor's latency next to it: a p99 target below the floor cannot be met by the Predictor.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaConsumer

from pipeline.config.settings import Settings
from pipeline.core.batching import BatchResult, Output
from pipeline.kafka_io.clients import GroupPoller, finish_stalled_rebalance
from pipeline.services.entry import run_entry
from pipeline.services.offsets import OffsetKeeper, next_offsets
from pipeline.services.predictor import input_consumer
from pipeline.services.publishing import BatchPublisher

log = logging.getLogger(__name__)


def answer(request_id: bytes, answered_at_ms: int) -> bytes:
    """What the sample app reads of a prediction: the request id (the event's key), and when it
    was answered, which splits the latency into its hops as the Predictor's `scored_at_ms` does."""
    return b'{"request_id":"%s","label":"","model_version":0,"scored_at_ms":%d}' % (
        request_id,
        answered_at_ms,
    )


def answers(keys: Sequence[bytes | None]) -> BatchResult:
    now_ms = int(time.time() * 1000)
    return BatchResult(predictions=[Output(key, answer(key or b"", now_ms)) for key in keys])


def _consumer(settings: Settings, keeper: OffsetKeeper) -> KafkaConsumer:
    consumer = input_consumer(settings, "bench-floor")
    keeper.bind(consumer)
    consumer.subscribe([settings.input_topic], listener=keeper)
    return consumer


def forward(settings: Settings, stop: threading.Event) -> int:
    keeper = OffsetKeeper()
    publisher = BatchPublisher.create(settings, keeper)
    consumer = _consumer(settings, keeper)
    log.info("floor forwarding %s -> %s", settings.input_topic, settings.predictions_topic)
    poller = GroupPoller(consumer)
    try:
        while not stop.is_set():
            polled = poller.poll(
                timeout_ms=settings.batch_wait_ms or 1, max_records=settings.batch_size
            )
            finish_stalled_rebalance(consumer)
            if not polled:
                publisher.settle(consumer)
                continue
            records = [record for batch in polled.values() for record in batch]
            result = answers([record.key for record in records])
            publisher.publish(consumer, result, None, next_offsets(polled))
    finally:
        publisher.close(consumer)
        consumer.close(autocommit=False)
    return 0


def floor_row(client: str, values: dict[str, Any]) -> str:
    """The floor (`bench/floor.py`): the Predictor's hops and publishing, nothing in between."""
    return (
        f"| d) latency floor at 1,000 events/s{client}: the same two hops and publishing, no "
        f"decoding, model or monitoring (p50 / p95 / p99 / max) | {values['p50_ms']:.1f} / "
        f"{values['p95_ms']:.1f} / {values['p99_ms']:.1f} / {values['max_ms']:.1f} ms "
        f"(answered {values['scored_eps']:,.0f}/s, {values['missing']} missing; event -> "
        f"answered p50 {values['to_scored_p50_ms']:.1f} / p99 {values['to_scored_p99_ms']:.1f} "
        f"ms{rounds_note(values)}) |"
    )


def rounds_note(values: dict[str, Any]) -> str:
    """How a median of rounds came about, for the report's rows; empty for one stream."""
    rounds = values.get("rounds") or []
    if len(rounds) < 2:
        return ""
    p99s = " / ".join(f"{r['p99_ms']:.1f}" for r in rounds)
    return f"; median of {len(rounds)} rounds, p99 per round {p99s} ms"


def with_floor(p99_ms: float, floor_p99_ms: float | None) -> str:
    """A p99 and, when measured, the floor's in the same run: the same hops, nothing between."""
    if floor_p99_ms is None:
        return f"{p99_ms:.1f} ms"
    return f"{p99_ms:.1f} ms (floor {floor_p99_ms:.1f} ms)"


def main(argv: Sequence[str] | None = None) -> int:
    return run_entry("predictor", __doc__ or "", argv, forward)


if __name__ == "__main__":
    sys.exit(main())
