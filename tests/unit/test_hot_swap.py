"""What an announcement may make a Predictor do: load the configured model, nothing else."""

from __future__ import annotations

import json

import pytest

from pipeline.core.batching import ServingModel
from pipeline.core.messages import ModelReady, to_json
from pipeline.errors import RegistryError
from pipeline.services import hot_swap
from pipeline.services.hot_swap import ModelSlot, ModelWatcher


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every URI the watcher asks the registry for; the 'model' it gets back is a marker."""
    asked: list[str] = []

    def load(uri: str) -> object:
        asked.append(uri)
        return f"model from {uri}"

    monkeypatch.setattr(hot_swap.tracking, "load_scoring_model", load)
    return asked


def watcher() -> ModelWatcher:
    slot = ModelSlot(ServingModel(model=None, name="adult", version=1))  # type: ignore[arg-type]
    return ModelWatcher(consumer=None, slot=slot, model_name="adult")  # type: ignore[arg-type]


def announce(name: str, version: int, uri: str) -> bytes:
    return to_json(ModelReady(name, version, uri, {}, {}, True, 1, {}))


def test_the_announced_uri_is_ignored_only_name_and_version_are_used(loads) -> None:
    w = watcher()
    w.handle(announce("adult", 2, "file:///tmp/attacker/model.pkl"))
    assert loads == ["models:/adult/2"]
    assert w.slot.swap_if_pending() and w.slot.current.version == 2


def test_another_model_name_is_refused_without_touching_the_registry(loads) -> None:
    w = watcher()
    w.handle(announce("someone-else", 2, "models:/someone-else/2"))
    assert loads == [] and w.refused == 1 and not w.slot.swap_if_pending()


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x04\x95pickle",  # a pickle is bytes like any other: refused as not JSON
        b'{"type": "model_ready", "model_name": "adult"}',
        json.dumps({"type": "model_ready", "model_name": "adult", "version": "2; rm -rf"}).encode(),
        None,
    ],
)
def test_malformed_news_is_ignored(loads, raw) -> None:
    w = watcher()
    w.handle(raw)
    assert loads == [] and not w.slot.swap_if_pending()


def test_a_version_the_registry_cannot_load_is_refused_and_the_old_one_stays(
    monkeypatch,
) -> None:
    def unreachable(uri: str) -> object:
        raise RegistryError(f"cannot load {uri}")

    monkeypatch.setattr(hot_swap.tracking, "load_scoring_model", unreachable)
    w = watcher()
    w.handle(announce("adult", 7, "models:/adult/7"))
    assert w.refused == 1 and not w.slot.swap_if_pending() and w.slot.current.version == 1
