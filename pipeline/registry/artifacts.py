"""Load a registered version from its two text artifacts, verified, never by running its code.

A version is logged as an MLflow "model from code" so that MLflow's own tools can serve it, but
`mlflow.pyfunc.load_model` would execute the Python file stored with it: anyone able to register
a version, move an alias or write to the artifact store could then run code in every Predictor
and the Trainer. The services read only LightGBM's model text, the preprocessing JSON and the
MLmodel YAML (for the declared input schema), and check the two artifacts against the sha256
sums tagged on the version when the pipeline registered it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository
from mlflow.tracking import MlflowClient

from pipeline.core.model_checks import check_model
from pipeline.core.schema import Schema
from pipeline.core.scoring import ScoringModel
from pipeline.errors import ModelError, RegistryError

log = logging.getLogger(__name__)

# Where `mlflow.pyfunc.log_model(artifacts=...)` puts each file inside the logged model.
ARTIFACT_PATHS = {"booster": "artifacts/booster.txt", "features": "artifacts/features.json"}
CHECKSUM_TAG = "pipeline.sha256.{}"
MISSING_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_tags(files: Mapping[str, Path]) -> dict[str, str]:
    """The version tags that vouch for the artifacts, computed from the files as written."""
    return {CHECKSUM_TAG.format(key): sha256_of(files[key]) for key in ARTIFACT_PATHS}


def _registry_error(what: str, exc: MlflowException) -> Exception:
    """A missing version is the model's fault; anything else is the registry's (retry later)."""
    if str(exc.error_code) in MISSING_CODES:
        return ModelError(f"{what}: {exc.message}")
    return RegistryError(f"{what}: {exc.message}")


@contextlib.contextmanager
def _repository(name: str, version: int) -> Iterator[ModelsArtifactRepository]:
    """One repository per load, its download threads stopped after: MLflow leaves them to the
    garbage collector, and a load every alias move would otherwise leave idle threads behind."""
    uri = f"models:/{name}/{version}"
    try:
        repo = ModelsArtifactRepository(uri)
    except MlflowException as exc:
        raise _registry_error(f"cannot open {uri}", exc) from exc
    except OSError as exc:
        raise RegistryError(f"cannot open {uri}: {exc}") from exc
    try:
        yield repo
    finally:
        for each in (repo, getattr(repo, "repo", None)):
            pool = getattr(each, "thread_pool", None)
            if pool is not None:
                pool.shutdown(wait=True)


def _download(repo: ModelsArtifactRepository, path: str, into: Path) -> Path:
    try:
        return Path(repo.download_artifacts(path, dst_path=str(into)))
    except MlflowException as exc:
        raise _registry_error(f"cannot download {repo.artifact_uri}/{path}", exc) from exc
    except OSError as exc:
        raise RegistryError(f"cannot download {repo.artifact_uri}/{path}: {exc}") from exc


def _recorded_checksums(name: str, version: int) -> dict[str, str]:
    try:
        tags = MlflowClient().get_model_version(name, str(version)).tags or {}
    except MlflowException as exc:
        raise _registry_error(f"cannot read version {version} of {name}", exc) from exc
    except OSError as exc:
        raise RegistryError(f"cannot read version {version} of {name}: {exc}") from exc
    recorded = {key: tags.get(CHECKSUM_TAG.format(key), "") for key in ARTIFACT_PATHS}
    missing = sorted(CHECKSUM_TAG.format(key) for key, value in recorded.items() if not value)
    if missing:
        raise ModelError(
            f"version {version} of {name} has no artifact checksums ({', '.join(missing)}): "
            "it was not registered by this pipeline"
        )
    return recorded


def verified_files(
    repo: ModelsArtifactRepository, name: str, version: int, into: Path
) -> dict[str, Path]:
    """Download the two text artifacts and refuse any whose sha256 is not the recorded one."""
    recorded = _recorded_checksums(name, version)
    files = {key: _download(repo, path, into) for key, path in ARTIFACT_PATHS.items()}
    for key, path in files.items():
        actual = sha256_of(path)
        if actual != recorded[key]:
            raise ModelError(
                f"artifact {ARTIFACT_PATHS[key]} of {name} version {version} was altered after "
                f"registration: sha256 {actual[:12]}... is not the recorded {recorded[key][:12]}..."
            )
    return files


def declared_inputs(
    repo: ModelsArtifactRepository, name: str, version: int, into: Path
) -> list[str] | None:
    """The input names the MLmodel file declares; YAML read as data, no flavour loaded."""
    path = _download(repo, "MLmodel", into)
    try:
        schema = Model.load(str(path)).get_input_schema()
    except (MlflowException, OSError, ValueError, TypeError) as exc:
        raise ModelError(
            f"the MLmodel file of {name} version {version} is unreadable: {exc}"
        ) from exc
    return schema.input_names() if schema is not None else None


def load_scoring_model(name: str, version: int, schema: Schema) -> ScoringModel:
    """The serving object of a version, checked like any model before it may serve: made for
    this spec's events, the declared inputs, finite scores on known rows."""
    with tempfile.TemporaryDirectory(prefix="model-") as tmp, _repository(name, version) as repo:
        files = verified_files(repo, name, version, Path(tmp))
        inputs = declared_inputs(repo, name, version, Path(tmp))
        model = ScoringModel.load(files["booster"], files["features"])
    check_model(model, inputs, schema)
    log.debug("loaded %s version %d from its verified text artifacts", name, version)
    return model
