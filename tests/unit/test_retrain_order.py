"""One retrain's steps in order, with the registry and Kafka calls recorded instead of made: the
challenger in the shadow is judged on the evidence it has before a candidate that passed the gate
takes an alias, and a refused candidate neither settles it nor moves one."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.config.settings import Settings
from pipeline.core.messages import RetrainRequest
from pipeline.services import retrain
from pipeline.services.gatekeeper import Decision

VERSION = 7


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call that touches the registry or the broker, as a word in order."""
    seen: list[str] = []

    def events(*_: Any) -> SimpleNamespace:
        seen.append("read events")
        return SimpleNamespace(offset_ranges={0: (0, 10)}, events=[], invalid=0)

    def trained(*_: Any, **__: Any) -> SimpleNamespace:
        seen.append("train and register")
        registered = SimpleNamespace(version=VERSION, run_id="run", uri=f"models:/m/{VERSION}")
        return SimpleNamespace(registered=registered, metrics={"auc": 0.93, "log_loss": 0.27})

    monkeypatch.setattr(retrain, "scored_offsets", lambda settings: {})
    monkeypatch.setattr(retrain, "read_events", events)
    monkeypatch.setattr(
        retrain,
        "build_retrain_dataset",
        lambda *_: SimpleNamespace(lineage={"dataset_sha256": "ab" * 32}, frame=None),
    )
    monkeypatch.setattr(retrain, "champion_point", lambda settings: None)
    monkeypatch.setattr(retrain, "run_training", trained)
    monkeypatch.setattr(
        retrain.lifecycle, "annotate_version", lambda *a, **k: seen.append("tag the version")
    )
    monkeypatch.setattr(retrain, "record", lambda *a, **k: seen.append("record the decision"))
    monkeypatch.setattr(
        retrain.tracking, "set_champion", lambda *a, **k: seen.append("move @champion")
    )
    monkeypatch.setattr(retrain, "challenger_version", lambda settings: None)
    monkeypatch.setattr(retrain, "set_challenger", lambda *a, **k: seen.append("move @challenger"))
    return seen


def run(steps: list[str], monkeypatch: pytest.MonkeyPatch, promoted: bool, to: str) -> Any:
    decision = Decision(promoted, "promoted: clearly better" if promoted else "kept: noise")
    monkeypatch.setattr(retrain, "judge", lambda *_: steps.append("gate") or decision)
    request = RetrainRequest("p-0", "app_messages", {"0": 10}, 10)
    data = SimpleNamespace(train=None, holdout=None)
    settings = replace(Settings(), candidates_to=to)
    return retrain.retrain(settings, [request], data, 1, lambda: steps.append("settle the shadow"))


@pytest.mark.parametrize(
    ("to", "alias_move"), [("champion", "move @champion"), ("challenger", "move @challenger")]
)
def test_a_promoted_candidate_settles_the_shadow_before_it_takes_an_alias(
    steps: list[str], monkeypatch: pytest.MonkeyPatch, to: str, alias_move: str
) -> None:
    ready = run(steps, monkeypatch, promoted=True, to=to)

    assert steps.index("gate") < steps.index("settle the shadow") < steps.index(alias_move)
    assert steps.count("settle the shadow") == 1
    assert ready.version == VERSION
    assert ready.promoted is (to == "champion")


def test_a_refused_candidate_leaves_the_shadow_and_the_aliases_alone(
    steps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = run(steps, monkeypatch, promoted=False, to="champion")

    assert "gate" in steps and "record the decision" in steps
    assert "settle the shadow" not in steps
    assert not [s for s in steps if s.startswith("move ")]
    assert ready.promoted is False


def test_the_version_is_tagged_with_its_requests_before_the_gate(
    steps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Trainer killed during the gate finds this version by its requests, not train again."""
    run(steps, monkeypatch, promoted=True, to="champion")

    assert steps.index("train and register") < steps.index("tag the version") < steps.index("gate")
