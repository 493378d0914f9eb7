from pathlib import Path

import pytest

from pipeline.config.settings import parse_settings, settings_to_argv
from pipeline.errors import ConfigError


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


@pytest.mark.parametrize("script", ["predictor", "trainer", "sample_app"])
def test_entry_scripts_exit_2_on_bad_settings_before_touching_kafka(script, capsys) -> None:
    module = __import__(script)
    assert module.main(["--batch-size", "0"] if script == "predictor" else ["--seed", "x"]) == 2
    assert "error:" in capsys.readouterr().err


def test_help_explains_every_flag_with_its_variable(capsys) -> None:
    import predictor

    with pytest.raises(SystemExit) as done:
        predictor.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--batch-size", "--exactly-once", "--retrain-every", "--max-event-bytes"):
        assert flag in text
    assert "PIPELINE_BATCH_SIZE" in text


def test_secrets_stay_out_of_reprs_command_lines_and_help(capsys) -> None:
    from pipeline.config.settings import secret_env
    from pipeline.kafka_io.clients import kafka_security

    env = {"PIPELINE_KAFKA_SASL_PASSWORD": "hunter2", "PIPELINE_MLFLOW_PASSWORD": "s3cret"}
    argv = [
        "--kafka-security-protocol",
        "SASL_SSL",
        "--kafka-sasl-mechanism",
        "PLAIN",
        "--kafka-sasl-username",
        "app",
    ]
    settings = parse_settings("predictor", "", argv, env=env)
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)
    assert "hunter2" not in " ".join(settings_to_argv(settings, "predictor"))
    assert secret_env(settings) == env
    assert kafka_security(settings) == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "app",
        "sasl_plain_password": "hunter2",
    }
    assert kafka_security(parse_settings("predictor", "", [], env={})) == {
        "security_protocol": "PLAINTEXT",
        "ssl_check_hostname": True,
    }


def test_an_unknown_security_protocol_is_refused() -> None:
    with pytest.raises(ConfigError, match="kafka_security_protocol"):
        parse_settings("predictor", "", ["--kafka-security-protocol", "TLS"], env={})


def test_a_stable_instance_id_makes_a_static_group_member() -> None:
    from pipeline.kafka_io.clients import SESSION_TIMEOUT_MS, group_membership

    named = parse_settings("predictor", "", ["--instance-id", "predictor-1"], env={})
    assert group_membership(named, "g") == {
        "group_id": "g",
        "group_instance_id": "predictor-1",
        "session_timeout_ms": SESSION_TIMEOUT_MS,
    }
    anonymous = parse_settings("predictor", "", [], env={})  # host-pid: new on every restart
    assert group_membership(anonymous, "g")["group_instance_id"] is None


def test_a_bad_log_level_exits_2_with_a_message_not_a_traceback(capsys) -> None:
    import trainer

    assert trainer.main(["--log-level", "LOUD"]) == 2
    err = capsys.readouterr().err
    assert "log_level='LOUD' is not one of DEBUG, INFO" in err and "Traceback" not in err


def test_the_trainer_takes_an_instance_id_and_the_event_size_limit() -> None:
    settings = parse_settings("trainer", "", ["--instance-id", "t-1", "--max-event-bytes", "1024"])
    assert settings.instance_name == "t-1" and settings.max_event_bytes == 1024
    assert "--instance-id" in settings_to_argv(settings, "trainer")


def test_exactly_once_without_a_stable_identity_is_refused(capsys) -> None:
    import predictor

    assert predictor.main(["--exactly-once"]) == 2
    assert "exactly-once needs a stable --instance-id" in capsys.readouterr().err
    assert parse_settings("predictor", "", ["--exactly-once", "--instance-id", "p-1"]).exactly_once


def test_the_trainer_gate_needs_evidence_by_default() -> None:
    settings = parse_settings("trainer", "", [], env={})
    assert settings.gate_confidence == 0.95
    assert settings.gate_min_effect == 0.001
    assert not hasattr(settings, "promote_tolerance")  # no tolerance lets a worse model through


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gate-confidence", "1"], "at most"),
        (["--gate-confidence", "0.4"], "at least"),
        (["--gate-min-effect", "-0.001"], "at least"),
    ],
)
def test_a_gate_that_proves_nothing_is_a_config_error(argv, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings("trainer", "", argv, env={})


def test_the_promote_tolerance_flag_is_gone(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_settings("trainer", "", ["--promote-tolerance", "0.002"], env={})
    assert "unrecognized arguments" in capsys.readouterr().err


def test_an_operator_sets_how_long_ops_waits_for_the_broker() -> None:
    assert parse_settings("ops", "", [], env={}).ops_timeout_s == 10.0
    assert parse_settings("ops", "", ["--ops-timeout-s", "2.5"], env={}).ops_timeout_s == 2.5
    env = {"PIPELINE_OPS_TIMEOUT_S": "30"}
    assert parse_settings("ops", "", [], env=env).ops_timeout_s == 30.0
    with pytest.raises(ConfigError, match="ops_timeout_s"):
        parse_settings("ops", "", ["--ops-timeout-s", "0"], env={})
