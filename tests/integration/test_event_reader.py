"""What a retrain reads from the input topic: committed events only."""

from __future__ import annotations

from kafka import KafkaProducer

from pipeline.kafka_io.event_reader import read_events

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
    read = read_events(live, log_ends(live))
    ids = sorted(e.request_id for e in read.events)
    assert ids == sorted([f"a-{i}" for i in range(30)] + [f"b-{i}" for i in range(50, 60)])
