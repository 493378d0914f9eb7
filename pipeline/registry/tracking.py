"""MLflow adapter: experiment, runs, registry and aliases. The only module that talks to MLflow."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from pipeline.config.settings import Settings
from pipeline.core import plots
from pipeline.core.model_checks import check_model
from pipeline.core.schema import FEATURE_FIELDS, LABEL_FIELD, NUMERIC_FIELDS
from pipeline.core.scoring import ScoringModel
from pipeline.errors import ModelError, RegistryError
from pipeline.registry import pyfunc_model

log = logging.getLogger(__name__)

CHAMPION = "champion"

# Every input column is optional: a missing value is scored as missing, never refused.
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("double" if name in NUMERIC_FIELDS else "string", name, required=False)
            for name in FEATURE_FIELDS
        ]
    ),
    outputs=Schema([ColSpec("double", "probability"), ColSpec("string", "label")]),
)


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: int
    run_id: str
    uri: str


def connect(settings: Settings) -> str:
    """Point MLflow at the configured store and make sure the experiment exists; returns its id."""
    if not settings.tracking_uri:
        settings.home.mkdir(parents=True, exist_ok=True)
    if settings.mlflow_username:  # MLflow's client reads its credentials from these variables
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.mlflow_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = settings.mlflow_password
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    try:
        experiment = mlflow.get_experiment_by_name(settings.experiment)
        if experiment is None:
            location = None if settings.tracking_uri else settings.artifact_root.as_uri()
            experiment_id = mlflow.create_experiment(
                settings.experiment, artifact_location=location
            )
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        return str(experiment_id)
    except MlflowException as exc:
        raise RegistryError(f"MLflow at {settings.mlflow_uri} is not usable: {exc}") from exc
    except OSError as exc:
        raise RegistryError(f"MLflow at {settings.mlflow_uri} is unreachable: {exc}") from exc


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    names = ("lightgbm", "numpy", "pandas", "scikit-learn", "mlflow")
    return [f"{name}=={version(name)}" for name in names]


def log_model_version(
    settings: Settings,
    model: ScoringModel,
    example: pd.DataFrame,
    signature: ModelSignature = SIGNATURE,
) -> RegisteredModel:
    """Log the model into the active run and register it as a new version.

    `signature` is there for the fault tests, which register a version whose declared input
    schema does not match the events, and check that the Predictors refuse it.
    """
    inputs = example[list(FEATURE_FIELDS)]
    with tempfile.TemporaryDirectory() as tmp:
        files = model.save(Path(tmp))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc_model.__file__,
            artifacts={key: str(path) for key, path in files.items()},
            signature=signature,
            input_example=inputs.head(3),
            pip_requirements=_pip_requirements(),
            registered_model_name=settings.model_name,
        )
    version = int(info.registered_model_version)
    run_id = info.run_id
    return RegisteredModel(
        settings.model_name, version, run_id, model_uri(settings.model_name, version)
    )


def log_figures(model: ScoringModel, truth: Any, proba: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        importance = plots.feature_importance_plot(model, Path(tmp) / "feature_importance.png")
        mlflow.log_artifact(str(importance), "plots")
        mlflow.log_artifact(str(plots.roc_plot(truth, proba, Path(tmp) / "roc_curve.png")), "plots")


def log_dataset(frame: pd.DataFrame, name: str, source_url: str, context: str) -> None:
    source = HTTPDatasetSource(url=source_url)
    dataset = from_pandas(frame, source=source, name=name, targets=LABEL_FIELD)
    mlflow.log_input(dataset, context=context)


def model_uri(name: str, version: int) -> str:
    return f"models:/{name}/{version}"


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"


def record_decision(run_id: str, promoted: bool, champion_metrics: dict[str, float]) -> None:
    """The gate's verdict stays on the run, next to the metrics it was based on."""
    client = MlflowClient()
    client.set_tag(run_id, "pipeline.promoted", str(promoted).lower())
    for key, value in champion_metrics.items():
        client.log_metric(run_id, f"champion_{key}", value)


def record_gate(run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
    """The paired gate's decision (`GateDecision.as_tags()` / `.as_metrics()`) on the run."""
    client = MlflowClient()
    for tag, text in tags.items():
        client.set_tag(run_id, tag, text)
    for metric, number in metrics.items():
        client.log_metric(run_id, metric, number)


def version_params(settings: Settings, version: int) -> dict[str, str]:
    """The parameters logged by the run that made `version`: a retrain's warm start."""
    client = MlflowClient()
    try:
        run_id = client.get_model_version(settings.model_name, str(version)).run_id
        return dict(client.get_run(run_id).data.params) if run_id else {}
    except MlflowException as exc:
        raise RegistryError(f"cannot read the run of version {version}: {exc}") from exc


def set_champion(settings: Settings, version: int) -> None:
    try:
        MlflowClient().set_registered_model_alias(settings.model_name, CHAMPION, str(version))
    except MlflowException as exc:
        raise RegistryError(f"cannot set alias {CHAMPION} on version {version}: {exc}") from exc


def champion_version(settings: Settings) -> int | None:
    """The version behind `@champion`, or None when no model has been promoted yet."""
    try:
        return int(MlflowClient().get_model_version_by_alias(settings.model_name, CHAMPION).version)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise RegistryError(
            f"cannot read alias {CHAMPION} of {settings.model_name}: {exc}"
        ) from exc


def load_scoring_model(uri: str) -> ScoringModel:
    """Load through MLflow and check it; the hot path then calls our object, not pyfunc."""
    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise ModelError(f"cannot load {uri}: {exc}") from exc
    except OSError as exc:
        raise RegistryError(f"cannot load {uri}: {exc}") from exc
    try:
        wrapped = getattr(pyfunc.unwrap_python_model(), "model", None)
    except MlflowException as exc:
        raise ModelError(f"{uri} is not a python model of this pipeline: {exc}") from exc
    if not isinstance(wrapped, ScoringModel):
        raise ModelError(f"{uri} is not a model of this pipeline")
    schema = pyfunc.metadata.get_input_schema()
    check_model(wrapped, schema.input_names() if schema is not None else None)
    return wrapped
