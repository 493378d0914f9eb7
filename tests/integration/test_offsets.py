"""Committed offsets never move backwards, whatever the rebalances in between.

Two Predictors in one group with dynamic membership, so a stopped one leaves at once and its
partitions move to the other; real broker, no mocks.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.kafka_io.admin import admin_client
from pipeline.services.predictor import Predictor

from .conftest import TopicReader, await_true, in_thread, produce
from .helpers import make_events


def committed(settings: Settings) -> dict[int, int]:
    admin = admin_client(settings.bootstrap_servers)
    try:
        offsets = admin.list_group_offsets(settings.predictor_group)[settings.predictor_group]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


def log_ends(settings: Settings) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        tps = [TopicPartition(settings.input_topic, p) for p in range(settings.input_partitions)]
        return {tp.partition: end for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


@pytest.mark.both_clients
def test_a_partition_back_from_another_instance_is_never_rewound(live: Settings, adult) -> None:
    # Dynamic members leave the group when they stop, so partitions move back and forth at once.
    dynamic = replace(live, instance_id="")
    first, second = Predictor(dynamic), Predictor(dynamic)
    out = TopicReader(live, live.predictions_topic)
    with in_thread(first.run):
        produce(live, make_events(adult, 100, "a"))  # both partitions: first owes offsets on each
        out.wait_for(lambda r: len(r) >= 100, what="the first 100 predictions")
        with in_thread(second.run):
            await_true(
                lambda: first.assignment.partitions and second.assignment.partitions,
                60,
                "each Predictor to own a partition",
            )
            produce(live, make_events(adult, 200, "b", start=100))
            out.wait_for(lambda r: len(r) >= 300, what="300 predictions")
            await_true(lambda: committed(live) == log_ends(live), 30, "every offset committed")
            moved = set(second.assignment.partitions)
        # The second one left: its partitions are back with the first, which reads nothing new
        # from them before it stops too.
        await_true(lambda: first.assignment.partitions == {0, 1}, 60, "the partitions back")
    assert committed(live) == log_ends(live), f"partition(s) {moved} were rewound"
    assert first.assignment.commits_on_revoke >= 1
    out.close()
