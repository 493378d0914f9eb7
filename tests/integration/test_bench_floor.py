"""The benchmark's latency floor answers every event it is sent, as the Predictor would.

Its p99 stands next to the Predictor's in the report; a floor that lost or misnamed answers
would read as a faster (or slower) floor instead of failing, so the stream's ledger must close.
"""

from __future__ import annotations

import pytest

from pipeline.config.settings import Settings
from pipeline.tools.bench import live as bench_live
from pipeline.tools.sample_stream import event_rows


@pytest.mark.both_clients
def test_the_floor_answers_every_event_and_splits_its_hops(
    live_topics: Settings, adult, tmp_path
) -> None:
    rows = event_rows(adult.test.head(400), live_topics.pipeline_spec.schema)

    measured = bench_live.latency_floor(live_topics, rows, rate=200, seconds=1.0, logs=tmp_path)

    assert measured["missing"] == 0 and measured["scored_eps"] == 200.0
    # Each answer carries when it was made: the first hop is measured apart from the second.
    assert 0 <= measured["to_scored_p50_ms"] <= measured["p50_ms"]
    assert measured["p50_ms"] <= measured["p99_ms"] <= measured["max_ms"]
