import json

import mlflow
import numpy as np
from sklearn.metrics import roc_auc_score

import initialize
from pipeline.core.training import labels_of
from pipeline.registry import artifacts, tracking


def test_initialize_registers_a_champion_that_scores_adult_test(
    kafka_bootstrap, unique, tmp_path, data_dir, adult, adult_spec, capsys
) -> None:
    argv = [
        "--bootstrap-servers",
        kafka_bootstrap,
        "--home",
        str(tmp_path / "home"),
        "--data-dir",
        str(data_dir),
        "--no-allow-download",
        "--tuning-evals",
        "3",
        "--cv-folds",
        "3",
        "--input-topic",
        f"in-{unique}",
        "--predictions-topic",
        f"out-{unique}",
        "--dlq-topic",
        f"dlq-{unique}",
        "--retrain-topic",
        f"retrain-{unique}",
    ]
    assert initialize.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["version"] == 1
    assert summary["test_auc"] >= 0.92

    champion = tracking.champion_version(initialize.parse_settings("initialize", "", argv))
    assert champion == 1
    model = artifacts.load_scoring_model("adult-income", champion, adult_spec.schema)
    proba = model.predict_proba(adult.test)
    assert np.isfinite(proba).all()
    assert (
        roc_auc_score(
            labels_of(adult.test, adult_spec.schema.label_field, adult_spec.schema.positive_label),
            proba,
        )
        >= 0.92
    )

    pyfunc = mlflow.pyfunc.load_model(tracking.champion_uri("adult-income"))
    scored = pyfunc.predict(adult.test.drop(columns=["income_bracket"]).head(5))
    assert list(scored.columns) == ["probability", "label"]

    runs = mlflow.search_runs(experiment_names=["adult-income"])
    assert len(runs) == 1
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(runs.run_id[0], "plots")}
    assert plots == {"plots/feature_importance.png", "plots/roc_curve.png"}

    # A second run makes a new version and moves the alias; it does not fail.
    assert initialize.main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["version"] == 2
    assert tracking.champion_version(initialize.parse_settings("initialize", "", argv)) == 2
