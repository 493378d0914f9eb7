"""Events for the live-loop tests, built the way a producer would send them."""

from __future__ import annotations

import json

from pipeline.events import encode_event
from pipeline.sample_stream import event_rows


def make_events(adult, count: int, prefix: str, start: int = 0) -> list[tuple[str, bytes]]:
    rows = event_rows(adult.test.iloc[start : start + count])
    return [
        (f"{prefix}-{start + i}", encode_event(f"{prefix}-{start + i}", row))
        for i, row in enumerate(rows)
    ]


def model_ready(name: str, version: int, promoted: bool = True) -> bytes:
    return json.dumps(
        {
            "type": "model_ready",
            "model_name": name,
            "version": version,
            "uri": f"models:/{name}/{version}",
            "metrics": {},
            "champion_metrics": {},
            "promoted": promoted,
            "requests": 1,
            "end_offsets": {},
        }
    ).encode()
