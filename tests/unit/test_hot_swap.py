"""What an announcement may make a Predictor do: follow @champion of the configured model."""

from __future__ import annotations

import json

import pytest

from pipeline.core.batching import ServingModel
from pipeline.core.messages import ModelReady, to_json
from pipeline.errors import ModelError, RegistryError
from pipeline.services import hot_swap
from pipeline.services.hot_swap import ModelSlot, ModelWatcher


class Registry:
    """The alias and the loads a watcher asks for; `down` makes every call fail."""

    def __init__(self, champion: int = 1) -> None:
        self.champion: int | None = champion
        self.loads: list[str] = []
        self.down = False
        self.broken: set[int] = set()

    def read_alias(self) -> int | None:
        if self.down:
            raise RegistryError("registry unreachable")
        return self.champion

    def load(self, version: int) -> ServingModel:
        if self.down:
            raise RegistryError("registry unreachable")
        self.loads.append(f"models:/adult/{version}")
        if version in self.broken:
            raise ModelError(f"version {version} failed its checks")
        return ServingModel(model=None, name="adult", version=version)  # type: ignore[arg-type]


@pytest.fixture
def registry() -> Registry:
    return Registry()


def watcher(registry: Registry) -> ModelWatcher:
    slot = ModelSlot(ServingModel(model=None, name="adult", version=1))  # type: ignore[arg-type]
    return ModelWatcher(
        consumer=None,  # type: ignore[arg-type]
        slot=slot,
        model_name="adult",
        read_alias=registry.read_alias,
        load=registry.load,
        poll_s=10,
    )


def announce(name: str, version: int, uri: str) -> bytes:
    return to_json(ModelReady(name, version, uri, {}, {}, True, 1, {}))


def test_the_announced_uri_is_ignored_only_the_alias_is_followed(registry) -> None:
    w = watcher(registry)
    registry.champion = 2
    w.handle(announce("adult", 2, "file:///tmp/attacker/model.pkl"))
    assert registry.loads == ["models:/adult/2"]
    assert w.slot.swap_if_pending() and w.slot.current.version == 2


def test_an_announced_version_the_alias_does_not_name_is_not_served(registry) -> None:
    w = watcher(registry)
    w.handle(announce("adult", 7, "models:/adult/7"))
    assert registry.loads == [] and not w.slot.swap_if_pending()


def test_another_model_name_is_refused_without_touching_the_registry(registry) -> None:
    w = watcher(registry)
    registry.champion = 2
    w.handle(announce("someone-else", 2, "models:/someone-else/2"))
    assert registry.loads == [] and w.refused == 1 and not w.slot.swap_if_pending()


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x04\x95pickle",  # a pickle is bytes like any other: refused as not JSON
        b'{"type": "model_ready", "model_name": "adult"}',
        json.dumps({"type": "model_ready", "model_name": "adult", "version": "2; rm -rf"}).encode(),
        None,
    ],
)
def test_malformed_news_is_ignored(registry, raw) -> None:
    w = watcher(registry)
    registry.champion = 2
    w.handle(raw)
    assert registry.loads == [] and not w.slot.swap_if_pending()


def test_an_alias_moved_without_any_announcement_is_followed_on_the_timer(registry) -> None:
    w = watcher(registry)
    registry.champion = 3
    w.reconcile()
    assert w.slot.swap_if_pending() and w.slot.current.version == 3
    registry.champion = 1  # a rollback is just a move
    w.reconcile()
    assert w.slot.swap_if_pending() and w.slot.current.version == 1
    w.reconcile()
    assert registry.loads == ["models:/adult/3", "models:/adult/1"]


def test_registry_errors_are_retried_while_the_old_model_keeps_serving(registry) -> None:
    w = watcher(registry)
    registry.champion, registry.down = 2, True
    w.handle(announce("adult", 2, "models:/adult/2"))
    assert w.refused == 0 and w.registry_errors == 1 and not w.slot.swap_if_pending()
    assert w._due - hot_swap.time.monotonic() <= hot_swap.FIRST_RETRY_S
    w.reconcile()
    assert w.registry_errors == 2 and w._retry_s == 2 * hot_swap.FIRST_RETRY_S
    registry.down = False
    w.reconcile()
    assert w.slot.swap_if_pending() and w.slot.current.version == 2


def test_a_version_that_fails_its_checks_is_refused_once_and_not_loaded_again(registry) -> None:
    w = watcher(registry)
    registry.champion = 5
    registry.broken.add(5)
    w.reconcile()
    w.reconcile()
    assert w.refused == 1 and registry.loads == ["models:/adult/5"]
    assert not w.slot.swap_if_pending() and w.slot.current.version == 1
    registry.champion = 6
    w.reconcile()
    assert w.slot.swap_if_pending() and w.slot.current.version == 6
