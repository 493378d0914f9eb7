"""The Kafka clients' retry warnings, each once per window, with the count held back."""

from __future__ import annotations

import logging

from pipeline.config.logs import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args or None, None)


def test_a_retry_warning_passes_once_per_window_then_says_how_many_were_held() -> None:
    clock = Clock()
    repeats = RepeatFilter(window_s=10.0, clock=clock)
    passed = []
    for backoff in (0.1, 0.38, 1.08, 1.12):  # numbers differ, the line is the same
        line = record(
            "kafka.net.manager",
            logging.WARNING,
            "Bootstrap connection to %s failed: %s (backoff %.2f secs)",
            "bootstrap-0",
            "111 ECONNREFUSED",
            backoff,
        )
        if repeats.filter(line):
            passed.append(line.getMessage())
        clock.now += 1.0
    assert passed == [
        "Bootstrap connection to bootstrap-0 failed: 111 ECONNREFUSED (backoff 0.10 secs)"
    ]
    clock.now += 10.0
    later = record(
        "kafka.net.manager",
        logging.WARNING,
        "Bootstrap connection to %s failed: %s (backoff %.2f secs)",
        "bootstrap-0",
        "111 ECONNREFUSED",
        0.9,
    )
    assert repeats.filter(later)
    assert later.getMessage().endswith("(backoff 0.90 secs) (3 more like it in the last 14 s)")


def test_other_lines_and_other_loggers_are_never_held() -> None:
    repeats = RepeatFilter(window_s=10.0, clock=Clock())
    lost = record("kafka.net.connection", logging.ERROR, "Connection lost: %s", "refused")
    assert repeats.filter(lost)
    assert repeats.filter(record("kafka.cluster", logging.WARNING, "No node available"))
    assert repeats.filter(
        record("librdkafka", logging.WARNING, "%s [%s] %s", "FAIL", "p#1", "down")
    )
    assert repeats.filter(
        record("librdkafka", logging.WARNING, "%s [%s] %s", "REQTMOUT", "p#1", "x")
    )
    for _ in range(3):  # the service's own lines, and the clients' below WARNING
        assert repeats.filter(record("pipeline.services.offsets", logging.WARNING, "commit failed"))
        assert repeats.filter(record("kafka.coordinator", logging.DEBUG, "Heartbeat"))
        assert repeats.filter(record("kafkaesque", logging.WARNING, "not a Kafka client"))
    assert not repeats.filter(
        record("kafka.net.connection", logging.ERROR, "Connection lost: %s", "refused")
    )


def test_what_the_last_window_held_back_is_reported_when_the_process_ends() -> None:
    clock = Clock()
    repeats = RepeatFilter(window_s=10.0, clock=clock)
    written: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, line: logging.LogRecord) -> None:
            written.append(line)

    handler = Keep()
    handler.addFilter(repeats)
    for port in (9092, 9093, 9094):  # a broker outage; it ends and nothing of the kind follows
        handler.handle(record("kafka.conn", logging.WARNING, "connect to %s refused", port))
        clock.now += 1.0
    handler.handle(record("kafka.cluster", logging.WARNING, "No node available"))
    assert [line.getMessage() for line in written] == [
        "connect to 9092 refused",
        "No node available",
    ]
    clock.now += 2.0
    repeats.report_held(handler)
    assert [line.getMessage() for line in written[2:]] == [
        "connect to 9094 refused (2 like it held back in the last 5 s)"
    ]
    assert written[2].name == "kafka.conn" and written[2].levelno == logging.WARNING
    clock.now += 20.0
    repeats.report_held(handler)  # said once
    assert len(written) == 3
