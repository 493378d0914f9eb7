"""What a serving version learns about itself live, written back to the run that made it.

Each closed online-quality window is logged to the version's training run with the window's
index as the step, so the MLflow UI charts `online_auc` (and the rest) over time per version,
next to the holdout figures the version was promoted on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.config.settings import Settings
from pipeline.core.quality import WindowReport
from pipeline.errors import RegistryError

log = logging.getLogger(__name__)
HOLDOUT_AUC_TAG = "holdout.auc"


@dataclass(frozen=True)
class VersionRecord:
    run_id: str
    holdout_auc: float | None


def version_record(settings: Settings, version: int) -> VersionRecord:
    """The run behind a version and the holdout AUC it was registered with (tag, else metric)."""
    client = MlflowClient()
    try:
        found = client.get_model_version(settings.model_name, str(version))
        tagged = (found.tags or {}).get(HOLDOUT_AUC_TAG)
        auc = float(tagged) if tagged is not None else None
        if auc is None and found.run_id:
            auc = client.get_run(found.run_id).data.metrics.get("test_auc")
    except MlflowException as exc:
        raise RegistryError(
            f"cannot read version {version} of {settings.model_name}: {exc}"
        ) from exc
    return VersionRecord(found.run_id or "", auc)


def window_metrics(report: WindowReport) -> dict[str, float]:
    """`online_<metric>` and `online_<metric>_ewma<span>`, NaN (an AUC of one class) left out."""
    figures = {f"online_{k}": v for k, v in report.metrics.items() if v == v}
    for span, values in report.ewma.items():
        figures.update({f"online_{k}_ewma{span}": v for k, v in values.items()})
    return figures


def log_window(run_id: str, report: WindowReport) -> None:
    stamp = int(time.time() * 1000)
    metrics = [
        Metric(key, value, stamp, report.index) for key, value in window_metrics(report).items()
    ]
    try:
        MlflowClient().log_batch(run_id, metrics=metrics)
    except MlflowException as exc:
        raise RegistryError(f"cannot log online quality to run {run_id}: {exc}") from exc
