from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import parse_settings


def test_defaults_need_no_environment() -> None:
    settings = parse_settings("initialize", "", [], env={})
    assert settings.bootstrap_servers == "localhost:9092"
    assert settings.mlflow_uri.startswith("sqlite:///") and settings.mlflow_uri.endswith(
        "mlflow.db"
    )


def test_flags_beat_environment_which_beats_defaults() -> None:
    env = {"PIPELINE_TUNING_EVALS": "7", "PIPELINE_DATA_DIR": "/env/adult"}
    settings = parse_settings("initialize", "", ["--tuning-evals", "9"], env=env)
    assert settings.tuning_evals == 9
    assert settings.data_dir == Path("/env/adult")


def test_kafka_bootstrap_servers_is_honoured_below_the_pipeline_variable() -> None:
    assert (
        parse_settings(
            "initialize", "", [], env={"KAFKA_BOOTSTRAP_SERVERS": "k:1"}
        ).bootstrap_servers
        == "k:1"
    )
    env = {"KAFKA_BOOTSTRAP_SERVERS": "k:1", "PIPELINE_BOOTSTRAP_SERVERS": "p:2"}
    assert parse_settings("initialize", "", [], env=env).bootstrap_servers == "p:2"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--tuning-evals", "zero"], {}, "tuning_evals"),
        (["--cv-folds", "1"], {}, "at least 2"),
        ([], {"PIPELINE_ALLOW_DOWNLOAD": "maybe"}, "not a boolean"),
    ],
)
def test_bad_settings_are_config_errors(argv, env, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings("initialize", "", argv, env=env)


def test_settings_are_frozen() -> None:
    settings = parse_settings("initialize", "", [], env={})
    with pytest.raises(AttributeError):
        settings.seed = 1  # type: ignore[misc]
