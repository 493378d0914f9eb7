"""The benchmark's latency floor answers every event it is sent, as the Predictor would.

Its p99 stands next to the Predictor's in the report; a floor that lost or misnamed answers
would read as a faster (or slower) floor instead of failing, so the stream's ledger must close.
"""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.tools.bench import live as bench_live
from pipeline.tools.bench.workloads import FLOOR, scenario_settings
from pipeline.tools.sample_stream import event_rows


def answers_on(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        topic = settings.predictions_topic
        ends = consumer.end_offsets(
            [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        )
        return sum(ends.values())
    finally:
        consumer.close()


@pytest.mark.both_clients
def test_the_floor_answers_every_event_and_splits_its_hops(
    live_topics: Settings, adult, tmp_path
) -> None:
    """Two floors serving at once, on topics of their own, taking turns for two rounds: the
    benchmark's latency rounds, which keep the Predictor, the floor and the shadow up together."""
    rows = event_rows(adult.test.head(400), live_topics.pipeline_spec.schema)
    other = scenario_settings(live_topics, "other", 2)

    measured, also = bench_live.latency_rounds(
        [bench_live.Server(live_topics, FLOOR), bench_live.Server(other, FLOOR)],
        rows,
        rate=200,
        seconds=1.0,
        rounds=2,
        logs=tmp_path,
    )

    for each, settings in ((measured, live_topics), (also, other)):
        assert each["missing"] == 0 and each["scored_eps"] == 200.0
        assert len(each["rounds"]) == 2 and len(each["latencies_ms"]) == 400
        # Each answered its own streams: the warm-up's 1,000 events and two rounds of 200.
        assert answers_on(settings) >= 1400
    # Each answer carries when it was made: the first hop is measured apart from the second.
    assert 0 <= measured["to_scored_p50_ms"] <= measured["p50_ms"]
    assert measured["p50_ms"] <= measured["p99_ms"] <= measured["max_ms"]
