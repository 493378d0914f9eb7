"""deploy/ renders, each object fits its schema, and the manifests agree with the code they run.

Schemas: core objects against Kubernetes 1.31's JSON schemas shipped by kubernetes-validate,
strict (an unknown field fails); KEDA's ScaledObject and TriggerAuthentication against the models
cloudcoil-models-keda generates from KEDA's CRDs (2.16), round-tripped so an unknown field fails
too; Strimzi's resources against tests/unit/strimzi_schemas.py (no package ships those).
Rendering: tests/unit/kustomize_lite.py, checked against `kubectl kustomize` where kubectl is.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pipeline.config.settings import ENV_PREFIX, Settings, settings_from
from pipeline.core import topics
from pipeline.ops import capacity

from .kustomize_lite import canonical, render
from .strimzi_schemas import SCHEMAS as STRIMZI_SCHEMAS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.31"
KUSTOMIZATIONS = ("overlays/dev", "overlays/prod", "strimzi")
OVERLAYS = ("overlays/dev", "overlays/prod")
CUSTOM_GROUPS = ("keda.sh/", "kafka.strimzi.io/")
METRICS_PORT = 9100  # the Predictor's --metrics-port as the StatefulSet sets it
# Variables set before their setting exists; each must stop being a Settings field's name-to-be
# once it is one (the test below fails then, so this list is emptied as they land).
PENDING_SETTINGS: dict[str, str] = {}
OTHER_ENV = {"HOME", "MLFLOW_BACKEND_STORE_URI"}  # the tools' own variables, not the pipeline's
FIELDS = {ENV_PREFIX + f.name.upper(): f for f in dataclasses.fields(Settings)}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|DSN|STORE_URI|CREDENTIAL", re.IGNORECASE)
CREDENTIAL_URI = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@cache
def _render(folder: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(DEPLOY / folder))


def objects(folder: str) -> list[dict[str, Any]]:
    return list(_render(folder))


def one(folder: str, kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects(folder) if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def containers(folder: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (o, c)
        for o in objects(folder)
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
    ]


def config_maps(folder: str) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o["data"] for o in objects(folder) if o["kind"] == "ConfigMap"}


def mounted_files(
    folder: str, workload: dict[str, Any], container: dict[str, Any]
) -> dict[str, str]:
    """Path in the container -> text, for every file a ConfigMap volume mounts there."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("configMap")
        if source is None:
            continue
        for key, text in config_maps(folder)[source["name"]].items():
            files[f"{mount['mountPath'].rstrip('/')}/{key}"] = text
    return files


def environment(folder: str, container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every variable a container gets, name -> its env entry (ConfigMap ones as plain values)."""
    env: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        data = config_maps(folder)[source["configMapRef"]["name"]]
        env.update({k: {"name": k, "value": v} for k, v in data.items()})
    env.update({e["name"]: e for e in container.get("env", [])})
    return env


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_each_kustomization_renders_unique_objects(folder) -> None:
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects(folder)]
    assert keys and len(keys) == len(set(keys))


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_renders_as_kubectl_does(folder) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl here to compare the Python rendering with")
    out = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / folder)], capture_output=True, text=True, check=True
    ).stdout
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    theirs = sorted((d for d in yaml.safe_load_all(out) if d), key=key)
    assert canonical(sorted(objects(folder), key=key)) == canonical(theirs)


@pytest.mark.parametrize("folder", OVERLAYS)
def test_core_objects_fit_the_kubernetes_schemas(folder) -> None:
    core = [o for o in objects(folder) if not o["apiVersion"].startswith(CUSTOM_GROUPS)]
    for o in core:
        kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)
    assert {"StatefulSet", "Deployment", "PodDisruptionBudget", "Service"} <= {
        o["kind"] for o in core
    }


def test_keda_objects_fit_keda_crds() -> None:
    from cloudcoil.models.keda.v1alpha1 import ScaledObject, TriggerAuthentication

    models = {"ScaledObject": ScaledObject, "TriggerAuthentication": TriggerAuthentication}
    keda = [o for o in objects("overlays/prod") if o["apiVersion"].startswith("keda.sh/")]
    assert sorted(o["kind"] for o in keda) == sorted(models)
    for o in keda:
        parsed = models[o["kind"]].model_validate(o)  # types, required fields, enums
        # the models ignore unknown fields; what they do not give back is a typo
        assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == o


def test_strimzi_objects_fit_the_strimzi_crds() -> None:
    found = objects("strimzi")
    for o in found:
        jsonschema.Draft202012Validator(STRIMZI_SCHEMAS[o["kind"]]).validate(o)
    assert {o["kind"] for o in found} == set(STRIMZI_SCHEMAS)


@pytest.mark.parametrize("folder", OVERLAYS)
def test_every_pipeline_variable_is_a_setting(folder) -> None:
    assert not set(PENDING_SETTINGS) & set(FIELDS), "a pending setting exists now: unlist it"
    for _, container in containers(folder):
        for name in environment(folder, container):
            if name.startswith(ENV_PREFIX):
                assert name in FIELDS or name in PENDING_SETTINGS, f"{name} is no setting"
            else:
                assert name in OTHER_ENV, f"{container['name']}: unexpected variable {name}"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_the_pipeline_accepts_its_settings(folder, tmp_path: Path) -> None:
    """What the scripts would build from the container's variables (Secrets as placeholders)
    and the files mounted where they point (the pipeline spec, from its ConfigMap)."""
    for workload, container in containers(folder):
        if container["name"] == "mlflow":
            continue
        env = {
            name: entry.get("value", "from-" + next(iter(entry.get("valueFrom", {"?": 0}))))
            for name, entry in environment(folder, container).items()
        }
        mounted = mounted_files(folder, workload, container)
        if "PIPELINE_SPEC" in env:
            assert env["PIPELINE_SPEC"] in mounted, f"{container['name']}: the spec is not mounted"
            shipped = DEPLOY.parent / "specs" / Path(env["PIPELINE_SPEC"]).name
            assert mounted[env["PIPELINE_SPEC"]] == shipped.read_text(), "the spec drifted"
            local = tmp_path / container["name"] / Path(env["PIPELINE_SPEC"]).name
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(mounted[env["PIPELINE_SPEC"]])
            env["PIPELINE_SPEC"] = str(local)
        settings = settings_from(argparse.Namespace(), env=env)
        assert settings.tracking_uri == "http://mlflow:5000"
        if folder.endswith("prod") and container["name"] == "predictor":
            # exactly-once fences by a transactional id that must survive a restart: the pod name
            assert settings.exactly_once and workload["kind"] == "StatefulSet"
            identity = environment(folder, container)["PIPELINE_INSTANCE_ID"]
            assert identity["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_no_secret_is_in_plain_sight(folder) -> None:
    assert not [o for o in objects(folder) if o["kind"] == "Secret"], "Secrets are made by hand"
    for _, container in containers(folder):
        for name, entry in environment(folder, container).items():
            field = FIELDS.get(name)
            if (field is not None and field.metadata["secret"]) or SECRET_NAME.search(name):
                assert "secretKeyRef" in entry.get("valueFrom", {}), f"{name} not from a Secret"
            assert not CREDENTIAL_URI.search(str(entry.get("value", ""))), name
        for arg in container.get("args", []) + container.get("command", []):
            assert not CREDENTIAL_URI.search(arg) and "password" not in arg.lower(), arg
    for name, data in config_maps(folder).items():
        for key, value in data.items():
            assert not SECRET_NAME.search(key) and not CREDENTIAL_URI.search(value), (name, key)


@pytest.mark.parametrize("folder", OVERLAYS)
def test_predictor_probes_use_the_metrics_port(folder) -> None:
    predictor = one(folder, "StatefulSet", "predictor")["spec"]["template"]["spec"]
    [container] = predictor["containers"]
    assert {"name": "metrics", "containerPort": METRICS_PORT} in container["ports"]
    paths = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in paths.items():
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
    service = one(folder, "Service", "predictor")["spec"]["ports"]
    assert service == [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]


def _input_partitions() -> int:
    topic = one("strimzi", "KafkaTopic", "app-messages")["spec"]
    assert topic["topicName"] == topics.INPUT_TOPIC
    return int(topic["partitions"])


def test_autoscaling_agrees_with_the_topics_and_the_capacity_model() -> None:
    scaled = one("overlays/prod", "ScaledObject", "predictor")["spec"]
    target = scaled["scaleTargetRef"]
    assert one("overlays/prod", target["kind"], target["name"])["kind"] == "StatefulSet"
    settings = config_maps("overlays/prod")["pipeline-settings"]
    partitions = _input_partitions()
    assert int(settings["PIPELINE_INPUT_PARTITIONS"]) == partitions
    assert capacity.MIN_REPLICAS <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    assert scaled["maxReplicaCount"] <= partitions  # a consumer beyond them sits idle
    [trigger] = scaled["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert int(meta["lagThreshold"]) == capacity.lag_threshold()
    assert meta["consumerGroup"] == Settings().predictor_group
    assert meta["topic"] == Settings().input_topic
    assert meta["bootstrapServers"] == settings["PIPELINE_BOOTSTRAP_SERVERS"]
    assert meta["sasl"] == "scram_sha512" and meta["tls"] == "enable"
    assert not {"username", "password"} & set(meta), "credentials belong in the authentication"
    one("overlays/prod", "TriggerAuthentication", trigger["authenticationRef"]["name"])


@pytest.mark.parametrize("folder", OVERLAYS)
def test_resources_come_from_the_measurements(folder) -> None:
    def pod(kind: str, name: str) -> dict[str, Any]:
        return one(folder, kind, name)["spec"]["template"]["spec"]["containers"][0]

    predictor = pod("StatefulSet", "predictor")["resources"]
    assert _quantity(predictor["requests"]["cpu"]) == capacity.PREDICTOR_CORES
    memory = _quantity(predictor["requests"]["memory"]) / 2**20
    assert (
        capacity.PREDICTOR_PEAK_RSS_MB * 1.25
        <= memory
        <= _quantity(predictor["limits"]["memory"]) / 2**20
    )
    trainer = pod("Deployment", "trainer")
    threads = environment(folder, trainer)["PIPELINE_THREADS"]["value"]
    assert _quantity(trainer["resources"]["requests"]["cpu"]) == int(threads)
    assert trainer["resources"]["limits"]["cpu"] == trainer["resources"]["requests"]["cpu"]
    limit = _quantity(trainer["resources"]["limits"]["memory"]) / 2**20
    assert limit == capacity.TRAINER_MEMORY_LIMIT_MB  # the model's window bound uses it


def _quantity(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_strimzi_topics_are_the_topics_of_the_code() -> None:
    declared = {
        o["spec"]["topicName"]: o["spec"] for o in objects("strimzi") if o["kind"] == "KafkaTopic"
    }
    expected = topics.topic_specs(input_partitions=_input_partitions())
    assert set(declared) == {spec.name for spec in expected}
    for spec in expected:
        assert declared[spec.name]["partitions"] == spec.partitions, spec.name
        config = {k: str(v) for k, v in declared[spec.name].get("config", {}).items()}
        assert spec.configs.items() <= config.items(), spec.name


def test_strimzi_users_have_only_what_their_role_needs() -> None:
    users = {
        o["metadata"]["name"]: o["spec"] for o in objects("strimzi") if o["kind"] == "KafkaUser"
    }
    assert set(users) == {"ml-predictor", "ml-trainer", "ml-sample-app", "ml-ops"}
    known = {
        "topic": {s.name for s in topics.topic_specs()},
        "group": {topics.PREDICTOR_GROUP, topics.TRAINER_GROUP},
        "transactionalId": {f"{topics.PREDICTOR_GROUP}-"},
    }
    for user, spec in users.items():
        assert spec["authentication"]["type"] == "scram-sha-512"
        for acl in spec["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource["name"] in known[resource["type"]], (user, resource)
            assert resource["patternType"] == (
                "prefix" if resource["type"] == "transactionalId" else "literal"
            )
            assert not {"All", "Create", "Delete", "Alter", "AlterConfigs"} & set(
                acl["operations"]
            ), (user, acl)
    kafka = one("strimzi", "Kafka", "ml-kafka")["spec"]["kafka"]
    assert kafka["authorization"]["type"] == "simple"
    assert [(x["tls"], x["authentication"]["type"]) for x in kafka["listeners"]] == [
        (True, "scram-sha-512")
    ]
