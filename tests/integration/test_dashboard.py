"""Every metric a Grafana panel queries is one the running services really expose, and the
compose stack wires Prometheus and Grafana to the ports the services listen on."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import yaml

from pipeline.config.settings import Settings
from pipeline.kafka_io.broker import free_port
from pipeline.services.predictor import Predictor
from pipeline.services.trainer import Trainer

from .conftest import TopicReader, await_true, in_thread, produce
from .helpers import make_events
from .test_metrics_and_health import get

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "observability" / "grafana" / "dashboards" / "pipeline.json"
SUFFIXES = ("_bucket", "_count", "_sum")


def queried_metrics() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    return {name for expr in exprs for name in re.findall(r"\bpipeline_[a-z_]+\b", expr)}


def exposed(text: str) -> set[str]:
    """Sample names with at least one sample (a labelled family without any has none)."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_panel_queries_a_metric_the_services_expose(live: Settings, adult) -> None:
    predictor_settings = replace(
        live, metrics_port=free_port(), quality_window=50, drift_window=50, drift_sample_every=1
    )
    trainer_settings = replace(live, metrics_port=free_port())
    out = TopicReader(live, live.predictions_topic)
    try:
        with in_thread(Predictor(predictor_settings).run), in_thread(Trainer(trainer_settings).run):
            produce(live, [*make_events(adult, 100, "d"), ("bad", b"{not json")])
            out.wait_for(lambda r: len(r) >= 100, what="100 predictions")
            port = predictor_settings.metrics_port
            every = ("pipeline_drift_js_distance{", "pipeline_events_dead_lettered_total{")
            await_true(
                lambda: all(f"\n{m}" in get(port, "/metrics")[1] for m in every),
                15,
                "a drift window and a dead letter counted",
            )
            scraped = exposed(get(port, "/metrics")[1])
            scraped |= exposed(get(trainer_settings.metrics_port, "/metrics")[1])
            trainer_port = trainer_settings.metrics_port
            await_true(lambda: get(trainer_port, "/healthz")[0] == 200, 30, "a live Trainer")
    finally:
        out.close()
    wanted = queried_metrics()
    assert len(wanted) >= 15
    missing = {m for m in wanted if m not in scraped}
    assert not missing, f"panels query metrics nobody exposes: {sorted(missing)}"


def test_the_stack_scrapes_and_provisions_what_the_services_serve() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    prometheus = yaml.safe_load((ROOT / "observability" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in prometheus["scrape_configs"]}
    for service in ("predictor", "trainer"):
        command = compose[service]["command"]
        port = int(command[command.index("--metrics-port") + 1])
        assert jobs[service]["names"] == [service] and jobs[service]["port"] == port
        assert str(port) in " ".join(compose[service]["healthcheck"]["test"])
    mounts = " ".join(compose["grafana"]["volumes"])
    assert "observability/grafana/dashboards" in mounts and "provisioning" in mounts
    home = compose["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.endswith(DASHBOARD.name)
