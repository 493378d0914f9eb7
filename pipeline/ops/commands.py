"""The operator's verbs. Each move of `@champion` or `@challenger` is checked, recorded and
announced."""

from __future__ import annotations

import getpass
import logging
from typing import Any

from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.core.messages import REASON_BY_HAND, ModelReady, RetrainRequest, now_ms, to_json
from pipeline.errors import BrokerError, ConfigError
from pipeline.kafka_io.clients import make_producer
from pipeline.ops.heartbeats import connect_timeout_ms, latest_heartbeats
from pipeline.registry import artifacts, challenger, lifecycle, tracking

log = logging.getLogger(__name__)

VERSIONS_SHOWN = 10


def status(settings: Settings) -> dict[str, Any]:
    tracking.connect(settings)
    versions = lifecycle.recent_versions(settings, VERSIONS_SHOWN)
    return {
        "champion": tracking.champion_version(settings),
        "challenger": challenger.challenger_version(settings),
        "history": tracking.champion_history(settings),
        "versions": [
            {
                "version": info.version,
                "created_ms": info.created_ms,
                "promoted": info.promoted,
                "holdout": info.metrics(),
                "gate": info.tags.get("gate.reason", ""),
                "requests": len(info.request_ids),
                "description": info.description,
            }
            for info in versions
        ],
        "predictors": [
            {
                "instance": beat.instance,
                "version": beat.version,
                "partitions": beat.partitions,
                "lag": beat.lag,
                "last_seen_ms": beat.sent_at_ms,
            }
            for beat in latest_heartbeats(settings)
            if beat.model_name == settings.model_name
        ],
    }


def promote(settings: Settings, version: int, reason: str = "promoted by hand") -> int:
    """Check the version as a Predictor would, move the alias, announce."""
    tracking.connect(settings)
    if not lifecycle.version_exists(settings, version):
        raise ConfigError(f"{settings.model_name} has no version {version}")
    artifacts.load_scoring_model(
        settings.model_name, version, settings.pipeline_spec.schema
    )  # ModelError: exit 5
    tracking.set_champion(settings, version, by=f"ops ({getpass.getuser()})", reason=reason)
    _announce(
        settings, _announcement(settings, version, reason), f"@champion names version {version}"
    )
    return version


def rollback(settings: Settings) -> int:
    """Back to the champion before the current one, by the alias history."""
    tracking.connect(settings)
    current = tracking.champion_version(settings)
    for entry in reversed(tracking.champion_history(settings)):
        version = int(entry.get("version", 0))
        if version and version != current:
            return promote(settings, version, reason=f"rollback from version {current}")
    raise ConfigError(f"{settings.model_name} has no earlier champion to roll back to")


def set_challenger(settings: Settings, version: int, reason: str = "set by hand") -> int:
    """Check the version as a Predictor would, make it @challenger, announce: every Predictor
    shadows it from its next batch."""
    tracking.connect(settings)
    if not lifecycle.version_exists(settings, version):
        raise ConfigError(f"{settings.model_name} has no version {version}")
    if version == tracking.champion_version(settings):
        raise ConfigError(f"version {version} is @champion; a challenger must be another version")
    artifacts.load_scoring_model(
        settings.model_name, version, settings.pipeline_spec.schema
    )  # ModelError: exit 5
    challenger.set_challenger(settings, version, by=f"ops ({getpass.getuser()})", reason=reason)
    _announce(
        settings,
        _announcement(settings, version, reason, promoted=False),
        f"@challenger names version {version}",
    )
    return version


def clear_challenger(settings: Settings, reason: str = "cleared by hand") -> int | None:
    """No more shadow scoring: the alias goes, the Predictors hear it and drop the model."""
    tracking.connect(settings)
    version = challenger.clear_challenger(settings, by=f"ops ({getpass.getuser()})", reason=reason)
    if version is not None:
        _announce(
            settings,
            _announcement(settings, version, reason, promoted=False),
            f"@challenger is cleared (it named version {version})",
        )
    return version


def request_retrain(settings: Settings, reason: str = "") -> RetrainRequest:
    request = RetrainRequest(
        instance_id=f"ops-{getpass.getuser()}",
        topic=settings.input_topic,
        end_offsets={},
        labelled_events=0,
        reason=f"{REASON_BY_HAND}: {reason}" if reason else REASON_BY_HAND,
    )
    _send(settings, request)
    return request


def _announcement(
    settings: Settings, version: int, reason: str, promoted: bool = True
) -> ModelReady:
    return ModelReady(
        model_name=settings.model_name,
        version=version,
        uri=tracking.model_uri(settings.model_name, version),
        metrics={},
        champion_metrics={},
        promoted=promoted,
        requests=0,
        end_offsets={},
        announced_at_ms=now_ms(),
        gate={"promoted": promoted, "reason": reason},
    )


def _announce(settings: Settings, message: ModelReady, moved: str) -> None:
    """The alias is the truth and it has moved: an announcement that fails only delays the
    Predictors until their next alias poll, and the operator is told exactly that."""
    try:
        _send(settings, message)
    except BrokerError as exc:
        raise BrokerError(
            f"{moved} now, but the announcement failed ({exc}); every Predictor follows the "
            f"alias within --alias-poll-s ({settings.alias_poll_s:g} s)"
        ) from exc


def _send(settings: Settings, message: object) -> None:
    """Acknowledged within --ops-timeout-s, or exit 4. Then the producer closes without
    waiting: an operator told it failed should not have it sent on for that long again (a
    request already on its way may still land, as any message sent twice may)."""
    producer = make_producer(settings, "ops", bootstrap_timeout_ms=connect_timeout_ms(settings))
    linger_s = settings.ops_timeout_s
    try:
        producer.send(
            settings.retrain_topic, value=to_json(message), key=settings.model_name.encode()
        ).get(timeout=settings.ops_timeout_s)
    except KafkaError as exc:
        linger_s = 0.0
        raise BrokerError(f"cannot write to {settings.retrain_topic}: {exc}") from exc
    finally:
        producer.close(timeout=linger_s)
