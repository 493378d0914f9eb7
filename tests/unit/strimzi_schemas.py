"""Structural schemas for the Strimzi resources in deploy/strimzi (no package ships Strimzi's).

Written down from Strimzi's CRDs, API kafka.strimzi.io/v1beta2 (packaging/install/cluster-operator
04x-Crd-*.yaml of strimzi-kafka-operator, 0.45 and later): the required fields, enums and patterns
of the parts deploy/strimzi uses. Only those parts: where we write a field the CRD does not know,
`additionalProperties: false` fails it; fields we do not use are not described here.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "kafka.strimzi.io/v1beta2"
DNS_1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OPERATIONS = [
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
]


def _strict(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _resource(kind: str, spec: dict[str, Any], cluster_label: bool = True) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": DNS_1123, "maxLength": 253}},
        "required": ["name"],
    }
    if cluster_label:  # the operators pick up only resources labelled with their cluster
        metadata["properties"]["labels"] = {
            "type": "object",
            "required": ["strimzi.io/cluster"],
        }
        metadata["required"].append("labels")
    return _strict(
        {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": kind},
            "metadata": metadata,
            "spec": spec,
        },
        ["apiVersion", "kind", "metadata", "spec"],
    )


_STORAGE_VOLUME = _strict(
    {
        "id": {"type": "integer", "minimum": 0},
        "type": {"enum": ["ephemeral", "persistent-claim"]},
        "size": {"type": "string"},
        "class": {"type": "string"},
        "deleteClaim": {"type": "boolean"},
        "kraftMetadata": {"enum": ["shared"]},
    },
    ["type"],
)
_RESOURCES = {
    "type": "object",
    "properties": {"requests": {"type": "object"}, "limits": {"type": "object"}},
    "additionalProperties": False,
}
_LISTENER = _strict(
    {
        "name": {"type": "string", "pattern": "^[a-z0-9]{1,11}$"},
        "port": {"type": "integer", "minimum": 9092, "not": {"enum": [9404, 9999]}},
        "type": {
            "enum": ["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"]
        },
        "tls": {"type": "boolean"},
        "authentication": _strict(
            {"type": {"enum": ["tls", "scram-sha-512", "oauth", "custom"]}}, ["type"]
        ),
    },
    ["name", "port", "type", "tls"],
)
_ACL = _strict(
    {
        "type": {"enum": ["allow", "deny"]},
        "resource": _strict(
            {
                "type": {"enum": ["topic", "group", "cluster", "transactionalId"]},
                "name": {"type": "string"},
                "patternType": {"enum": ["literal", "prefix"]},
            },
            ["type"],
        ),
        "host": {"type": "string"},
        "operations": {
            "type": "array",
            "minItems": 1,
            "items": {"enum": OPERATIONS},
            "uniqueItems": True,
        },
    },
    ["resource", "operations"],
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "Kafka": _resource(
        "Kafka",
        _strict(
            {
                "kafka": _strict(
                    {
                        "version": {"type": "string"},
                        "metadataVersion": {"type": "string"},
                        "listeners": {"type": "array", "minItems": 1, "items": _LISTENER},
                        "authorization": _strict(
                            {"type": {"enum": ["simple", "opa", "keycloak", "custom"]}},
                            ["type"],
                        ),
                        "config": {"type": "object"},
                    },
                    ["listeners"],
                ),
                "entityOperator": _strict(
                    {"topicOperator": {"type": "object"}, "userOperator": {"type": "object"}},
                    [],
                ),
            },
            ["kafka"],
        ),
        cluster_label=False,
    ),
    "KafkaNodePool": _resource(
        "KafkaNodePool",
        _strict(
            {
                "replicas": {"type": "integer", "minimum": 0},
                "roles": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": ["controller", "broker"]},
                    "uniqueItems": True,
                },
                "storage": _strict(
                    {
                        "type": {"enum": ["ephemeral", "persistent-claim", "jbod"]},
                        "volumes": {"type": "array", "items": _STORAGE_VOLUME},
                        "size": {"type": "string"},
                    },
                    ["type"],
                ),
                "resources": _RESOURCES,
            },
            ["replicas", "storage", "roles"],
        ),
    ),
    "KafkaTopic": _resource(
        "KafkaTopic",
        _strict(
            {
                "topicName": {"type": "string"},
                "partitions": {"type": "integer", "minimum": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                "config": {"type": "object"},
            },
            [],
        ),
    ),
    "KafkaUser": _resource(
        "KafkaUser",
        _strict(
            {
                "authentication": _strict(
                    {"type": {"enum": ["tls", "tls-external", "scram-sha-512"]}}, ["type"]
                ),
                "authorization": _strict(
                    {"type": {"enum": ["simple"]}, "acls": {"type": "array", "items": _ACL}},
                    ["type", "acls"],
                ),
            },
            [],
        ),
    ),
}
