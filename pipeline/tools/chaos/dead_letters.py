"""A DLQ topic that refuses big records: bad events near --max-event-bytes, under load.

The dead-letter topic takes at most 16 KiB a record while the Predictor accepts 64 KiB events;
a bad event of 60 KiB plus its headers would be refused by the broker, and the Predictor, whose
batch then stays uncommitted, would crash on it again after every restart. Each must be stored
cut (with `dlq.truncated`) while the stream around it is scored as usual.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from pipeline.core.topics import TopicSpec
from pipeline.kafka_io.admin import ensure_topics
from pipeline.kafka_io.clients import kafka_security, make_producer
from pipeline.tools.chaos.faults import Stage
from pipeline.tools.chaos.harness import FaultResult, Ledger, Script, Stream, isolated, stop_all

DLQ_LIMIT = 16 * 1024
BIG_BAD_EVENT = 60 * 1024


def dlq_refuses_big_letters(stage: Stage, count: int) -> FaultResult:
    base = isolated(stage.settings, "dlq")
    settings = replace(base, dlq_topic=f"{base.dlq_topic}-small")
    spec = TopicSpec(settings.dlq_topic, 1, {"max.message.bytes": str(DLQ_LIMIT)})
    ensure_topics(settings.bootstrap_servers, [spec], security=kafka_security(settings))
    predictor = Script("predictor.py", settings, stage.logs).start()
    ledger = Ledger(settings)
    try:
        with Stream(settings, stage.rows, stage.rate) as stream:
            ledger.await_scored_after(0.0, 120, [predictor])
            _send_big_bad_events(settings, stage.rows[0], count)
            recovered = ledger.await_scored_after(time.time(), 120, [predictor])
            time.sleep(1.0)
        ledger.wait_for(stream.acknowledged, 120, [predictor])
        stored = _await_letters(ledger, count, 60, [predictor])
        clean_exit = stop_all([predictor])
    finally:
        predictor.stop()
        ledger.close()
    return ledger.result(
        f"DLQ refuses records over {DLQ_LIMIT // 1024} KiB, {BIG_BAD_EVENT // 1024} KiB bad events x{count}",
        count,
        stream.acknowledged,
        recovered,
        [predictor],
        checks={
            "every big dead letter stored, cut (dlq.truncated)": stored,
            "clean stop": clean_exit,
        },
    )


def _send_big_bad_events(settings: Any, row: dict[str, Any], count: int) -> None:
    """Valid JSON of about 60 KiB whose age is a word: refused for its field, not its size."""
    producer = make_producer(settings, "chaos-big-bad")
    for i in range(count):
        data = {**row, "age": "forty", "padding": "x" * BIG_BAD_EVENT}
        value = json.dumps({"request_id": f"big-bad-{i}", "data": data}).encode()
        producer.send(settings.input_topic, value=value, key=f"big-bad-{i}".encode())
    producer.flush(timeout=30)
    producer.close(timeout=10)


def _await_letters(ledger: Ledger, count: int, timeout_s: float, watch: list[Script]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ledger.poll()
        if ledger.dlq_truncated >= count:
            return ledger.dlq == ledger.dlq_truncated == count
        for script in watch:
            script.check()
    return False
