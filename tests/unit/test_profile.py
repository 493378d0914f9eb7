"""The profile tool puts each py-spy sample in the innermost part of the loop it was taken in."""

from pathlib import Path

from pipeline.tools.bench.profile import classify, markdown, shares

LOOP = "<module> (predictor.py:34);Predictor._loop (pipeline/services/predictor.py:202)"
SEND = (
    ";BatchPublisher.publish (pipeline/services/publishing.py:96)"
    ";BatchPublisher._then_commit (pipeline/services/publishing.py:139)"
    ";BatchPublisher._send_all (pipeline/services/publishing.py:102)"
    ";KafkaProducer.send (kafka/producer/kafka.py:943)"
)
DECODE = (
    ";score_batch (pipeline/core/batching.py:96)"
    ";EventDecoder.parse (pipeline/core/events.py:107)"
    ";_translate (pipeline/core/events.py:70)"
)


def test_a_sample_counts_for_the_innermost_part_it_is_in() -> None:
    assert classify(LOOP + SEND) == "publish: sending the outputs"
    assert classify(LOOP + SEND.rsplit(";", 2)[0]) == "publish: flush and commit"
    assert classify(LOOP + DECODE) == "decode and validate (msgspec)"
    batch_decode = DECODE.replace("EventDecoder.parse ", "EventDecoder.parse_batch ")
    assert classify(LOOP + batch_decode) == "decode and validate (msgspec)"
    records = ";score_batch (pipeline/core/batching.py:120);prediction_records (pipeline/core/messages.py:99)"
    assert classify(LOOP + records) == "prediction records (JSON)"
    assert classify(LOOP + ";score_batch (pipeline/core/batching.py:120)") == "rest of score_batch"
    assert classify(LOOP) == "rest of the loop"
    for poll in (
        ";KafkaConsumer.poll (kafka/consumer/group.py:700)",
        ";RdConsumer.poll (pipeline/kafka_io/rdkafka_consumer.py:140)",
    ):
        assert classify(LOOP + poll) == "poll (client fetch and parse)"
    assert classify("Thread.run (threading.py:982);Sender.run (kafka/producer/sender.py:1)") is None


def test_shares_add_up_the_samples_of_the_loop_only(tmp_path: Path) -> None:
    raw = tmp_path / "p.raw"
    raw.write_text(f"{LOOP}{SEND} 30\n{LOOP}{DECODE} 10\nThread.run (threading.py:982) 50\n")
    counts = shares(raw)
    assert counts == {"publish: sending the outputs": 30, "decode and validate (msgspec)": 10}
    assert "| publish: sending the outputs | 75% |" in markdown(counts, 100, "kafka-python")
