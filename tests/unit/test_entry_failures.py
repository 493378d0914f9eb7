"""Broken infrastructure at start is a clear message and a non-zero exit, before any Kafka I/O."""

from __future__ import annotations

import predictor


def test_a_predictor_without_a_reachable_registry_exits_4(monkeypatch, capfd) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    argv = ["--tracking-uri", "http://127.0.0.1:9", "--bootstrap-servers", "127.0.0.1:1"]
    assert predictor.main(argv) == 4
    assert "MLflow at http://127.0.0.1:9 is not usable" in capfd.readouterr().err


def test_a_predictor_with_no_champion_exits_5_and_says_what_to_run(tmp_path, capfd) -> None:
    argv = ["--home", str(tmp_path), "--bootstrap-servers", "127.0.0.1:1", "--model-name", "none"]
    assert predictor.main(argv) == 5
    assert "run initialize.py first" in capfd.readouterr().err
