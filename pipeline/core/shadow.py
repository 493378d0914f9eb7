"""Which events the challenger also scores, and what it says about them. No Kafka here.

The choice hangs on the request id alone (CRC-32, the same in every process and on every
machine, unlike Python's salted `hash`), so every Predictor instance, a restarted one too,
shadows the same events, and a replay shadows them again.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from pipeline.core.messages import SHADOW_ENTRIES, ShadowBatch, ShadowEntry, shadow_record

_SCALE = 2**32


def in_shadow(request_id: str, fraction: float) -> bool:
    if fraction <= 0:
        return False
    return fraction >= 1 or zlib.crc32(request_id.encode()) < fraction * _SCALE


def shadow_outputs(
    picked: Sequence[tuple[str, str | None, tuple[str, int, int]]],
    model_name: str,
    versions: tuple[int, int],
    probabilities: tuple[np.ndarray, np.ndarray],
    threshold: float,
    scored_at_ms: int,
) -> list[tuple[bytes, bytes]]:
    """(key, value) records of `SHADOW_ENTRIES` events at most: `picked` is (request id, its
    own label, its source) per event, in the order of both models' probabilities; `versions`
    and `probabilities` are (champion's, challenger's). The key is the first request id, so
    records spread over the topic's partitions as the events do."""
    if not picked:
        return []
    mine, theirs = (p.tolist() for p in probabilities)
    entries = [
        ShadowEntry(request_id, c, x, truth, source[1], source[2])
        for (request_id, truth, source), c, x in zip(picked, mine, theirs, strict=True)
    ]
    topic = picked[0][2][0]
    outputs = []
    for start in range(0, len(entries), SHADOW_ENTRIES):
        chunk = entries[start : start + SHADOW_ENTRIES]
        batch = ShadowBatch(model_name, *versions, threshold, topic, scored_at_ms, chunk)
        outputs.append((chunk[0].request_id.encode(), shadow_record(batch)))
    return outputs
