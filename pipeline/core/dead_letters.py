"""A dead letter the DLQ topic will take: the original bytes, cut to fit when they cannot.

A dead letter is the original event plus `dlq.*` headers. An event just under the Predictor's
`--max-event-bytes`, or an oversized one, plus those headers can exceed the DLQ topic's
`max.message.bytes`; a record the broker refuses fails the batch, which stays uncommitted, so
the restarted Predictor meets the same event again: a crash loop. Such a letter keeps the head
of its value and says so in `dlq.truncated` (the original size in bytes).
"""

from __future__ import annotations

from pipeline.core.batching import Output
from pipeline.core.messages import DLQ_TRUNCATED

# One record alone in a v2 record batch: 61 bytes of batch header, at most 21 bytes of record
# framing (length, attributes, timestamp and offset deltas) and three 5-byte length prefixes
# (key, value, header count); each header adds two prefixes. SLACK covers what this misses.
BATCH_OVERHEAD = 61 + 21 + 15
HEADER_OVERHEAD = 10
SLACK = 64

Headers = list[tuple[str, bytes]]


def record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """An upper bound of the batch one uncompressed record makes on the wire."""
    header_bytes = sum(HEADER_OVERHEAD + len(k.encode()) + len(v) for k, v in headers)
    return BATCH_OVERHEAD + len(key or b"") + len(value or b"") + header_bytes


def fit_dead_letter(letter: Output, limit: int) -> Output:
    """The letter itself when it fits in `limit` bytes, else its value cut (and, when even the
    key and headers are too big, its key) with a `dlq.truncated` header."""
    headers = list(letter.headers or [])
    if record_size(letter.key, letter.value, headers) + SLACK <= limit:
        return letter
    value = letter.value or b""
    headers.append((DLQ_TRUNCATED, str(len(value)).encode()))
    spare = limit - SLACK - record_size(letter.key, b"", headers)
    if spare >= 0:
        return Output(letter.key, value[:spare], headers)
    key_spare = max(limit - SLACK - record_size(b"", b"", headers), 0)
    return Output((letter.key or b"")[:key_spare], b"", headers)


def batches_that_fit(letters: list[Output], limit: int) -> list[list[Output]]:
    """Consecutive letters grouped so that each group, sent as one batch, fits in `limit`
    (each letter counted with a batch header of its own: an over-estimate)."""
    groups: list[list[Output]] = []
    size = limit + 1
    for letter in letters:
        need = record_size(letter.key, letter.value, list(letter.headers or []))
        if size + need > limit:
            groups.append([])
            size = 0
        groups[-1].append(letter)
        size += need
    return groups
