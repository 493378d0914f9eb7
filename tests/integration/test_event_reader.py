"""What a retrain reads from the input topic: committed events only, and a bounded window."""

from __future__ import annotations

from kafka import KafkaProducer

from pipeline.kafka_io.event_reader import read_events

from .conftest import TopicReader, produce
from .helpers import log_ends, make_events


def test_events_of_an_aborted_upstream_transaction_are_never_read(live, adult) -> None:
    upstream = KafkaProducer(
        bootstrap_servers=live.bootstrap_servers, transactional_id=f"up-{live.input_topic}"
    )
    upstream.init_transactions()
    for prefix, count, start, commit in (
        ("a", 30, 0, True),
        ("x", 20, 30, False),
        ("b", 10, 50, True),
    ):
        upstream.begin_transaction()
        for key, value in make_events(adult, count, prefix, start):
            upstream.send(live.input_topic, key=key.encode(), value=value)
        upstream.flush()
        if commit:
            upstream.commit_transaction()
        else:
            upstream.abort_transaction()
    upstream.close()
    read = read_events(live, log_ends(live), window=10**6)
    ids = sorted(e.request_id for e in read.events)
    assert ids == sorted([f"a-{i}" for i in range(30)] + [f"b-{i}" for i in range(50, 60)])


def test_a_retrain_reads_only_the_most_recent_window(live, adult) -> None:
    produce(live, make_events(adult, 300, "w"))
    read = read_events(live, log_ends(live), window=100)
    assert len(read.events) == 100
    assert sum(end - start for start, end in read.offset_ranges.values()) == 100
    topic = TopicReader(live, live.input_topic)
    records = topic.wait_for(lambda r: len(r) >= 300, 30, "the 300 events")
    topic.close()
    newest = {
        r.key.decode() for r in records if r.offset >= read.offset_ranges[str(r.partition)][0]
    }
    assert {e.request_id for e in read.events} == newest
