"""The Predictor's collector settings: long-lived objects frozen, and a micro-batch's worth of
young objects no longer sets off a collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipeline.services.collector import YOUNG_GENERATION, settle_collector


@pytest.fixture
def collector() -> Iterator[list[int]]:
    """Collections by generation while the test runs; the interpreter's settings restored."""
    before = gc.get_threshold()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield collections
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
        gc.set_threshold(*before)


def _a_batch(events: int = 500) -> list[tuple[str, tuple[float, ...]]]:
    """What a scored micro-batch keeps alive until it is published: a few tuples an event."""
    return [(f"request-{i}", (float(i), float(i) / 2)) for i in range(events)]


def test_a_micro_batch_sets_off_no_collection_once_settled(collector) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's default
    gc.collect()
    collector.clear()
    kept = [_a_batch() for _ in range(2)]
    assert collector, "the default young generation collects within a batch"
    settle_collector()
    assert gc.get_threshold()[0] == YOUNG_GENERATION
    assert gc.get_freeze_count() > 0  # what existed before the loop is out of the collector's way
    collector.clear()
    for _ in range(4):  # batches come and go, as the loop makes and publishes them
        kept = [_a_batch() for _ in range(2)]
    assert collector == []
    assert len(kept) == 2
