"""The MLflow pyfunc face of a ScoringModel: one registered artifact holds preprocessing + booster.

Logged as "models from code": MLflow stores this file, not a pickle, and the model's state
lives in two text artifacts (LightGBM's model text and the preprocessing JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd

from pipeline.core.scoring import ScoringModel


class TabularPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Everything it serves is read from the text artifacts in `load_context`."""

    def __init__(self) -> None:
        self.model: ScoringModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = ScoringModel.load(
            Path(context.artifacts["booster"]), Path(context.artifacts["features"])
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        proba = self.model.predict_proba(model_input)
        negative, positive = self.model.identity.labels
        labels = [positive if p >= self.model.threshold else negative for p in proba]
        return pd.DataFrame({"probability": proba, "label": labels})


mlflow.models.set_model(TabularPyfunc())
