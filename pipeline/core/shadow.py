"""Which events the challenger also scores, and what it says about them. No Kafka here.

The choice hangs on the request id alone (CRC-32, the same in every process and on every
machine, unlike Python's salted `hash`), so every Predictor instance, a restarted one too,
shadows the same events, and a replay shadows them again.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from pipeline.core.messages import Scored, shadow_record

_SCALE = 2**32


def in_shadow(request_id: str, fraction: float) -> bool:
    if fraction <= 0:
        return False
    return fraction >= 1 or zlib.crc32(request_id.encode()) < fraction * _SCALE


def shadow_outputs(
    picked: Sequence[tuple[str, str | None, tuple[str, int, int]]],
    model_name: str,
    champion: tuple[int, np.ndarray, float],
    challenger: tuple[int, np.ndarray, float],
    labels: tuple[str, str],
    scored_at_ms: int,
) -> list[tuple[bytes, bytes]]:
    """(key, value) per picked event: (request id, its own label, its source) in the order of
    the two models' probabilities; each model is (version, probabilities, threshold)."""
    outputs = []
    champion_version, champion_p, champion_t = champion
    challenger_version, challenger_p, challenger_t = challenger
    for (request_id, truth, source), mine, theirs in zip(
        picked, champion_p.tolist(), challenger_p.tolist(), strict=True
    ):
        value = shadow_record(
            request_id,
            model_name,
            Scored(champion_version, mine, labels[mine >= champion_t]),
            Scored(challenger_version, theirs, labels[theirs >= challenger_t]),
            truth,
            source,
            scored_at_ms,
        )
        outputs.append((request_id.encode(), value))
    return outputs
