"""A real Kafka broker for the whole session.

Order: an explicit KAFKA_BOOTSTRAP_SERVERS; else testcontainers (KRaft) where a Docker engine
answers; else the project's own launcher (Maven jars + Java). Under CI=true a missing broker
fails the run loudly instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.broker import LocalBroker
from pipeline.kafka_admin import wait_for_broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


def _no_broker(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"integration tests need a Kafka broker and none could be started: {reason}")
    pytest.skip(f"no Kafka broker: {reason}")


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    explicit = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if explicit:
        wait_for_broker(explicit, timeout_s=30)
        yield explicit
        return
    if _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    if shutil.which("java") is None:
        _no_broker(
            "no KAFKA_BOOTSTRAP_SERVERS, no Docker engine and no Java for the local launcher"
        )
    try:
        broker = LocalBroker(tmp_path_factory.mktemp("kafka")).start(timeout_s=120)
    except Exception as exc:  # any failure here must surface as the reason
        _no_broker(f"the local launcher failed: {exc}")
        raise
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def unique() -> str:
    """A suffix for topic and group names so tests never see each other's messages."""
    return uuid.uuid4().hex[:10]
