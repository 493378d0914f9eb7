"""Dead letters are cut to what the DLQ topic takes, and say so; small ones pass untouched."""

from __future__ import annotations

from pipeline.core.batching import Output
from pipeline.core.dead_letters import batches_that_fit, fit_dead_letter, record_size
from pipeline.core.messages import dlq_headers

HEADERS = dlq_headers("wrong type", "data.age", "app_messages", 3, 12345, "predictor-1")


def test_a_letter_that_fits_is_left_alone() -> None:
    letter = Output(b"key", b"x" * 1000, HEADERS)
    assert fit_dead_letter(letter, 8192) is letter


def test_a_letter_too_big_keeps_its_head_and_its_original_size() -> None:
    value = b"y" * 60_000
    fitted = fit_dead_letter(Output(b"key", value, HEADERS), 8192)
    headers = dict(fitted.headers or [])
    assert headers["dlq.truncated"] == b"60000" and headers["dlq.field"] == b"data.age"
    assert value.startswith(fitted.value or b"") and len(fitted.value or b"") > 6000
    assert record_size(fitted.key, fitted.value, fitted.headers or []) <= 8192


def test_a_huge_key_is_cut_too_when_the_value_alone_cannot_make_room() -> None:
    fitted = fit_dead_letter(Output(b"k" * 20_000, b"v" * 10, HEADERS), 4096)
    assert fitted.value == b"" and 0 < len(fitted.key or b"") < 4096
    assert record_size(fitted.key, fitted.value, fitted.headers or []) <= 4096


def test_letters_are_grouped_into_batches_the_dlq_takes() -> None:
    """Each fits alone; two of 3,000 bytes fit in 8 KiB together, a third does not."""
    letters = [Output(b"k", b"z" * 3000, HEADERS) for _ in range(3)]
    letters.append(Output(b"k", b"small", HEADERS))
    groups = batches_that_fit(letters, 8192)
    assert [len(g) for g in groups] == [2, 2]
    assert [o for g in groups for o in g] == letters
    for group in groups:
        assert sum(record_size(o.key, o.value, o.headers or []) for o in group) <= 8192
