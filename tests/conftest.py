"""Shared fixtures: where the Adult data lives, and the data itself (loaded once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.data import AdultData, load_adult

REPO_ROOT = Path(__file__).resolve().parents[1]


def adult_dir() -> Path:
    configured = os.environ.get("PIPELINE_DATA_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "adult"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return adult_dir()


@pytest.fixture(scope="session")
def adult(data_dir: Path) -> AdultData:
    return load_adult(data_dir, allow_download=False)
