"""MLflow adapter: experiment, runs, registry and aliases. The only module that talks to MLflow."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
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
from mlflow.types import ColSpec, Schema, TensorSpec

from pipeline.config.settings import Settings
from pipeline.core import plots
from pipeline.core.schema import Schema as PipelineSchema
from pipeline.core.scoring import ScoringModel
from pipeline.core.spec import PipelineSpec
from pipeline.errors import RegistryError
from pipeline.registry import artifacts, pyfunc_model

log = logging.getLogger(__name__)

CHAMPION = "champion"
HISTORY_TAG = "pipeline.champion_history"
HISTORY_KEPT = 50
# MLflow 3 opens an experiment on its GenAI overview unless it is marked as model development.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
SPEC_TAGS = ("pipeline.spec_name", "pipeline.spec_sha256", "pipeline.schema_fingerprint")
OUTPUTS = Schema([ColSpec("double", "probability"), ColSpec("string", "label")])


def spec_tag_values(spec: PipelineSpec) -> tuple[str, str, str]:
    return spec.name, spec.sha256, spec.schema.fingerprint


def model_description(spec: PipelineSpec, input_topic: str) -> str:
    what = spec.description or f"Probability of {spec.schema.positive_label!r}"
    return (
        f"{what.rstrip('.')}: the probability of {spec.schema.positive_label!r}, scored by the "
        f"Predictors from the events on {input_topic} (pipeline spec {spec.name!r}, fields "
        f"{', '.join(spec.schema.feature_fields)}). Retrained by the Trainer from the original "
        "data and recent labelled events; the @champion alias names the version every Predictor "
        "serves. Version tags hold each version's holdout metrics and gate decision."
    )


def signature_for(schema: PipelineSchema) -> ModelSignature:
    """Every input column is optional: a missing value is scored as missing, never refused."""
    numeric = set(schema.numeric_fields)
    columns: list[ColSpec | TensorSpec] = [
        ColSpec("double" if name in numeric else "string", name, required=False)
        for name in schema.feature_fields
    ]
    return ModelSignature(inputs=Schema(columns), outputs=OUTPUTS)


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
    # A model load downloads a few small files; progress bars would only clutter service logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
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
                settings.experiment, artifact_location=location, tags=EXPERIMENT_KIND
            )
        else:
            experiment_id = experiment.experiment_id
            if experiment.tags.get("mlflow.experimentKind") is None:
                for key, value in EXPERIMENT_KIND.items():
                    MlflowClient().set_experiment_tag(experiment_id, key, value)
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
    signature: ModelSignature | None = None,
) -> RegisteredModel:
    """Log the model into the active run and register it as a new version, tagged with the
    spec it was trained for.

    `signature` is there for the fault tests, which register a version whose declared input
    schema does not match the events, and check that the Predictors refuse it.
    """
    spec = settings.pipeline_spec
    signature = signature or signature_for(spec.schema)
    inputs = example[list(spec.schema.feature_fields)]
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
        checksums = artifacts.checksum_tags(files)
    version = int(info.registered_model_version)
    run_id = info.run_id
    client = MlflowClient()
    spec_tags = zip(SPEC_TAGS, spec_tag_values(spec), strict=True)
    for key, value in (*checksums.items(), *spec_tags):
        client.set_model_version_tag(settings.model_name, str(version), key, value)
    if not client.get_registered_model(settings.model_name).description:
        description = model_description(spec, settings.input_topic)
        client.update_registered_model(settings.model_name, description=description)
    return RegisteredModel(
        settings.model_name, version, run_id, model_uri(settings.model_name, version)
    )


def log_figures(model: ScoringModel, truth: Any, proba: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        importance = plots.feature_importance_plot(model, Path(tmp) / "feature_importance.png")
        mlflow.log_artifact(str(importance), "plots")
        mlflow.log_artifact(str(plots.roc_plot(truth, proba, Path(tmp) / "roc_curve.png")), "plots")


def log_dataset(
    frame: pd.DataFrame, name: str, source_uri: str, context: str, label_field: str
) -> None:
    if source_uri.startswith(("http://", "https://")):
        dataset = from_pandas(
            frame, source=HTTPDatasetSource(url=source_uri), name=name, targets=label_field
        )
    else:
        with warnings.catch_warnings():  # MLflow registers its local source twice ('', file)
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            dataset = from_pandas(frame, source=source_uri, name=name, targets=label_field)
    mlflow.log_input(dataset, context=context)


def log_spec(spec: PipelineSpec) -> None:
    """The spec as written, in the run: what the model's events, label and data were."""
    mlflow.log_text(spec.text, f"spec/{spec.path.name}")
    mlflow.set_tags(dict(zip(SPEC_TAGS, spec_tag_values(spec), strict=True)))


def ui_links(settings: Settings, base: str = "http://127.0.0.1:5000") -> str:
    """Where a person looks: the experiment's runs (MLflow 3's UI opens in its GenAI mode unless
    told otherwise) and the registered model with its versions, tags and aliases."""
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    number = experiment.experiment_id if experiment is not None else "?"
    runs = f"{base}/#/experiments/{number}?workflowType=machine_learning"
    return f"runs: {runs}\nmodel: {base}/#/models/{settings.model_name}"


def model_uri(name: str, version: int) -> str:
    return f"models:/{name}/{version}"


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"


def record_decision(run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
    """The gate's verdict stays on the candidate's run, next to the metrics it was based on."""
    client = MlflowClient()
    try:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        for key, number in metrics.items():
            client.log_metric(run_id, key, number)
    except MlflowException as exc:
        raise RegistryError(f"cannot record the gate's decision on run {run_id}: {exc}") from exc


def version_params(settings: Settings, version: int) -> dict[str, str]:
    """The parameters logged by the run that made `version`: a retrain's warm start."""
    client = MlflowClient()
    try:
        run_id = client.get_model_version(settings.model_name, str(version)).run_id
        return dict(client.get_run(run_id).data.params) if run_id else {}
    except MlflowException as exc:
        raise RegistryError(f"cannot read the run of version {version}: {exc}") from exc


def set_champion(settings: Settings, version: int, by: str = "", reason: str = "") -> None:
    """Move the alias and remember the move: MLflow keeps no history of an alias."""
    client = MlflowClient()
    try:
        client.set_registered_model_alias(settings.model_name, CHAMPION, str(version))
        history = champion_history(settings)
        history.append(
            {"version": version, "at_ms": int(time.time() * 1000), "by": by, "reason": reason}
        )
        client.set_registered_model_tag(
            settings.model_name, HISTORY_TAG, json.dumps(history[-HISTORY_KEPT:])
        )
    except MlflowException as exc:
        raise RegistryError(f"cannot set alias {CHAMPION} on version {version}: {exc}") from exc
    log.info("@%s of %s -> version %d (%s)", CHAMPION, settings.model_name, version, by or "?")


def champion_history(settings: Settings) -> list[dict[str, Any]]:
    """Every move of @champion made through the pipeline, oldest first."""
    return alias_history(settings, HISTORY_TAG)


def alias_history(settings: Settings, tag: str) -> list[dict[str, Any]]:
    """The moves of an alias kept in a tag of the registered model (MLflow keeps none)."""
    try:
        tags = MlflowClient().get_registered_model(settings.model_name).tags or {}
    except MlflowException as exc:
        raise RegistryError(f"cannot read model {settings.model_name}: {exc}") from exc
    try:
        history = json.loads(tags.get(tag, "[]"))
    except ValueError:
        return []
    return history if isinstance(history, list) else []


def champion_version(settings: Settings) -> int | None:
    """The version behind `@champion`, or None when no model has been promoted yet."""
    return alias_version(settings, CHAMPION)


def alias_version(settings: Settings, alias: str) -> int | None:
    """The version behind `@alias`, or None when the alias names none."""
    try:
        return int(MlflowClient().get_model_version_by_alias(settings.model_name, alias).version)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise RegistryError(f"cannot read alias {alias} of {settings.model_name}: {exc}") from exc
