"""Shared fixtures: where the Adult data lives, and the data itself (loaded once)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.data import TabularData, load_data
from pipeline.core.schema import Schema
from pipeline.core.spec import PipelineSpec, load_spec

REPO_ROOT = Path(__file__).resolve().parents[1]


def adult_dir() -> Path:
    configured = os.environ.get("PIPELINE_DATA_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "adult"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return adult_dir()


@pytest.fixture(scope="session")
def adult_spec() -> PipelineSpec:
    return load_spec()  # the default: specs/adult.toml


@pytest.fixture(scope="session")
def schema(adult_spec: PipelineSpec) -> Schema:
    return adult_spec.schema


@pytest.fixture(scope="session")
def adult(data_dir: Path, adult_spec: PipelineSpec) -> TabularData:
    return load_data(adult_spec, data_dir, allow_download=False)


# Library threads meant to live as long as the process (tqdm's progress-bar monitor; the workers
# of MLflow's module-wide artifact-upload pool, which idle until the process ends), by prefix.
PROCESS_WIDE = ("tqdm_monitor", "MlflowLocalArtifactRepository_")


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test() -> Iterator[None]:
    """A thread a test leaves running (a model load, a client) races the tests after it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 15
    while (
        left := [
            t
            for t in threading.enumerate()
            if t not in before and not t.name.startswith(PROCESS_WIDE)
        ]
    ) and time.monotonic() < deadline:
        left[0].join(0.2)
    assert not left, f"threads still running after the test: {[t.name for t in left]}"
