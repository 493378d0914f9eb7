"""The demo's picture of its live metrics reads the services' exposition as Prometheus does."""

from __future__ import annotations

import math

from prometheus_client import generate_latest

from pipeline.services.metrics import PredictorMetrics
from pipeline.tools.live_view import Sample, online_auc_by_version, parse, quantile, render


def exposition(version: int, scored: int, latencies: list[float], auc: float, js: float) -> str:
    metrics = PredictorMetrics()
    metrics.serving("m", version)
    metrics.scored.inc(scored)
    for latency in latencies:
        metrics.event_to_scored.observe(latency)
    metrics.online_quality.labels(version=str(version), metric="auc").set(auc)
    metrics.drift_js.labels(feature="age").set(js)
    metrics.drift_over.labels(feature="age").set(3)
    return generate_latest(metrics.registry).decode()


def test_quantiles_are_interpolated_within_buckets_like_histogram_quantile() -> None:
    buckets = {0.01: 50.0, 0.02: 100.0, math.inf: 100.0}
    assert math.isclose(quantile(buckets, 0.5), 0.01)
    assert math.isclose(quantile(buckets, 0.75), 0.015)
    assert math.isnan(quantile({}, 0.5))


def test_samples_sum_instances_and_keep_each_version(tmp_path) -> None:
    sample = Sample(at_s=1.0)
    parse(exposition(1, 10, [0.004] * 10, 0.9, 0.05), "p1", sample)
    parse(exposition(2, 5, [0.02] * 5, 0.8, 0.2), "p2", sample)
    assert sample.scored == 15
    assert sample.versions == {"p1": 1, "p2": 2}
    assert sample.online_auc == {"1": 0.9, "2": 0.8}
    assert sample.drift == {"age": 0.2}
    assert 0.003 < quantile(sample.buckets, 0.5) <= 0.005
    later = Sample(at_s=3.0, scored=40, buckets=sample.buckets, versions={"p1": 2})
    path = render([sample, later], tmp_path / "view.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert online_auc_by_version([sample]) == {"1": 0.9, "2": 0.8}
