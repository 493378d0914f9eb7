"""`@champion` is the truth every Predictor follows; retrains and operators move it safely."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import replace

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pipeline.config.settings import Settings
from pipeline.errors import RegistryError
from pipeline.ops.__main__ import main as ops
from pipeline.registry import artifacts, tracking
from pipeline.registry.challenger import challenger_version
from pipeline.services import predictor as predictor_module
from pipeline.services.predictor import Predictor
from pipeline.services.trainer import Trainer

from .conftest import TopicReader, await_true, in_thread, produce, register, with_instance
from .helpers import make_events, model_ready, retrain_request

# The ops commands' wait for a broker that is away: short, so those tests take seconds.
AWAY_TIMEOUT = ("--ops-timeout-s", "2")


def ops_argv(settings: Settings, *verb: str) -> list[str]:
    return [
        *verb,
        "--bootstrap-servers",
        settings.bootstrap_servers,
        "--home",
        str(settings.home),
        "--model-name",
        settings.model_name,
        "--experiment",
        settings.experiment,
        "--input-topic",
        settings.input_topic,
        "--retrain-topic",
        settings.retrain_topic,
        "--heartbeat-topic",
        settings.heartbeat_topic,
    ]


class SteadyStream(threading.Thread):
    """Events at a steady pace until stopped: the swaps happen under traffic."""

    def __init__(self, settings: Settings, adult, batch: int = 20) -> None:
        super().__init__(daemon=True)
        self.settings, self.adult, self.batch = settings, adult, batch
        self.sent: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        start = 0
        while not self.stop_event.is_set():
            events = make_events(self.adult, self.batch, "s", start=start % 15000)
            events = [(f"s-{start + i}", value) for i, (_, value) in enumerate(events)]
            produce(self.settings, events)
            self.sent += [key for key, _ in events]
            start += self.batch
            time.sleep(0.1)

    def finish(self) -> list[str]:
        self.stop_event.set()
        self.join(30)
        return self.sent


@pytest.mark.both_clients
def test_two_predictors_follow_the_alias_without_announcements_and_a_rollback(
    live: Settings, adult, trained_model, capsys
) -> None:
    settings = replace(live, alias_poll_s=2.0, heartbeat_interval_s=0.5)
    first = Predictor(with_instance(settings, "one"))
    second = Predictor(with_instance(settings, "two"))
    out = TopicReader(settings, settings.predictions_topic)
    v2 = register(settings, trained_model, adult.test.head(50))
    stream = SteadyStream(settings, adult)
    with in_thread(first.run), in_thread(second.run):
        stream.start()
        # Moved the way a person would in the MLflow UI: no announcement at all.
        MlflowClient().set_registered_model_alias(settings.model_name, "champion", str(v2))
        moved = time.monotonic()
        await_true(
            lambda: first.slot.current.version == second.slot.current.version == v2,
            2 * settings.alias_poll_s + 1,
            "both Predictors to follow the alias within two poll intervals",
        )
        assert time.monotonic() - moved <= 2 * settings.alias_poll_s + 1
        tracking.set_champion(settings, v2, by="test")  # so the history knows v2 came after v1
        assert ops(ops_argv(settings, "rollback")) == 0
        await_true(
            lambda: first.slot.current.version == second.slot.current.version == 1,
            2 * settings.alias_poll_s + 1,
            "both Predictors to roll back",
        )
        capsys.readouterr()
        await_true(lambda: _status_lists_both(settings, capsys), 20, "both in ops status")
        sent = stream.finish()
        out.wait_for(lambda r: len({x.key for x in r}) >= len(sent), 60, "every event answered")
    answered = Counter(p["request_id"] for p in out.json())
    assert set(answered) == set(sent) and max(answered.values()) == 1
    assert {p["model_version"] for p in out.json()} == {1, v2}
    assert tracking.champion_version(settings) == 1
    out.close()


def _status_lists_both(settings: Settings, capsys) -> bool:
    assert ops(ops_argv(settings, "status", "--json")) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["champion"] == 1 and report["history"][-1]["version"] == 1
    assert "rollback" in report["history"][-1]["reason"]
    predictors = {p["instance"]: p for p in report["predictors"]}
    if set(predictors) != {"one", "two"} or any(p["version"] != 1 for p in predictors.values()):
        return False
    owned = sorted(part for p in predictors.values() for part in p["partitions"])
    return owned == [0, 1] and all(
        p["lag"] >= 0 and p["last_seen_ms"] > 0 for p in predictors.values()
    )


def test_a_promotion_during_start_up_is_not_missed(
    live: Settings, adult, trained_model, monkeypatch
) -> None:
    """The alias moves and is announced between the Predictor's first look at the registry and
    the positioning of its announcement reader; the timer is too slow to cover it."""
    settings = replace(live, alias_poll_s=3600)
    v2 = register(settings, trained_model, adult.test.head(50))
    real_reader = predictor_module.announcement_reader

    def promote_then_position(factory, topic):
        tracking.set_champion(settings, v2, by="test")
        produce(settings, [("news", model_ready(settings.model_name, v2))], topic=topic)
        return real_reader(factory, topic)

    monkeypatch.setattr(predictor_module, "announcement_reader", promote_then_position)
    predictor = Predictor(settings)
    with in_thread(predictor.run):
        await_true(lambda: predictor.slot.current.version == v2, 10, "the promoted version")


def test_registry_down_while_an_announced_version_loads_then_back(
    live: Settings, adult, trained_model, monkeypatch
) -> None:
    settings = replace(live, alias_poll_s=3600)
    v2 = register(settings, trained_model, adult.test.head(50))
    predictor = Predictor(settings)
    real_load = artifacts.load_scoring_model
    outage = {"left": 0}

    def flaky_load(name: str, version: int, schema):
        if outage["left"] > 0:
            outage["left"] -= 1
            raise RegistryError("registry unreachable (injected)")
        return real_load(name, version, schema)

    out = TopicReader(settings, settings.predictions_topic)
    with in_thread(predictor.run):
        monkeypatch.setattr(artifacts, "load_scoring_model", flaky_load)
        outage["left"] = 3
        tracking.set_champion(settings, v2, by="test")
        produce(settings, [("news", model_ready(settings.model_name, v2))], settings.retrain_topic)
        produce(settings, make_events(adult, 30, "during"))
        out.wait_for(lambda r: len(r) >= 30, what="scoring during the outage")
        await_true(lambda: predictor.slot.current.version == v2, 30, "convergence")
    assert predictor.watcher.registry_errors == 3 and predictor.watcher.refused == 0
    out.close()


@pytest.mark.both_clients
def test_a_replayed_retrain_request_registers_no_second_version(live: Settings) -> None:
    trainer = Trainer(live)
    news = TopicReader(live, live.retrain_topic)
    request = retrain_request(live, "replayed-once")
    with in_thread(trainer.run):
        produce(live, [("r", request)], topic=live.retrain_topic)
        news.wait_for(lambda r: any(b'"model_ready"' in x.value for x in r), 180, "a model")
        produce(live, [("r", request)], topic=live.retrain_topic)
        news.wait_for(lambda r: sum(b'"model_ready"' in x.value for x in r) >= 2, 60, "again")
    ready = [m for m in news.json() if m["type"] == "model_ready"]
    assert ready[0]["version"] == ready[1]["version"] == 2
    assert ready[0]["request_ids"] == ready[1]["request_ids"] == ["replayed-once"]
    assert trainer.trainings == 1
    assert len(MlflowClient().search_model_versions(f"name = '{live.model_name}'")) == 2
    _the_ui_tells_why(live, ready[0])
    news.close()


def _the_ui_tells_why(live: Settings, ready: dict) -> None:
    client = MlflowClient()
    version = client.get_model_version(live.model_name, str(ready["version"]))
    assert version.description and "holdout AUC" in version.description
    tags = version.tags
    assert float(tags["holdout.auc"]) > 0.8 and tags["gate.reason"]
    assert tags["pipeline.promoted"] == str(ready["promoted"]).lower()
    assert json.loads(tags["pipeline.requests"]) == ["replayed-once"]
    assert len(tags["pipeline.dataset_sha256"]) == 64
    assert client.get_registered_model(live.model_name).description
    experiment = mlflow.get_experiment_by_name(live.experiment)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    run = client.get_run(version.run_id)
    assert run.data.tags["gate.reason"] == tags["gate.reason"]
    assert "gate.candidate_auc" in run.data.metrics
    assert run.data.tags["pipeline.retrain_reasons"] == "by_hand=1"


@pytest.mark.parametrize(
    ("verb", "code"),
    [(("promote", "999"), 2), (("promote", "two"), 2), (("frobnicate",), 2)],
)
def test_ops_exit_codes_for_bad_arguments(live: Settings, verb, code) -> None:
    assert ops(ops_argv(live, *verb)) == code


@pytest.mark.parametrize("verb", ["retrain", "status"])
def test_ops_exit_4_when_the_broker_is_unreachable(live: Settings, verb: str) -> None:
    """And says so within --ops-timeout-s (2 s here), not its default 10 s or a client's 30 s."""
    argv = [*ops_argv(replace(live, bootstrap_servers="127.0.0.1:1"), verb), *AWAY_TIMEOUT]
    started = time.monotonic()
    assert ops(argv) == 4
    assert time.monotonic() - started < 9


def test_ops_promote_with_the_broker_away_moves_the_alias_and_says_the_announcement_failed(
    live: Settings, capfd
) -> None:
    version = tracking.champion_version(live)
    moves = len(tracking.champion_history(live))
    assert (
        ops(
            ops_argv(
                replace(live, bootstrap_servers="127.0.0.1:1"),
                "promote",
                str(version),
                *AWAY_TIMEOUT,
            )
        )
        == 4
    )
    err = capfd.readouterr().err
    assert f"@champion names version {version} now, but the announcement failed" in err
    assert "every Predictor follows the alias within --alias-poll-s" in err
    history = tracking.champion_history(live)
    assert len(history) == moves + 1 and history[-1]["version"] == version


def test_ops_challenger_with_the_broker_away_says_which_way_the_alias_moved(
    live: Settings, adult, trained_model, capfd
) -> None:
    away = replace(live, bootstrap_servers="127.0.0.1:1")
    copy = register(live, trained_model, adult.test.head(50))

    assert ops(ops_argv(away, "challenger", str(copy), *AWAY_TIMEOUT)) == 4
    assert f"@challenger names version {copy} now, but the announcement failed" in (
        capfd.readouterr().err
    )
    assert challenger_version(live) == copy

    assert ops(ops_argv(away, "challenger", "--clear", *AWAY_TIMEOUT)) == 4
    assert f"@challenger is cleared (it named version {copy}) now, but the announcement failed" in (
        capfd.readouterr().err
    )
    assert challenger_version(live) is None
