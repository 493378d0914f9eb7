"""Figures logged with each training run, so the MLflow UI shows why a model is what it is."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from pipeline.core.scoring import ScoringModel


def feature_importance_plot(model: ScoringModel, path: Path) -> Path:
    gains = model.booster.feature_importance(importance_type="gain")
    names = np.asarray(model.booster.feature_name())
    order = np.argsort(gains)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(names[order], gains[order])
    ax.set_xlabel("total gain")
    ax.set_title("LightGBM feature importance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def roc_plot(truth: np.ndarray, proba: np.ndarray, path: Path) -> Path:
    fpr, tpr, _ = roc_curve(truth, proba)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(truth, proba):.4f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC on the holdout")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
