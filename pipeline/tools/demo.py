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

import initialize
from pipeline.config.logs import setup_logging
from pipeline.config.settings import Settings, parse_settings, secret_env, settings_to_argv
from pipeline.core.data import load_adult
from pipeline.errors import PipelineError
from pipeline.kafka_io.admin import ensure_topics, wait_for_members
from pipeline.kafka_io.broker import broker_for
from pipeline.kafka_io.clients import kafka_security
from pipeline.registry import tracking
from pipeline.tools.sample_stream import SampleApp, event_rows

log = logging.getLogger("demo")

ROOT = Path(__file__).resolve().parents[2]
# Paced so that several retrains finish while the stream runs, in about five minutes on 2 cores.
DEMO_DEFAULTS = {
    "rate": 120.0,
    "retrain_every": 1500,
    "retrain_evals": 2,
    "retrain_folds": 3,
    "bad_every": 500,
}
HIGHLIGHTS = (
    "swapped model",
    "refused",
    "promoted",
    "kept the champion",
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
        "trainer": ("trainer.py", settings),
        "predictor-1": ("predictor.py", replace(settings, instance_id="predictor-1")),
        "predictor-2": ("predictor.py", replace(settings, instance_id="predictor-2")),
    }
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


def highlights(logs: Path) -> list[str]:
    lines = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if any(mark in line for mark in HIGHLIGHTS):
                lines.append(f"[{path.stem}] {line}")
    return lines


def run_demo(settings: Settings) -> dict:
    with broker_for(settings) as live:
        ensure_topics(live.bootstrap_servers, live.topic_specs(), security=kafka_security(live))
        tracking.connect(live)
        if tracking.champion_version(live) is None:
            log.info("no @champion yet: training the first model (%d trials)", live.tuning_evals)
            print(json.dumps(initialize.initialize(live)), flush=True)
        logs = live.home / "logs"
        rows = event_rows(load_adult(live.data_dir, allow_download=live.allow_download).test)
        with processes(live, logs) as children:
            wait_for_members(
                live.bootstrap_servers,
                live.predictor_group,
                2,
                lambda: [n for n, p in children.items() if p.poll() is not None],
                security=kafka_security(live),
            )
            log.info("streaming %d events at %.0f/s through two Predictors", len(rows), live.rate)
            summary = SampleApp(live, rows, progress=lambda s: print(s, flush=True)).run(
                threading.Event()
            )
    print("\n".join(highlights(logs)))
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
    print("every training run: make mlflow-ui, then open http://127.0.0.1:5000", flush=True)
    print(json.dumps(summary))
    return 0 if summary["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
