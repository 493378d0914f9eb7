"""One frozen settings object, read from flags, then `PIPELINE_*` variables, then defaults."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.core import topics
from pipeline.core.spec import DEFAULT_SPEC, PipelineSpec, load_spec
from pipeline.errors import ConfigError

ENV_PREFIX = "PIPELINE_"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
KAFKA_CLIENTS = ("kafka-python", "confluent-kafka")  # the default first
CONFLUENT_KAFKA = KAFKA_CLIENTS[1]
CANDIDATE_ALIASES = ("champion", "challenger")
ALL = frozenset({"initialize", "predictor", "trainer", "sample_app", "demo", "ops"})


def setting(
    default: Any,
    help: str,
    scripts: frozenset[str] = ALL,
    minimum: float | None = None,
    secret: bool = False,
    maximum: float | None = None,
) -> Any:
    meta = {
        "help": help,
        "scripts": scripts,
        "minimum": minimum,
        "maximum": maximum,
        "secret": secret,
    }
    return field(default=default, metadata=meta, repr=not secret)


TRAINING = frozenset({"initialize", "trainer", "demo"})
SERVING = frozenset({"predictor", "demo"})
TRAINER = frozenset({"trainer", "demo"})
SAMPLE = frozenset({"sample_app", "demo"})
DATA = TRAINING | SAMPLE


@dataclass(frozen=True)
class Settings:
    spec: Path = setting(
        DEFAULT_SPEC,
        "pipeline spec (TOML): the events, label, data, model name, topics and groups; "
        "flags and variables win over the spec's names",
    )
    bootstrap_servers: str = setting(
        "localhost:9092", "Kafka bootstrap servers (also read from KAFKA_BOOTSTRAP_SERVERS)"
    )
    home: Path = setting(
        Path(".pipeline"), "folder for local state: MLflow store, artifacts, broker"
    )
    tracking_uri: str = setting(
        "", "MLflow tracking URI; empty means an embedded sqlite store under --home"
    )
    experiment: str = setting("adult-income", "MLflow experiment that holds every training run")
    model_name: str = setting("adult-income", "registered model name the Predictor serves")
    data_dir: Path = setting(
        Path(""), "folder of the spec's data files (empty: data/<spec name>)", DATA
    )
    allow_download: bool = setting(True, "download missing data files from the spec's URLs", DATA)
    tuning_evals: int = setting(20, "Hyperopt trials for the first model", TRAINING, minimum=1)
    retrain_evals: int = setting(6, "Hyperopt trials for each retrain", TRAINING, minimum=1)
    retrain_folds: int = setting(3, "cross-validation folds while retraining", TRAINING, minimum=2)
    cv_folds: int = setting(3, "cross-validation folds while tuning", TRAINING, minimum=2)
    seed: int = setting(42, "seed for tuning and any sampling", ALL)
    threads: int = setting(
        1,
        "LightGBM threads while training; more than 1 only on cores nothing else uses "
        "(OpenMP threads that wait on each other collapse when a core is shared)",
        TRAINING,
        minimum=1,
    )
    input_topic: str = setting(topics.INPUT_TOPIC, "topic of incoming events")
    predictions_topic: str = setting(topics.PREDICTIONS_TOPIC, "topic of predictions")
    dlq_topic: str = setting(topics.DLQ_TOPIC, "dead-letter topic for invalid events")
    retrain_topic: str = setting(topics.RETRAIN_TOPIC, "topic of retrain requests and model news")
    heartbeat_topic: str = setting(
        topics.HEARTBEAT_TOPIC, "compacted topic where each Predictor says what it serves"
    )
    labels_topic: str = setting(
        topics.LABELS_TOPIC,
        "topic of labels that come after their event (request id and label), joined to "
        "predictions for online quality",
    )
    shadow_topic: str = setting(
        topics.SHADOW_TOPIC,
        "topic of the @challenger's scores (beside the champion's) of --shadow-fraction of the "
        "events; never read by upstream services",
    )
    predictor_group: str = setting(topics.PREDICTOR_GROUP, "consumer group of the Predictors")
    trainer_group: str = setting(topics.TRAINER_GROUP, "consumer group of the Trainer")
    input_partitions: int = setting(4, "partitions of the input and prediction topics", minimum=1)
    log_level: str = setting("INFO", "logging level (DEBUG, INFO, WARNING, ERROR)")
    kafka_client: str = setting(
        "kafka-python",
        "Kafka client library: kafka-python, or confluent-kafka (librdkafka: lower latency; "
        "pip install '.[librdkafka]')",
    )
    kafka_security_protocol: str = setting(
        "PLAINTEXT", "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str = setting("", "SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
    kafka_sasl_username: str = setting("", "SASL user name")
    kafka_sasl_password: str = setting("", "SASL password (never logged)", secret=True)
    kafka_ssl_cafile: str = setting("", "CA file that signs the brokers' certificates")
    kafka_ssl_check_hostname: bool = setting(
        True,
        "check that the broker's TLS certificate names the host connected to (off: any "
        "certificate the CA signed is accepted, and each client logs a warning)",
    )
    mlflow_username: str = setting("", "user name for an MLflow server with authentication")
    mlflow_password: str = setting("", "password for the MLflow server (never logged)", secret=True)
    instance_id: str = setting(
        "",
        "stable name of this instance: logs, requests, transactional id and static group "
        "membership (a restart takes its partitions back at once); empty: host-pid "
        "(then no exactly-once: a transactional id must survive a restart)",
        SERVING | TRAINER,
    )
    static_membership: bool = setting(
        True,
        "with --instance-id, join the group as a static member (KIP-345); --no-static-membership "
        "keeps the stable id for the transactional id only, and a stopped instance leaves at once",
        SERVING | TRAINER,
    )
    compile_trees: bool = setting(
        True,
        "score with the trees compiled to native code by lleaves (cached under --home); "
        "--no-compile-trees scores with LightGBM itself",
        SERVING,
    )
    batch_size: int = setting(500, "most events scored in one micro-batch", SERVING, minimum=1)
    batch_wait_ms: int = setting(
        20, "longest wait for a micro-batch to fill at low load", SERVING, minimum=0
    )
    output_linger_ms: int = setting(
        2,
        "how long the Predictor's producer waits to fill a request with outputs: 0 sends each "
        "batch's at once (lower latency at low load), 2 packs more records per request "
        "(more throughput)",
        SERVING,
        minimum=0,
    )
    commit_interval_ms: int = setting(
        100,
        "at-least-once: how often the input offsets of acknowledged outputs are committed "
        "(0: after every batch); a crash replays at most about this much",
        SERVING,
        minimum=0,
    )
    max_event_bytes: int = setting(
        64 * 1024,
        "largest event accepted; larger ones go to the DLQ (the Trainer skips them)",
        SERVING | TRAINER,
        minimum=256,
    )
    retrain_every: int = setting(
        5000,
        "labelled events scored by one instance between retrain requests (0: never)",
        SERVING,
        minimum=0,
    )
    quality_window: int = setting(
        1000,
        "labelled events per online-quality window (precision, recall, AUC... per version)",
        SERVING,
        minimum=10,
    )
    quality_max_drop: float = setting(
        0.05,
        "a retrain is requested (reason quality) when a window's online AUC falls this far "
        "below the version's holdout AUC (1 turns it off)",
        SERVING,
        minimum=0.0,
        maximum=1.0,
    )
    quality_log_interval_s: float = setting(
        5.0,
        "least seconds between a version's MLflow writes of online quality: the newest window "
        "is logged, those closed in between are not (Prometheus shows every one; 0: log each)",
        SERVING,
        minimum=0.0,
    )
    label_ttl_s: float = setting(
        3600.0,
        "how long a prediction waits for its label on --labels-topic (and a label for its "
        "prediction) before it is forgotten",
        SERVING,
        minimum=1.0,
    )
    label_state_max: int = setting(
        100_000,
        "most predictions (and as many early labels) held for the join; the oldest go first",
        SERVING,
        minimum=100,
    )
    drift_window: int = setting(
        1000, "events per drift window, compared with the training profile", SERVING, minimum=10
    )
    drift_sample_every: int = setting(
        4,
        "drift windows count every Nth scored event: the same statistics at a quarter of the "
        "cost (1: every event)",
        SERVING,
        minimum=1,
    )
    drift_threshold: float = setting(
        0.1,
        "Jensen-Shannon distance or PSI above which a feature's window counts as drifted",
        SERVING,
        minimum=0.0,
    )
    drift_patience: int = setting(
        3,
        "consecutive drifted windows of one feature before a retrain is requested "
        "(reason drift; 0: never)",
        SERVING,
        minimum=0,
    )
    retrain_min_interval_s: float = setting(
        300.0,
        "least time between two drift- or quality-triggered retrain requests of one instance",
        SERVING,
        minimum=0.0,
    )
    shadow_fraction: float = setting(
        0.1,
        "share of events the @challenger (when there is one) also scores, in the same batch; "
        "chosen by request id, so every instance picks the same events (0: none)",
        SERVING,
        minimum=0.0,
        maximum=1.0,
    )
    alias_poll_s: float = setting(
        10.0,
        "how often a Predictor re-reads the @champion alias, the truth it follows "
        "(announcements only make a swap faster)",
        SERVING,
        minimum=0.1,
    )
    metrics_port: int = setting(
        0,
        "port of /metrics, /healthz and /readyz (0: none; Kubernetes uses 9100)",
        SERVING | TRAINER,
        minimum=0,
    )
    heartbeat_interval_s: float = setting(
        3.0, "how often a Predictor publishes its heartbeat for ops status", SERVING, minimum=0.1
    )
    ops_timeout_s: float = setting(
        10.0,
        "how long an ops command waits for the broker (to connect, to read the heartbeats, to "
        "have a request acknowledged) before it exits 4",
        frozenset({"ops"}),
        minimum=0.1,
    )
    exactly_once: bool = setting(
        False, "transactional outputs and offsets (readers use read_committed)", SERVING
    )
    gate_confidence: float = setting(
        0.95,
        "promote a retrained model only if the one-sided lower bound of its holdout AUC gain "
        "over the champion (paired DeLong test) at this confidence is above 0",
        TRAINER,
        minimum=0.5,
        maximum=0.9999,
    )
    gate_min_effect: float = setting(
        0.001,
        "and only if its observed holdout AUC gain over the champion is at least this",
        TRAINER,
        minimum=0,
    )
    candidates_to: str = setting(
        "champion",
        "the alias a retrained model that passes the gate receives: champion (served at once) "
        "or challenger (scored in the shadow first)",
        TRAINER,
    )
    shadow_min_labelled: int = setting(
        2000,
        "labelled shadow events after which the Trainer judges @challenger against @champion "
        "on them (the gate's paired test): promoted if it wins, retired if not",
        TRAINER,
        minimum=10,
    )
    retry_backoff_s: float = setting(
        5.0,
        "first wait before retrying a failed training (doubles, at most 5 min)",
        TRAINER,
        minimum=0,
    )
    retrain_max_attempts: int = setting(
        3,
        "failed trainings of one retrain request before it is given up (announced as "
        "training_failed and committed past); Kafka or MLflow being unreachable does not count",
        TRAINER,
        minimum=1,
    )
    retrain_window_events: int = setting(
        50_000,
        "most recent input events a retrain reads on top of the original data, over all "
        "partitions in proportion to what each holds (0: the original data only)",
        TRAINER,
        minimum=0,
    )
    rate: float = setting(
        0.0, "events per second to send (0: as fast as possible)", SAMPLE, minimum=0
    )
    events: int = setting(0, "events to send (0: all the spec's test rows)", SAMPLE, minimum=0)
    bad_every: int = setting(
        0, "send a malformed event every N events (0: never)", SAMPLE, minimum=0
    )
    drain_timeout_s: float = setting(
        60.0, "how long to wait for the last predictions after sending", SAMPLE, minimum=0
    )
    shift: str = setting(
        "", "make the stream drift: add to numeric fields, e.g. 'age=15,hours_per_week=-10'", SAMPLE
    )
    mix: str = setting(
        "",
        "make the stream drift: give a category to a share of events, "
        "e.g. 'occupation=Farming-fishing:0.6'",
        SAMPLE,
    )
    flip_labels: float = setting(
        0.0, "share of labels sent turned around (model decay)", SAMPLE, minimum=0, maximum=1
    )
    labels_later: bool = setting(
        False,
        "send events without their label and the label afterwards on --labels-topic",
        SAMPLE,
    )
    perturb_after: int = setting(
        0,
        "events sent as they are before --shift, --mix and --flip-labels start",
        SAMPLE,
        minimum=0,
    )

    @cached_property
    def pipeline_spec(self) -> PipelineSpec:
        """Read once; settings_from has read it already, so errors surface at start-up."""
        return load_spec(self.spec)

    @property
    def data_folder(self) -> Path:
        return (
            self.data_dir
            if str(self.data_dir) not in ("", ".")
            else Path("data") / (self.pipeline_spec.name)
        )

    @property
    def instance_name(self) -> str:
        return self.instance_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def mlflow_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.home / "mlartifacts").resolve()

    def topic_specs(self) -> list[topics.TopicSpec]:
        return topics.topic_specs(
            self.input_topic,
            self.predictions_topic,
            self.dlq_topic,
            self.retrain_topic,
            self.input_partitions,
            self.heartbeat_topic,
            self.labels_topic,
            self.shadow_topic,
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _convert(raw: str, kind: Any, name: str) -> Any:
    try:
        if kind in (bool, "bool"):
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"{raw!r} is not a boolean")
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
        if kind in (Path, "Path"):
            return Path(raw)
        return raw
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {exc}") from exc


def build_parser(script: str, description: str, add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=script,
        description=description,
        add_help=add_help,
        epilog=f"Every flag can also be set as {ENV_PREFIX}<FLAG_NAME> in the environment.",
    )
    for spec in dataclasses.fields(Settings):
        if script not in spec.metadata["scripts"]:
            continue
        env = ENV_PREFIX + spec.name.upper()
        help_text = f"{spec.metadata['help']} [env {env}; default {spec.default}]"
        if spec.type in (bool, "bool"):
            parser.add_argument(
                _flag(spec.name),
                dest=spec.name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            parser.add_argument(_flag(spec.name), dest=spec.name, default=None, help=help_text)
    return parser


def settings_from(
    parsed: argparse.Namespace, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(Settings):
        raw = getattr(parsed, spec.name, None)
        if raw is None:
            raw = env.get(ENV_PREFIX + spec.name.upper())
        if raw is None and spec.name == "bootstrap_servers":
            raw = env.get("KAFKA_BOOTSTRAP_SERVERS")
        if raw is None:
            continue
        value = raw if isinstance(raw, bool) else _convert(str(raw), spec.type, spec.name)
        minimum, maximum = spec.metadata["minimum"], spec.metadata["maximum"]
        if minimum is not None and value < minimum:
            raise ConfigError(f"setting {spec.name}={value} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"setting {spec.name}={value} must be at most {maximum}")
        if spec.name == "kafka_security_protocol" and value not in SECURITY_PROTOCOLS:
            raise ConfigError(f"setting {spec.name}={value!r} is not one of {SECURITY_PROTOCOLS}")
        if spec.name == "kafka_client":
            _check_kafka_client(str(value))
        if spec.name == "candidates_to" and value not in CANDIDATE_ALIASES:
            raise ConfigError(
                f"setting candidates_to={value!r} is not one of {', '.join(CANDIDATE_ALIASES)}"
            )
        if spec.name == "log_level":
            value = str(value).upper()
            if value not in LOG_LEVELS:
                raise ConfigError(
                    f"setting log_level={raw!r} is not one of {', '.join(LOG_LEVELS)}"
                )
        values[spec.name] = value
    values.update(overrides)
    return _with_spec(values)


def _check_kafka_client(value: str) -> None:
    if value not in KAFKA_CLIENTS:
        raise ConfigError(
            f"setting kafka_client={value!r} is not one of {', '.join(KAFKA_CLIENTS)}"
        )
    if value == CONFLUENT_KAFKA and importlib.util.find_spec("confluent_kafka") is None:
        raise ConfigError(
            "setting kafka_client=confluent-kafka needs the confluent-kafka package: "
            "pip install '.[librdkafka]'"
        )


def _with_spec(values: dict[str, Any]) -> Settings:
    """The spec names the model, topics and groups; a flag or variable still wins."""
    pipeline_spec = load_spec(values.get("spec", DEFAULT_SPEC))
    for name, value in pipeline_spec.settings.items():
        values.setdefault(name, value)
    settings = Settings(**values)
    settings.__dict__["pipeline_spec"] = pipeline_spec  # the cached_property's slot
    return settings


def check_consistent(settings: Settings) -> Settings:
    """Settings that are each valid but wrong together for a running Predictor (tools that only
    read names, such as the ACL printer, take them as they are)."""
    if settings.exactly_once and not settings.instance_id:
        raise ConfigError(
            "exactly-once needs a stable --instance-id: the transactional id "
            f"<{settings.predictor_group}>-<instance-id> must be the same after a restart, or "
            "the new process cannot fence the old one and its open transaction"
        )
    return settings


def settings_to_argv(settings: Settings, script: str) -> list[str]:
    """The flags that hand these settings to another script: how the demo starts its processes."""
    argv: list[str] = []
    for spec in dataclasses.fields(Settings):
        if script not in spec.metadata["scripts"]:
            continue
        value = getattr(settings, spec.name)
        if spec.metadata["secret"]:
            continue  # a command line is visible to every user of the machine: see secret_env
        if spec.type in (bool, "bool"):
            argv.append(_flag(spec.name) if value else "--no-" + spec.name.replace("_", "-"))
        else:
            argv += [_flag(spec.name), str(value)]
    return argv


def secret_env(settings: Settings) -> dict[str, str]:
    """Secrets travel to child processes in their environment, never on their command line."""
    return {
        ENV_PREFIX + spec.name.upper(): getattr(settings, spec.name)
        for spec in dataclasses.fields(Settings)
        if spec.metadata["secret"] and getattr(settings, spec.name)
    }


def parse_settings(
    script: str,
    description: str,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    parser = build_parser(script, description)
    return settings_from(parser.parse_args(argv), env)
