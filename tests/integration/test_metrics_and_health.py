"""What an operator scrapes from a running Predictor: real /metrics, /healthz and /readyz."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import replace

from pipeline.config.settings import Settings
from pipeline.kafka_io.broker import free_port
from pipeline.services.predictor import Predictor

from .conftest import TopicReader, await_true, in_thread, produce
from .helpers import make_events


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str) -> float:
    """The value of one sample line `name value` (labels included in `name`)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} is not exposed")


def test_metrics_health_and_readiness_of_a_running_predictor(live: Settings, adult) -> None:
    settings = replace(live, metrics_port=free_port(), heartbeat_interval_s=0.5)
    predictor = Predictor(settings)
    out = TopicReader(settings, settings.predictions_topic)
    try:
        with in_thread(predictor.run):
            port = settings.metrics_port
            await_true(lambda: get(port, "/readyz")[0] == 200, 30, "the Predictor to be ready")
            produce(settings, [*make_events(adult, 40, "m"), ("bad", b"{not json")])
            out.wait_for(lambda r: len(r) >= 40, what="40 predictions")
            await_true(
                lambda: "pipeline_events_consumed_total 41.0" in get(port, "/metrics")[1],
                10,
                "counts",
            )
            status, text = get(port, "/metrics")
            healthz = get(port, "/healthz")
            # Readiness may dip for a moment while the group settles; it must come back.
            await_true(
                lambda: get(port, "/readyz") == (200, "ok: serving partitions [0, 1]\n"),
                30,
                f"ready on both partitions (answer when the wait began: {get(port, '/readyz')})",
            )
    finally:
        out.close()
    assert status == 200
    # it scored with the trees compiled at load (compile_trees is on by default)
    assert predictor.slot is not None and predictor.slot.current.model.compiled is not None
    assert sample(text, "pipeline_events_scored_total") == 40
    assert sample(text, 'pipeline_events_dead_lettered_total{reason="not_valid_utf-8_json"}') == 1
    name = settings.model_name
    assert sample(text, f'pipeline_model_info{{name="{name}",version="1"}}') == 1
    assert sample(text, "pipeline_event_to_scored_seconds_count") >= 2
    assert sample(text, "pipeline_scoring_seconds_count") >= 1
    assert 'pipeline_consumer_lag_events{partition="0"}' in text
    assert healthz[0] == 200 and "went round" in healthz[1]


def test_not_ready_without_a_checked_model_or_partitions() -> None:
    from pipeline.services.health import HealthState

    state = HealthState(golden_check=lambda: None)
    assert state.ready() == (False, "no checked model yet")
    assert not state.live()[0]
    state.model_checked = True
    assert state.ready() == (False, "no partitions assigned")
    state.partitions = frozenset({0})
    state.beat()
    assert state.ready()[0] and state.live()[0]

    def broken() -> None:
        raise ValueError("scores are NaN")

    state.golden_check = broken
    assert state.ready() == (False, "the golden event does not score: scores are NaN")
