"""A model registry that can go away: an MLflow tracking server on loopback, and the outage fault.

The embedded sqlite store cannot be unreachable; a tracking server can, so this fault runs the
Trainer and a Predictor against one it stops and starts again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from pipeline.core.scoring import ScoringModel
from pipeline.kafka_io.admin import wait_for_members
from pipeline.kafka_io.clients import kafka_security
from pipeline.kafka_io.processes import free_port
from pipeline.registry import tracking
from pipeline.tools.chaos.faults import Stage, request_retrain
from pipeline.tools.chaos.harness import FaultResult, Script, isolated, stop_all
from pipeline.tools.chaos.news import RetrainNews

# Without these MLflow's client retries a refused connection for minutes before it reports.
FAST_FAILING_CLIENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


class RegistryServer:
    """`mlflow server` on loopback. Its store is a sqlite file under `root` unless
    `backend_store_uri` names another (PostgreSQL in tests/integration/test_mlflow_postgres.py);
    that URI reaches the server in its environment, never on its command line, as it may hold a
    password."""

    def __init__(self, root: Path, backend_store_uri: str = "") -> None:
        self.root = root
        self.backend_store_uri = backend_store_uri or f"sqlite:///{root / 'mlflow.db'}"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> RegistryServer:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", "1"]
        argv += ["--artifacts-destination", str(self.root / "artifacts")]
        env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": self.backend_store_uri}
        with (self.root / "server.log").open("ab") as out:
            # its own session: the server forks workers, and stop() must take them all down
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"the MLflow server did not answer within {timeout_s:.0f}s")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        self.process = None


def registry_outage(stage: Stage, model: ScoringModel, example: pd.DataFrame) -> FaultResult:
    """Registry down during a retrain: failure reported, Trainer alive, success once it is back."""
    server = RegistryServer(stage.logs / "registry").start()
    settings = replace(
        isolated(stage.settings, "registry"), tracking_uri=server.uri, retry_backoff_s=2.0
    )
    trainer = Script("trainer.py", settings, stage.logs, env=FAST_FAILING_CLIENT)
    news = RetrainNews(settings)
    try:
        _register_champion(settings, model, example)
        trainer.start()
        _await_member(settings, trainer)
        server.stop()
        request_retrain(settings)
        failed = news.wait_for("training_failed", 180, [trainer])
        alive = trainer.process is not None and trainer.process.poll() is None
        server.start()
        back = time.time()
        ready = news.wait_for("model_ready", 300, [trainer])
        recovered = time.time() - back
        server.stop()
        refused = _predictor_refuses_to_start(settings, stage.logs)
        clean_exit = stop_all([trainer])
    finally:
        trainer.stop()
        server.stop()
        news.close()
        tracking.connect(stage.settings)  # this process's MLflow client back to the main store
    return FaultResult(
        "registry down during a retrain",
        1,
        0,
        0,
        0,
        0,
        recovered,
        trainer.crashes,
        crash_notes=trainer.crash_notes,
        checks={
            "the Trainer reported the failure": failed is not None,
            "the Trainer kept running": alive,
            "it succeeded once the registry was back": ready is not None,
            "a Predictor without the registry exits 4 with a message": refused,
            "clean stop": clean_exit,
        },
    )


def _register_champion(settings: Any, model: ScoringModel, example: pd.DataFrame) -> None:
    tracking.connect(settings)
    with mlflow.start_run(run_name="chaos-registry-champion"):
        version = tracking.log_model_version(settings, model, example).version
    tracking.set_champion(settings, version)


def _await_member(settings: Any, trainer: Script) -> None:
    wait_for_members(
        settings.bootstrap_servers,
        settings.trainer_group,
        1,
        lambda: [trainer] if trainer.process and trainer.process.poll() is not None else [],
        settle_s=1.0,
        security=kafka_security(settings),
    )


def _predictor_refuses_to_start(settings: Any, logs: Path) -> bool:
    predictor = Script("predictor.py", settings, logs, env=FAST_FAILING_CLIENT).start()
    assert predictor.process is not None
    try:
        code = predictor.process.wait(90)
    except subprocess.TimeoutExpired:
        predictor.process.kill()
        return False
    log_text = (logs / f"predictor-{settings.instance_id}.log").read_text(errors="replace")
    return code == 4 and f"MLflow at {settings.tracking_uri}" in log_text
