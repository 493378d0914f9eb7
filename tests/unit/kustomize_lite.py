"""A small kustomize, so the manifest tests need no binary: `kubectl kustomize` in Python.

It knows exactly what deploy/ uses (resources, files or folders with their own kustomization,
`namespace`, `images`, and strategic-merge `patches` that name their target by kind and name) and
refuses any other field, so a kustomization that grows a feature it does not know fails loudly
rather than rendering something else than kubectl would. Where kubectl is installed, a test
checks that both render the same objects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}
# Kubernetes' patchMergeKey of the lists deploy/ patches; any other list is replaced whole.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}

Resource = dict[str, Any]


class KustomizeError(ValueError):
    pass


def render(folder: Path) -> list[Resource]:
    """The objects `kubectl kustomize folder` prints, in the order their files list them."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{folder}: kustomization fields not supported here: {unknown}")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            resources += render(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{folder}: only `patches: - path:` is supported: {patch_entry}")
        patch = yaml.safe_load((folder / patch_entry["path"]).read_text())
        target = _target(resources, patch, folder)
        merged = patch_merge(copy.deepcopy(target), patch)
        target.clear()
        target.update(merged)
    for image in spec.get("images", []):
        _set_image(resources, image)
    namespace = spec.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace
    return resources


def _target(resources: list[Resource], patch: Resource, folder: Path) -> Resource:
    name = patch.get("metadata", {}).get("name")
    matches = [
        r for r in resources if r["kind"] == patch.get("kind") and r["metadata"]["name"] == name
    ]
    if len(matches) != 1:
        raise KustomizeError(
            f"{folder}: a patch for {patch.get('kind')}/{name} matches {len(matches)} objects"
        )
    return matches[0]


def patch_merge(base: Any, patch: Any, key: str = "") -> Any:
    """Strategic merge: maps merge, lists with a merge key merge by it, null deletes."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            elif name in merged:
                merged[name] = patch_merge(merged[name], value, name)
            else:
                merged[name] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        field = MERGE_KEYS[key]
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            same = [i for i, old in enumerate(merged_list) if old.get(field) == item.get(field)]
            if same:
                merged_list[same[0]] = patch_merge(merged_list[same[0]], item)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def canonical(value: Any) -> Any:
    """Order-free form for comparing renders: kubectl puts a patch's new list items first."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if all(isinstance(v, dict) for v in items):
            for field in ("name", "mountPath"):
                if items and all(field in v for v in items):
                    return sorted(items, key=lambda v: str(v[field]))
        return items
    return value
