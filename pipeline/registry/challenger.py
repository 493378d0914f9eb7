"""The `@challenger` alias: a version that scores live traffic in the shadow of `@champion`.

Predictors follow it as they follow `@champion` (on announcements and on a timer), score a
share of the events with it and publish those scores apart; nothing upstream ever reads them.
MLflow keeps no history of an alias, so every move is also appended to a tag of the model.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from pipeline.config.settings import Settings
from pipeline.errors import RegistryError
from pipeline.registry import tracking

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
HISTORY_TAG = "pipeline.challenger_history"
HISTORY_KEPT = 50


def challenger_version(settings: Settings) -> int | None:
    """The version behind `@challenger`, or None when there is none."""
    return tracking.alias_version(settings, CHALLENGER)


def set_challenger(settings: Settings, version: int, by: str = "", reason: str = "") -> None:
    try:
        MlflowClient().set_registered_model_alias(settings.model_name, CHALLENGER, str(version))
    except MlflowException as exc:
        raise RegistryError(f"cannot set alias {CHALLENGER} on version {version}: {exc}") from exc
    _remember(settings, {"version": version, "action": "set", "by": by, "reason": reason})
    log.info("@%s of %s -> version %d (%s)", CHALLENGER, settings.model_name, version, by or "?")


def clear_challenger(
    settings: Settings, by: str = "", reason: str = "", expected: int | None = None
) -> int | None:
    """The version that was `@challenger` (None if there was none); the alias is gone after.
    `expected`: clear only if the alias still names that version (an operator may have set
    another one since it was judged)."""
    version = challenger_version(settings)
    if version is None or (expected is not None and version != expected):
        return None
    try:
        MlflowClient().delete_registered_model_alias(settings.model_name, CHALLENGER)
    except MlflowException as exc:
        raise RegistryError(f"cannot clear alias {CHALLENGER}: {exc}") from exc
    _remember(settings, {"version": version, "action": "cleared", "by": by, "reason": reason})
    log.info(
        "@%s of %s cleared (was version %d): %s", CHALLENGER, settings.model_name, version, reason
    )
    return version


def challenger_history(settings: Settings) -> list[dict[str, Any]]:
    """Every move of @challenger made through the pipeline, oldest first."""
    return tracking.alias_history(settings, HISTORY_TAG)


def _remember(settings: Settings, entry: dict[str, Any]) -> None:
    history = challenger_history(settings)
    history.append({**entry, "at_ms": int(time.time() * 1000)})
    try:
        MlflowClient().set_registered_model_tag(
            settings.model_name, HISTORY_TAG, json.dumps(history[-HISTORY_KEPT:])
        )
    except MlflowException as exc:
        raise RegistryError(f"cannot record the move of @{CHALLENGER}: {exc}") from exc


def log_shadow(
    settings: Settings,
    version: int,
    figures: dict[str, float],
    step: int,
    tags: dict[str, str] | None = None,
) -> None:
    """The live comparison as `shadow.<figure>` metrics of the challenger's own training run
    (step = labelled events so far), so the MLflow UI plots it; a verdict goes on the run and
    on the version as tags."""
    client = MlflowClient()
    stamp = int(time.time() * 1000)
    try:
        run_id = client.get_model_version(settings.model_name, str(version)).run_id
        finite = {k: v for k, v in figures.items() if v == v}
        if run_id:
            client.log_batch(
                run_id, metrics=[Metric(f"shadow.{k}", v, stamp, step) for k, v in finite.items()]
            )
        for key, value in (tags or {}).items():
            client.set_model_version_tag(settings.model_name, str(version), key, value)
            if run_id:
                client.set_tag(run_id, key, value)
    except MlflowException as exc:
        raise RegistryError(f"cannot log the shadow evidence of version {version}: {exc}") from exc
