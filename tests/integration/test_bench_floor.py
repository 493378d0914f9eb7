"""The benchmark's latency floor answers every event it is sent, as the Predictor would.

Its p99 stands next to the Predictor's in the report; a floor that lost or misnamed answers
would read as a faster (or slower) floor instead of failing, so the stream's ledger must close.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.kafka_io.admin import ensure_topics
from pipeline.tools.bench import live as bench_live
from pipeline.tools.sample_stream import event_rows

from .conftest import live_settings


@pytest.mark.both_clients
def test_the_floor_answers_every_event_and_splits_its_hops(
    kafka_bootstrap, unique, mlflow_home, data_dir, adult, kafka_client, tmp_path
) -> None:
    settings = replace(
        live_settings(kafka_bootstrap, unique, mlflow_home, data_dir), kafka_client=kafka_client
    )
    ensure_topics(settings.bootstrap_servers, settings.topic_specs())
    rows = event_rows(adult.test.head(400), settings.pipeline_spec.schema)

    measured = bench_live.latency_floor(settings, rows, rate=200, seconds=1.0, logs=tmp_path)

    assert measured["missing"] == 0 and measured["scored_eps"] == 200.0
    # Each answer carries when it was made: the first hop is measured apart from the second.
    assert 0 <= measured["to_scored_p50_ms"] <= measured["p50_ms"]
    assert measured["p50_ms"] <= measured["p99_ms"] <= measured["max_ms"]
