"""What the registry tells people about each version: metrics, the gate's decision, its requests.

Everything is written as version tags and a one-line description, so the MLflow UI says why
each version was or was not promoted; the same tags let a restarted Trainer find the version
it already registered for a request instead of training again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.config.settings import Settings
from pipeline.errors import RegistryError

log = logging.getLogger(__name__)

REQUESTS_TAG = "pipeline.requests"
PROMOTED_TAG = "pipeline.promoted"
# A restarted Trainer looks for earlier answers among this many of the newest versions.
RECENT_VERSIONS = 100


@dataclass(frozen=True)
class VersionInfo:
    version: int
    tags: dict[str, str]
    description: str
    created_ms: int

    @property
    def request_ids(self) -> list[str]:
        try:
            ids = json.loads(self.tags.get(REQUESTS_TAG, "[]"))
        except ValueError:
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []

    @property
    def promoted(self) -> bool:
        return self.tags.get(PROMOTED_TAG) == "true"

    def metrics(self, prefix: str = "holdout.") -> dict[str, float]:
        out = {}
        for key, value in self.tags.items():
            if key.startswith(prefix):
                try:
                    out[key[len(prefix) :]] = float(value)
                except ValueError:
                    continue
        return out


def annotate_version(
    settings: Settings, version: int, tags: Mapping[str, Any], description: str
) -> None:
    client = MlflowClient()
    try:
        for key, value in tags.items():
            client.set_model_version_tag(settings.model_name, str(version), key, str(value))
        client.update_model_version(settings.model_name, str(version), description=description)
    except MlflowException as exc:
        raise RegistryError(f"cannot annotate version {version}: {exc}") from exc


def requests_tag(request_ids: Iterable[str]) -> dict[str, str]:
    return {REQUESTS_TAG: json.dumps(sorted(set(request_ids)))}


def recent_versions(settings: Settings, limit: int = RECENT_VERSIONS) -> list[VersionInfo]:
    """The newest versions first."""
    try:
        found = MlflowClient().search_model_versions(
            f"name = '{settings.model_name}'", max_results=limit, order_by=["version_number DESC"]
        )
    except MlflowException as exc:
        raise RegistryError(f"cannot list versions of {settings.model_name}: {exc}") from exc
    return [
        VersionInfo(
            version=int(v.version),
            tags=dict(v.tags or {}),
            description=v.description or "",
            created_ms=int(v.creation_timestamp or 0),
        )
        for v in found
    ]


def answered_requests(settings: Settings, request_ids: Iterable[str]) -> dict[str, VersionInfo]:
    """request id -> the version registered for it, among the recent versions."""
    wanted = set(request_ids)
    answers: dict[str, VersionInfo] = {}
    for info in recent_versions(settings):
        for request_id in wanted.intersection(info.request_ids):
            answers.setdefault(request_id, info)
    return answers


def version_exists(settings: Settings, version: int) -> bool:
    try:
        MlflowClient().get_model_version(settings.model_name, str(version))
        return True
    except MlflowException as exc:
        if str(exc.error_code) in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return False
        raise RegistryError(f"cannot read version {version}: {exc}") from exc
