import os
import shutil
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipeline.core.topics import TopicSpec
from pipeline.kafka_io.admin import ensure_topics
from pipeline.kafka_io.broker import LocalBroker, ensure_jars
from pipeline.kafka_io.processes import alive


def resident_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [x for x in status.splitlines() if x.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(
    shutil.which("java") is None and os.environ.get("CI") != "true",
    reason="the local launcher needs Java",
)
def test_local_broker_starts_answers_and_stops_without_orphans(tmp_path) -> None:
    libs = ensure_jars()
    assert any(jar.name.startswith("kafka_2.13-") for jar in libs.iterdir())
    broker = LocalBroker(tmp_path / "kafka").start(timeout_s=120)
    pid = broker.process.pid
    try:
        assert ensure_topics(broker.bootstrap_servers, [TopicSpec("probe", 1)]) == ["probe"]
        # Its whole heap is there from the start (BROKER_HEAP: GC pauses were the p99's bursts).
        assert resident_mib(pid) >= 1024
    finally:
        broker.stop()
    assert not alive(pid)
    assert broker.process is None


def test_create_produce_consume_round_trip(kafka_bootstrap: str, unique: str) -> None:
    topic = f"roundtrip-{unique}"
    specs = [TopicSpec(topic, 2)]
    assert ensure_topics(kafka_bootstrap, specs) == [topic]
    assert ensure_topics(kafka_bootstrap, specs) == []  # idempotent

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(20)}
    for key, value in sent.items():
        producer.send(topic, value=value, key=key)
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g-{unique}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    received: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 30
    while len(received) < len(sent) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            received.update((r.key, r.value) for r in records)
    consumer.close()
    assert received == sent
