"""MLflow on PostgreSQL, as docker-compose and deploy/ run it: a retrain, the gate's promotion and
every Predictor's hot-swap go through a real MLflow server whose store is a real PostgreSQL.

The PostgreSQL comes from Debian's package (started here, on a free loopback port); without its
binaries the test skips, and under CI=true it fails instead, like a missing Kafka broker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from pipeline.config.settings import Settings
from pipeline.registry import tracking
from pipeline.services.predictor import Predictor
from pipeline.services.trainer import Trainer
from pipeline.tools.chaos.registry import RegistryServer
from pipeline.tools.sandbox import modest_champion

from .conftest import TopicReader, await_true, in_thread, produce
from .helpers import make_events
from .postgres import LocalPostgres, find_binaries


def _no_postgres(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the MLflow-on-PostgreSQL test needs PostgreSQL: {reason}")
    pytest.skip(f"no PostgreSQL: {reason}")


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    binaries = find_binaries()
    if binaries is None:
        _no_postgres("no initdb/postgres binaries (Debian: apt-get install postgresql)")
        return
    try:
        server = LocalPostgres(binaries)
    except KeyError:
        _no_postgres("running as root and there is no `postgres` user to run the server as")
        return
    try:
        server.start()
    except Exception as exc:  # the reason must surface, with the server's own log
        server.stop()
        _no_postgres(f"it did not start: {exc}")
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_on_postgres(postgres: LocalPostgres, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` with --backend-store-uri postgresql+psycopg://... (given in its env)."""
    server = RegistryServer(tmp_path / "mlflow", backend_store_uri=postgres.sqlalchemy_uri())
    server.start(timeout_s=180)  # the first start creates MLflow's schema: many migrations
    try:
        yield server.uri
    finally:
        server.stop()


def test_retrain_promotion_and_hot_swap_through_mlflow_on_postgres(
    live: Settings, adult, postgres: LocalPostgres, mlflow_on_postgres: str
) -> None:
    # The first 400 labelled events make one retrain request; the modest champion is beaten
    # through the real gate, the Trainer moves @champion, the Predictor swaps.
    settings = replace(live, tracking_uri=mlflow_on_postgres, retrain_every=400)
    out = TopicReader(settings, settings.predictions_topic)
    try:
        modest = modest_champion(settings, adult, by="test")
        predictor, trainer = Predictor(settings), Trainer(settings)
        with in_thread(trainer.run), in_thread(predictor.run):
            produce(settings, make_events(adult, 400, "a"))
            out.wait_for(lambda r: len(r) >= 400, what="the first 400 predictions")
            await_true(
                lambda: predictor.slot.current.version == modest + 1, 120, "the retrained model"
            )
            produce(settings, make_events(adult, 100, "b", start=400))
            out.wait_for(lambda r: len(r) >= 500, what="all 500 predictions")
        later = {p["model_version"] for p in out.json() if p["request_id"].startswith("b-")}
        assert later == {modest + 1}
        assert tracking.champion_version(settings) == modest + 1
        # The registry's truth is in PostgreSQL's tables, read here without MLflow.
        with psycopg.connect(postgres.dsn()) as conn:
            alias = conn.execute(
                "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = %s",
                (settings.model_name, tracking.CHAMPION),
            ).fetchone()
            versions = conn.execute(
                "SELECT count(*) FROM model_versions WHERE name = %s", (settings.model_name,)
            ).fetchone()
        assert alias == (modest + 1,)
        assert versions == (modest + 1,)
    finally:
        out.close()
        tracking.connect(live)  # this process's MLflow client back to the tests' own store
