"""One produce -> consume hop at 1,000 events/s, with no pipeline in between.

Compares the Kafka client the pipeline uses (kafka-python) with librdkafka (confluent-kafka),
to tell how much of the end-to-end latency is the client's own. Not part of the product:
    pip install confluent-kafka numpy kafka-python
    python bench/client_hop_latency.py 127.0.0.1:9092 kafka-python|confluent-kafka
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import numpy as np


def kafka_python(bootstrap: str, topic: str, lat: list[float], stop: threading.Event) -> object:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic

    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, 4, 1)])
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=topic,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    while not consumer.assignment():
        consumer.poll(timeout_ms=100)

    def receive() -> None:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=5).values():
                now = time.time()
                lat.extend((now - float(r.value)) * 1000 for r in records)

    threading.Thread(target=receive, daemon=True).start()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    return lambda value: producer.send(topic, value)


def confluent(bootstrap: str, topic: str, lat: list[float], stop: threading.Event) -> object:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": topic,
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)

    def receive() -> None:
        while not stop.is_set():
            message = consumer.poll(0.1)
            if message is not None and not message.error():
                lat.append((time.time() - float(message.value())) * 1000)

    threading.Thread(target=receive, daemon=True).start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})

    def send(value: bytes) -> None:
        producer.produce(topic, value)
        producer.poll(0)

    return send


def main() -> None:
    bootstrap, client = sys.argv[1], sys.argv[2]
    lat: list[float] = []
    stop = threading.Event()
    start = {"kafka-python": kafka_python, "confluent-kafka": confluent}[client]
    send = start(bootstrap, f"hop-{uuid.uuid4().hex[:6]}", lat, stop)
    time.sleep(1)
    began = time.time()
    for i in range(3000):
        delay = began + i / 1000 - time.time()
        if delay > 0:
            time.sleep(delay)
        send(str(time.time()).encode())  # type: ignore[operator]
    time.sleep(2)
    stop.set()
    values = np.asarray(lat[500:])
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    print(
        f"{client}: {len(lat)} events, p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, "
        f"max {values.max():.1f} ms"
    )


if __name__ == "__main__":
    main()
