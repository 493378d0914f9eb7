"""Client-side Kafka security without a broker: hostname verification, its warning, the ACL CLI.

The TLS server here is a plain Python one with a certificate for another host name: enough to
see hostname verification refuse it, and accept it once turned off.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config.settings import parse_settings, settings_to_argv
from pipeline.errors import BrokerError
from pipeline.kafka_io import acls
from pipeline.kafka_io.admin import admin_client
from pipeline.kafka_io.clients import make_consumer
from pipeline.kafka_io.login_probe import login_failure
from pipeline.kafka_io.security import kafka_security
from tests.pki import make_pki


def test_hostname_verification_is_on_by_default_and_reaches_kafka_python() -> None:
    default = parse_settings("predictor", "", [], env={})
    assert default.kafka_ssl_check_hostname is True
    assert kafka_security(default)["ssl_check_hostname"] is True
    flag = parse_settings("predictor", "", ["--no-kafka-ssl-check-hostname"], env={})
    env = parse_settings("trainer", "", [], env={"PIPELINE_KAFKA_SSL_CHECK_HOSTNAME": "false"})
    assert kafka_security(flag)["ssl_check_hostname"] is False
    assert kafka_security(env)["ssl_check_hostname"] is False
    assert "--no-kafka-ssl-check-hostname" in settings_to_argv(flag, "predictor")
    assert "--kafka-ssl-check-hostname" in settings_to_argv(default, "sample_app")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("check", [True, False])
def test_a_client_without_hostname_checks_warns_once_per_creation(check, caplog) -> None:
    argv = ["--kafka-security-protocol", "SASL_SSL", "--kafka-sasl-mechanism", "SCRAM-SHA-512"]
    argv += ["--kafka-ssl-check-hostname" if check else "--no-kafka-ssl-check-hostname"]
    argv += ["--bootstrap-servers", f"127.0.0.1:{_closed_port()}"]
    settings = parse_settings("predictor", "", argv, env={})
    caplog.set_level(logging.WARNING, logger="pipeline.kafka_io.security")
    for _ in range(2):
        with pytest.raises(BrokerError):
            make_consumer(settings, "probe", bootstrap_timeout_ms=300)
    warnings = [r for r in caplog.records if "hostname verification is off" in r.getMessage()]
    assert len(warnings) == (0 if check else 2)


@pytest.fixture
def tls_server_for_another_host(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A TLS endpoint on 127.0.0.1 whose certificate names only elsewhere.test."""
    pki = make_pki(tmp_path / "pki", san="subjectAltName=DNS:elsewhere.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.keystore)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, name="tls-server")
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", pki.cafile
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_hostname_verification_refuses_a_certificate_for_another_host(
    tls_server_for_another_host,
) -> None:
    address, cafile = tls_server_for_another_host
    config = {"security_protocol": "SSL", "ssl_cafile": str(cafile), "ssl_check_hostname": True}
    assert "IP address mismatch" in (login_failure(address, config) or "")
    assert login_failure(address, {**config, "ssl_check_hostname": False}) is None
    with pytest.raises(BrokerError, match=f"cannot connect to Kafka at {address}.*mismatch"):
        admin_client(address, timeout_s=1, security=config)


def test_the_acl_cli_prints_kafka_acls_commands_and_exits_2_on_bad_arguments(
    capsys, monkeypatch
) -> None:
    monkeypatch.setenv("PIPELINE_INPUT_TOPIC", "events")
    assert acls.main(["--role", "trainer", "--bootstrap-server", "kafka:9093"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "kafka-acls.sh --bootstrap-server kafka:9093 --command-config admin.properties --add "
        "--allow-principal User:trainer --operation Read --topic events"
    )
    assert lines[2].endswith("--operation Read --topic app_predictions_shadow")
    assert len(lines) == 5 and all("--group" in line for line in lines[3:])
    for bad in (["--role", "admin"], ["--role", "ops", "--principal", "ops"], []):
        with pytest.raises(SystemExit) as done:
            acls.main(bad)
        assert done.value.code == 2


def test_the_transactional_id_grant_comes_with_exactly_once_only() -> None:
    plain = parse_settings("predictor", "", [], env={})
    eos = parse_settings("predictor", "", ["--exactly-once"], env={})
    assert not [g for g in acls.role_grants("predictor", plain) if g.prefixed]
    (grant,) = [g for g in acls.role_grants("predictor", eos) if g.prefixed]
    assert (grant.resource, grant.name, grant.operations) == (
        "transactional-id",
        f"{eos.predictor_group}-",
        ("Write",),
    )
    with pytest.raises(ValueError, match="unknown role"):
        acls.role_grants("admin", plain)
