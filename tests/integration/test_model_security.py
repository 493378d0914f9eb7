"""No code from the registry runs in a service, and an altered artifact is refused.

A registered version is a "model from code": its Python file sits in the artifact store. The
services must read only its text artifacts, checked against the sums tagged at registration.
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pipeline.config.settings import Settings
from pipeline.errors import ModelError
from pipeline.registry import artifacts, tracking
from pipeline.services.predictor import Predictor

from .conftest import TopicReader, await_true, in_thread, produce, register
from .helpers import make_events, model_ready

HOSTILE_CODE = """
from pathlib import Path
Path({marker!r}).write_text("code from the registry ran")

import mlflow.pyfunc


class Hostile(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


mlflow.models.set_model(Hostile())
"""


def _register_hostile(live: Settings, trained_model, marker: Path, tmp: Path) -> int:
    """A version with genuine artifacts and checksums, but a code file that writes a marker."""
    code = tmp / "hostile_model.py"
    code.write_text(textwrap.dedent(HOSTILE_CODE.format(marker=str(marker))))
    files = trained_model.save(tmp / "files")
    tracking.connect(live)
    with mlflow.start_run(run_name="test-hostile"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={key: str(path) for key, path in files.items()},
            signature=tracking.signature_for(live.pipeline_spec.schema),
            registered_model_name=live.model_name,
        )
    version = int(info.registered_model_version)
    for key, value in artifacts.checksum_tags(files).items():
        MlflowClient().set_model_version_tag(live.model_name, str(version), key, value)
    return version


def test_a_version_whose_code_would_run_is_served_from_its_text_only(
    live: Settings, adult, trained_model, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    hostile = _register_hostile(live, trained_model, marker, tmp_path)
    # Logging a model from code runs the file once, in the registering process: the code works.
    assert marker.exists()
    marker.unlink()
    predictor = Predictor(live)
    out = TopicReader(live, live.predictions_topic)
    with in_thread(predictor.run):
        tracking.set_champion(live, hostile)
        produce(live, [("news", model_ready(live.model_name, hostile))], topic=live.retrain_topic)
        await_true(lambda: predictor.slot.current.version == hostile, 60, "the swap")
        produce(live, make_events(adult, 50, "after"))
        out.wait_for(lambda r: len(r) >= 50, what="predictions after the swap")
    assert {p["model_version"] for p in out.json()} == {hostile}
    assert not marker.exists(), "the Predictor ran code stored in the registry"
    out.close()
    # The threat is real: MLflow's own loader runs the stored file.
    mlflow.pyfunc.load_model(tracking.model_uri(live.model_name, hostile))
    assert marker.exists()


def _stored_artifact(live: Settings, version: int, name: str) -> Path:
    source = MlflowClient().get_model_version(live.model_name, str(version)).source
    model_id = source.rsplit("/", 1)[-1]
    return live.artifact_root / "models" / model_id / "artifacts" / "artifacts" / name


@pytest.mark.parametrize("name", ["booster.txt", "features.json"])
def test_an_artifact_altered_after_registration_is_refused(
    live: Settings, adult, trained_model, name: str
) -> None:
    version = register(live, trained_model, adult.test.head(5))
    assert (
        artifacts.load_scoring_model(live.model_name, version, live.pipeline_spec.schema)
        is not None
    )
    stored = _stored_artifact(live, version, name)
    stored.write_text(stored.read_text().replace("0", "1", 1))
    with pytest.raises(ModelError, match=f"artifacts/{name} .* was altered after registration"):
        artifacts.load_scoring_model(live.model_name, version, live.pipeline_spec.schema)


def test_a_version_registered_without_checksums_is_refused(live: Settings, trained_model) -> None:
    tracking.connect(live)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name="test-unsigned"):
        files = trained_model.save(Path(tmp))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(tracking.pyfunc_model.__file__)),
            artifacts={key: str(path) for key, path in files.items()},
            signature=tracking.signature_for(live.pipeline_spec.schema),
            registered_model_name=live.model_name,
        )
    with pytest.raises(ModelError, match="no artifact checksums"):
        artifacts.load_scoring_model(
            live.model_name, int(info.registered_model_version), live.pipeline_spec.schema
        )
