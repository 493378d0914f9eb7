"""Preprocessing and booster as one object, so the two can never get out of step."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from pipeline.core.drift import FeatureProfile
from pipeline.core.features import Columns, FeatureBuilder
from pipeline.errors import ModelError

BOOSTER_FILE = "booster.txt"
FEATURES_FILE = "features.json"


@dataclass(frozen=True)
class ModelIdentity:
    """What a model was trained for, stored with it: a Predictor refuses a model whose schema
    fingerprint is not its own spec's (another data set's model would score garbage)."""

    fingerprint: str
    label_field: str
    labels: tuple[str, str]  # (negative, positive)
    golden: Mapping[str, list[Any]]  # a few training rows: it must score them when loaded

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_fingerprint": self.fingerprint,
            "label_field": self.label_field,
            "labels": list(self.labels),
            "golden_sample": {k: list(v) for k, v in self.golden.items()},
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> ModelIdentity:
        if "schema_fingerprint" not in payload:
            raise ValueError(
                "the model records no pipeline spec (trained before specs): train it again "
                "with initialize.py"
            )
        negative, positive = payload["labels"]
        return cls(
            str(payload["schema_fingerprint"]),
            str(payload["label_field"]),
            (str(negative), str(positive)),
            {str(k): list(v) for k, v in payload["golden_sample"].items()},
        )


@dataclass
class ScoringModel:
    features: FeatureBuilder
    booster: lgb.Booster
    identity: ModelIdentity
    threshold: float = 0.5
    # The training rows' profile per feature, the reference live drift is measured against
    # (None for versions registered before profiles were stored: they serve, unwatched).
    profile: Mapping[str, FeatureProfile] | None = None
    # The same trees compiled to native code (core/compiled.py), when a loader made them.
    compiled: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    optimized: bool = field(default=False, repr=False)  # `compiled` is the inlined build

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Probability of the positive class for each row of a batch: one predict call."""
        return self.predict_matrix(self.features.transform(columns))

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The same, from a matrix this model's `features` made (a challenger with the same
        features scores the champion's matrix instead of building its own)."""
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        if self.compiled is not None:
            return self.compiled(matrix)
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def use_compiled(
        self, compiled: Callable[[np.ndarray], np.ndarray], rows: Columns, optimized: bool = False
    ) -> bool:
        """Switch to compiled trees only if they score `rows` as LightGBM does (within 1e-9).
        Safe while another thread scores: the switch is one reference, read once a batch."""
        matrix = self.features.transform(rows)
        expected = np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)
        if not np.allclose(compiled(matrix), expected, rtol=0.0, atol=1e-9):
            return False
        self.compiled = compiled
        self.optimized = optimized
        return True

    def save(self, directory: Path) -> dict[str, Path]:
        """Plain text files (LightGBM's model text, JSON): nothing to unpickle on load."""
        directory.mkdir(parents=True, exist_ok=True)
        booster_path = directory / BOOSTER_FILE
        features_path = directory / FEATURES_FILE
        self.booster.save_model(str(booster_path))
        payload: dict[str, object] = {
            "features": self.features.to_dict(),
            "identity": self.identity.to_dict(),
            "threshold": self.threshold,
        }
        if self.profile is not None:
            payload["reference_profile"] = [p.to_dict() for p in self.profile.values()]
        features_path.write_text(json.dumps(payload))
        return {"booster": booster_path, "features": features_path}

    @classmethod
    def load(cls, booster_path: Path, features_path: Path) -> ScoringModel:
        try:
            payload = json.loads(Path(features_path).read_text())
            features = FeatureBuilder.from_dict(payload["features"])
            identity = ModelIdentity.from_dict(payload.get("identity", {}))
            booster = lgb.Booster(model_file=str(booster_path))
            profile = _profile_of(payload)
        except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
            raise ModelError(
                f"cannot load model files {booster_path}, {features_path}: {exc}"
            ) from exc
        if booster.feature_name() != features.feature_names:
            raise ModelError(
                f"booster features {booster.feature_name()} do not match the preprocessing "
                f"{features.feature_names}"
            )
        return cls(
            features=features,
            booster=booster,
            identity=identity,
            threshold=float(payload.get("threshold", 0.5)),
            profile=profile,
        )


def _profile_of(payload: Mapping[str, object]) -> dict[str, FeatureProfile] | None:
    stored = payload.get("reference_profile")
    if stored is None:
        return None
    if not isinstance(stored, list):
        raise TypeError("reference_profile is not a list of feature profiles")
    profiles = [FeatureProfile.from_dict(item) for item in stored]
    return {p.name: p for p in profiles}
