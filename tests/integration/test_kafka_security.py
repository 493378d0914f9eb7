"""Kafka with authentication and authorization, for real: SASL_SSL, SCRAM-SHA-512, ACLs.

One broker for the module, started here in secure mode with a throwaway CA. Every service runs
as its own principal holding only the ACLs of its role (pipeline.kafka_io.acls), with TLS
hostname verification on. Topics are created, and ACLs granted, by the admin principal.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from kafka.errors import AuthorizationError, KafkaError

import predictor as predictor_script
from pipeline.config import logs
from pipeline.config.settings import Settings, settings_to_argv
from pipeline.core.messages import RetrainRequest, to_json
from pipeline.errors import BrokerError
from pipeline.kafka_io.acls import Grant, grant_role, role_grants, to_acls
from pipeline.kafka_io.admin import admin_client, ensure_topics
from pipeline.kafka_io.broker import LocalBroker
from pipeline.kafka_io.clients import make_consumer, make_producer, require_topic
from pipeline.kafka_io.secure_broker import BrokerSecurity, client_settings
from pipeline.kafka_io.security import kafka_security
from pipeline.ops.heartbeats import latest_heartbeats
from pipeline.registry import tracking
from pipeline.services.predictor import Predictor
from pipeline.services.trainer import Trainer
from pipeline.tools.sample_stream import SampleApp, event_rows
from pipeline.tools.sandbox import modest_champion
from tests.pki import make_pki

from .conftest import (
    TopicReader,
    _no_broker,
    await_true,
    in_thread,
    live_settings,
    produce,
    register,
)
from .helpers import make_events

ROLES = {"predictor": "predictor", "trainer": "trainer", "sample-app": "sample-app", "ops": "ops"}
# Principals for the denial tests: the predictor's ACLs less one grant each.
MISSING = {
    "no-write": lambda g, s: g.name == s.predictions_topic,
    "no-group": lambda g, s: g.resource == "group",
}


@dataclass
class SecureKafka:
    broker: LocalBroker
    cafile: Path
    passwords: dict[str, str]

    def as_user(self, settings: Settings, user: str, **overrides: object) -> Settings:
        return client_settings(settings, self.cafile, user, self.passwords[user], **overrides)


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    if shutil.which("java") is None:
        _no_broker("the secure broker needs Java")
    root = tmp_path_factory.mktemp("secure-kafka")
    pki = make_pki(root / "pki")
    passwords = {user: secrets.token_urlsafe(18) for user in [*ROLES.values(), *MISSING]}
    passwords["admin"] = secrets.token_urlsafe(18)
    security = BrokerSecurity(
        pki.keystore,
        pki.cafile,
        admin_password=passwords["admin"],
        users={u: p for u, p in passwords.items() if u != "admin"},
    )
    broker = LocalBroker(root / "kafka", security=security).start(timeout_s=120)
    try:
        yield SecureKafka(broker, pki.cafile, passwords)
    finally:
        broker.stop()


@pytest.fixture
def secure_live(
    secure_kafka, unique, mlflow_home, data_dir, trained_model, adult, kafka_client
) -> Settings:
    """A test's settings on the secure broker: topics made and every role granted by admin,
    a @champion registered. Holds no credentials itself (see SecureKafka.as_user)."""
    settings = replace(
        live_settings(secure_kafka.broker.bootstrap_servers, unique, mlflow_home, data_dir),
        kafka_client=kafka_client,
    )
    admin = kafka_security(secure_kafka.as_user(settings, "admin"))
    ensure_topics(settings.bootstrap_servers, settings.topic_specs(), security=admin)
    client = admin_client(settings.bootstrap_servers, security=admin)
    try:
        eos = replace(settings, exactly_once=True)
        for role, user in ROLES.items():
            grant_role(client, f"User:{user}", role, eos)
        for user, dropped in MISSING.items():
            grants = [g for g in role_grants("predictor", settings) if not dropped(g, settings)]
            client.create_acls(to_acls(f"User:{user}", grants))
        expected = sum(len(g.operations) for g in _all_grants(eos, settings))
        await_true(lambda: _acl_count(client) >= expected, 30, "the broker to apply the ACLs")
    finally:
        client.close()
    tracking.set_champion(settings, register(settings, trained_model, adult.test.head(50)))
    return settings


def _all_grants(eos: Settings, settings: Settings) -> list[Grant]:
    grants = [g for role in ROLES for g in role_grants(role, eos)]
    for dropped in MISSING.values():
        grants += [g for g in role_grants("predictor", settings) if not dropped(g, settings)]
    return grants


def _acl_count(client) -> int:
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    everything = ACLFilter(
        principal=None,
        host="*",
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    acls, _ = client.describe_acls(everything)
    return len(acls)


@pytest.mark.both_clients
def test_the_live_loop_runs_with_one_least_privileged_principal_per_role(
    secure_kafka: SecureKafka, secure_live: Settings, adult
) -> None:
    s = secure_live
    predictor = Predictor(
        secure_kafka.as_user(s, "predictor", exactly_once=True, retrain_every=150)
    )
    # A modest champion: the retrained model beats it through the real gate.
    modest = modest_champion(s, adult, by="test")
    trainer = Trainer(secure_kafka.as_user(s, "trainer"))
    ops = secure_kafka.as_user(s, "ops")
    news = TopicReader(ops, s.retrain_topic)  # the operator reads the model news
    sample = SampleApp(
        secure_kafka.as_user(s, "sample-app", events=300, drain_timeout_s=90),
        event_rows(adult.test.head(300), s.pipeline_spec.schema),
        progress=lambda line: None,
    )
    assert all(x.settings.kafka_ssl_check_hostname for x in (predictor, trainer, sample))
    try:
        with in_thread(trainer.run), in_thread(predictor.run):
            summary = sample.run(threading.Event())
            ready = news.wait_for(
                lambda r: any(b'"model_ready"' in x.value for x in r), 180, "a model_ready"
            )
            await_true(
                lambda: predictor.slot.current.version == modest + 1, 60, "the Predictor to swap"
            )
            # The predictor may write its heartbeats, the operator may read them.
            await_true(lambda: bool(latest_heartbeats(ops)), 30, "ops to read the heartbeats")
    finally:
        news.close()
    assert summary["events"] == 300 and summary["predictions"] == 300
    assert summary["missing"] == 0 and summary["duplicates"] == 0
    assert any(b"retrain_request" in r.value for r in ready)
    # One training per run of requests the Trainer finds waiting: the two batches' requests
    # may arrive in one run or in two, never more trainings than requests.
    assert 1 <= trainer.trainings <= predictor.counters.retrain_requests


def test_ops_may_write_retrain_requests_and_describe_the_predictor_group_only(
    secure_kafka: SecureKafka, secure_live: Settings
) -> None:
    ops = secure_kafka.as_user(secure_live, "ops")
    producer = make_producer(ops, "ops")
    try:
        request = RetrainRequest("ops", ops.input_topic, {}, 0)
        producer.send(ops.retrain_topic, to_json(request)).get(timeout=30)
    finally:
        producer.close(timeout=5)
    client = admin_client(ops.bootstrap_servers, security=kafka_security(ops))
    try:
        client.list_group_offsets(ops.predictor_group)
    except KafkaError as exc:  # a group never joined may have no coordinator yet: not a denial
        assert not isinstance(exc, AuthorizationError), exc
    finally:
        client.close()
    consumer = make_consumer(ops, "ops")
    try:
        with pytest.raises(BrokerError, match=f"{ops.input_topic}.*User:ops may not describe"):
            require_topic(consumer, ops.input_topic, ops, "ops")
    finally:
        consumer.close()


def _fails_within(
    target: Callable[[threading.Event, threading.Event], None], timeout_s: float
) -> BaseException:
    """The error `target` stops with, which must come within the deadline."""
    errors: list[BaseException] = []
    stop, ready = threading.Event(), threading.Event()

    def body() -> None:
        try:
            target(stop, ready)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        stop.set()
        thread.join(30)
        pytest.fail(f"no error within {timeout_s}s: the principal hung instead of failing")
    assert errors, "the loop ended without an error"
    return errors[0]


@pytest.mark.both_clients
@pytest.mark.parametrize(
    ("user", "names"),
    [("no-write", "topic out-"), ("no-group", "group predictor-")],
)
def test_a_missing_acl_is_a_clear_error_naming_the_resource_not_a_hang(
    secure_kafka: SecureKafka, secure_live: Settings, adult, user: str, names: str
) -> None:
    produce(secure_kafka.as_user(secure_live, "sample-app"), make_events(adult, 5, "a"))
    predictor = Predictor(secure_kafka.as_user(secure_live, user))
    error = _fails_within(predictor.run, 60)
    assert isinstance(error, BrokerError) and error.exit_code == 4
    message = str(error)
    assert f"User:{user}" in message and names in message, message
    assert "--role predictor" in message


@pytest.mark.both_clients
def test_a_wrong_password_exits_4_and_never_shows_the_password(
    secure_kafka: SecureKafka, secure_live: Settings, monkeypatch, capfd
) -> None:
    wrong = "Wr0ng-" + secrets.token_urlsafe(12)
    settings = secure_kafka.as_user(secure_live, "predictor")
    argv = [*settings_to_argv(settings, "predictor"), "--log-level", "DEBUG"]
    assert settings.kafka_sasl_password not in " ".join(argv)
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_PASSWORD", wrong)
    monkeypatch.setattr(logs, "QUIET_LIBRARIES", ())  # the client's own DEBUG lines too
    for client_log in ("kafka", "librdkafka"):  # as no earlier setup in this process left them
        logging.getLogger(client_log).setLevel(logging.NOTSET)
    try:
        started = time.monotonic()
        assert predictor_script.main(argv) == 4
        took = time.monotonic() - started
    finally:
        logging.getLogger().setLevel(logging.WARNING)
        for client_log in ("kafka", "librdkafka"):
            logging.getLogger(client_log).setLevel(logging.WARNING)
    out, err = capfd.readouterr()
    assert "Kafka authentication failed for user predictor" in err
    assert "invalid credentials" in err
    assert wrong not in out + err
    assert "kafka" in err.lower() and err.count("\n") > 20  # the DEBUG lines were there
    assert took < 90
