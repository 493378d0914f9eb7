"""`make demo`: the whole live loop on one machine, end to end, then a one-line JSON summary.

A broker (KAFKA_BOOTSTRAP_SERVERS when set, else the local launcher for the demo's length), the
first model if none is `@champion` yet, one Trainer and two Predictors as separate processes,
and the sample app streaming adult.test through them across several retrains.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import initialize
from pipeline.config.logs import setup_logging
from pipeline.config.settings import Settings, parse_settings, secret_env, settings_to_argv
from pipeline.core.data import load_data
from pipeline.errors import PipelineError
from pipeline.kafka_io.admin import ensure_topics, wait_for_members
from pipeline.kafka_io.broker import broker_for, free_port
from pipeline.kafka_io.clients import kafka_security
from pipeline.registry import lifecycle, tracking
from pipeline.registry.challenger import challenger_version
from pipeline.tools.live_view import Scraper, online_auc_by_version, render
from pipeline.tools.sample_stream import SampleApp, event_rows
from pipeline.tools.sandbox import modest_champion

log = logging.getLogger("demo")

ROOT = Path(__file__).resolve().parents[2]
# Paced so that several retrains finish while the stream runs, in about five minutes on 2 cores.
DEMO_DEFAULTS = {
    "rate": 120.0,
    "retrain_every": 1500,
    "retrain_evals": 2,
    "retrain_folds": 3,
    "bad_every": 500,
    # The last third of the stream drifts (older people, more farm work): the Predictors see it
    # against their model's training profile and ask for a retrain with reason `drift`.
    "shift": "age=20",
    "mix": "occupation=Farming-fishing:0.5",
    "perturb_after": 9_000,
    # At 120 events/s cost is no concern: every event counts, so windows close within the run;
    # each Predictor sees about 3,600 drifted events, and a swap starts its count again (a new
    # version brings its own profile), so two windows in a row make an alert here.
    "drift_sample_every": 1,
    "drift_patience": 2,
    # A retrained model that passes the gate is first @challenger: the Predictors score every
    # event with it in the shadow too (at 120 events/s the cost is nothing), and after 600
    # labelled ones (5 s here, once it is compiled) the Trainer promotes or retires it on that
    # live evidence, well before the next retrain would replace it.
    "candidates_to": "challenger",
    "shadow_fraction": 1.0,
    "shadow_min_labelled": 600,
}
# The demo's model: its own registry name, so the product's @champion is never touched, and a
# deliberately modest start that retrains can be seen to beat (tools/sandbox.py).
DEMO_SUFFIX = "-demo"
HIGHLIGHTS = (
    "swapped model",
    "refused",
    "promoted",
    "kept the champion",
    "@champion",
    "challenger",
    "requests merged",
    "training for",
    "partitions assigned",
    "stopped cleanly",
    "ERROR",
)


@contextlib.contextmanager
def processes(settings: Settings, logs: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Trainer and two Predictors; SIGTERM on the way out, as a supervisor would send."""
    logs.mkdir(parents=True, exist_ok=True)
    specs = {
        "trainer": (
            "trainer.py",
            replace(settings, instance_id="trainer-1", metrics_port=free_port()),
        ),
        "predictor-1": ("predictor.py", _predictor(settings, "predictor-1")),
        "predictor-2": ("predictor.py", _predictor(settings, "predictor-2")),
    }
    for name, (_, own) in specs.items():
        if own.metrics_port:
            print(f"{name}: http://127.0.0.1:{own.metrics_port}/metrics (/healthz /readyz)")
    running: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (script, own) in specs.items():
            argv = [sys.executable, str(ROOT / script), *settings_to_argv(own, script[:-3])]
            with (logs / f"{name}.log").open("wb") as out:
                running[name] = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    env={**os.environ, **secret_env(own)},
                )
        yield running
    finally:
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in running.items():
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            log.info("%s exited with %s", name, code)


def metrics_ports(children: dict[str, subprocess.Popen[bytes]]) -> dict[str, int]:
    """The Predictors' ports, read back from their command lines."""
    ports = {}
    for name, process in children.items():
        argv = [str(a) for a in process.args]  # type: ignore[union-attr]
        if name.startswith("predictor") and "--metrics-port" in argv:
            ports[name] = int(argv[argv.index("--metrics-port") + 1])
    return ports


def _predictor(settings: Settings, instance: str) -> Settings:
    """Each Predictor on a free port of its own for /metrics, /healthz and /readyz."""
    return replace(settings, instance_id=instance, metrics_port=free_port())


def highlights(logs: Path) -> list[str]:
    lines = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if any(mark in line for mark in HIGHLIGHTS):
                lines.append(f"[{path.stem}] {line}")
    return lines


def lifecycle_summary(demo: Settings, first: int) -> dict[str, Any]:
    """What the gate decided during the run (promoted: passed it, here to @challenger), and
    what became of each challenger on live evidence, from the registry's own tags."""
    versions = lifecycle.recent_versions(demo)
    by_number = {v.version: v for v in versions}
    decided = [v for v in versions if v.version > first and lifecycle.PROMOTED_TAG in v.tags]
    final = tracking.champion_version(demo) or first
    return {
        "holdout_auc_first": round(by_number[first].metrics().get("auc", float("nan")), 4),
        "holdout_auc_final": round(by_number[final].metrics().get("auc", float("nan")), 4),
        "champion_first": first,
        "champion_final": final,
        "promoted": sum(v.promoted for v in decided),
        "kept": sum(not v.promoted for v in decided),
        "challengers": [
            {
                "version": v.version,
                "labelled": int(float(v.tags.get("shadow.labelled", 0))),
                "decision": v.tags.get("shadow.decision", _undecided(v.version, demo)),
            }
            for v in sorted(versions, key=lambda v: v.version)
            if v.tags.get("gate.alias") == "challenger"
        ],
    }


def _undecided(version: int, demo: Settings) -> str:
    """Still in the shadow when the stream ended, or pushed out by a newer challenger."""
    return "in the shadow" if challenger_version(demo) == version else "replaced"


def run_demo(settings: Settings) -> dict:
    with broker_for(settings) as live:
        ensure_topics(live.bootstrap_servers, live.topic_specs(), security=kafka_security(live))
        tracking.connect(live)
        if tracking.champion_version(live) is None:
            log.info("no @champion yet: training the first model (%d trials)", live.tuning_evals)
            print(json.dumps(initialize.initialize(live)), flush=True)
        data = load_data(live.pipeline_spec, live.data_folder, allow_download=live.allow_download)
        demo = replace(live, model_name=live.model_name + DEMO_SUFFIX)
        first = modest_champion(demo, data, by="demo")
        logs = live.home / "logs"
        rows = event_rows(data.test, live.pipeline_spec.schema)
        with processes(demo, logs) as children:
            wait_for_members(
                demo.bootstrap_servers,
                demo.predictor_group,
                2,
                lambda: [n for n, p in children.items() if p.poll() is not None],
                security=kafka_security(live),
            )
            log.info("streaming %d events at %.0f/s through two Predictors", len(rows), demo.rate)
            with Scraper(metrics_ports(children)) as scraper:
                summary = SampleApp(demo, rows, progress=lambda s: print(s, flush=True)).run(
                    threading.Event()
                )
        summary.update(lifecycle_summary(demo, first))
    print("\n".join(highlights(logs)))
    summary["online_auc_by_version"] = online_auc_by_version(scraper.samples)
    summary["drift_alerts"] = scraper.drift_alerts(demo.drift_patience)
    picture = render(scraper.samples, live.home / "demo-metrics.png")
    print(f"the live metrics of this run, drawn: {picture.resolve()}", flush=True)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    try:
        env = {**{f"PIPELINE_{k.upper()}": str(v) for k, v in DEMO_DEFAULTS.items()}, **os.environ}
        settings = parse_settings("demo", __doc__ or "", argv, env=env)
        setup_logging(settings.log_level)
        summary = run_demo(settings)
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    demo = replace(settings, model_name=settings.model_name + DEMO_SUFFIX)
    print("every training run and version: make mlflow-ui, then open", flush=True)
    print(tracking.ui_links(demo), flush=True)
    print(json.dumps(summary))
    return 0 if summary["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
