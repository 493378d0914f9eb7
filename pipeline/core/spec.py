"""A pipeline spec: one TOML file that says what the events are, where the data is, and names.

Read with `tomllib` and checked whole before anything starts: every error names the file and
the key, and unknown keys are refused (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pipeline.core.schema import ENVELOPE_KEYS, KINDS, Field, Schema
from pipeline.errors import ConfigError

# The Adult spec the repository ships: with no --spec, everything behaves as it always did.
DEFAULT_SPEC: Final = Path(__file__).resolve().parents[2] / "specs" / "adult.toml"
TASKS: Final = ("binary",)
# Settings a spec may name; flags and PIPELINE_* variables still win over the spec.
SPEC_SETTINGS: Final = {
    "model": ("model_name", "experiment"),
    "kafka": (
        "input_topic",
        "predictions_topic",
        "dlq_topic",
        "retrain_topic",
        "heartbeat_topic",
        "labels_topic",
        "shadow_topic",
        "predictor_group",
        "trainer_group",
    ),
}
_MODEL_KEYS: Final = {"name": "model_name", "experiment": "experiment"}


class SpecError(ConfigError):
    """The spec file is missing, not TOML, or says something the pipeline cannot do."""


@dataclass(frozen=True)
class Source:
    """One data file: in the data folder (downloaded from `url` when absent) or a package's."""

    sha256: str
    file: str = ""
    url: str = ""
    package: str = ""
    resource: str = ""

    @property
    def label(self) -> str:
        return f"{self.package}:{self.resource}" if self.package else self.file


@dataclass(frozen=True)
class CsvOptions:
    columns: tuple[str, ...] = ()  # the file's columns in order; empty: the header names them
    header: bool = True
    sep: str = ","
    skip_rows: int = 0
    comment: str | None = None
    na_values: tuple[str, ...] = ()
    skip_initial_space: bool = False


@dataclass(frozen=True)
class DataSpec:
    train: Source
    test: Source | None
    csv: CsvOptions
    test_fraction: float = 0.3  # the test rows split from train when there is no test file
    split_seed: int = 42
    holdout_every: int = 2  # the holdout: every Nth test row (never trained on)


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    task: str
    description: str
    schema: Schema
    data: DataSpec
    settings: Mapping[str, str]  # setting name -> value (model name, topics, groups)
    path: Path
    text: str  # the file as written: logged with every model trained from it

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


class _Table:
    """A TOML table that remembers where it is, so every error names file and key."""

    def __init__(self, data: Mapping[str, Any], where: str, path: Path) -> None:
        self.data, self.where, self.path = data, where, path
        self.used: set[str] = set()

    def fail(self, key: str, reason: str) -> SpecError:
        dotted = f"{self.where}.{key}" if self.where else key
        return SpecError(f"{self.path}: {dotted}: {reason}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(key, f"expected {names}, got {value!r}")
        return value

    def table(self, key: str, required: bool = True) -> _Table | None:
        value = self.get(key, dict, ... if required else None)
        return None if value is None else _Table(value, self._join(key), self.path)

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        values = self.get(key, list, default)
        if not all(isinstance(v, str) for v in values):
            raise self.fail(key, f"expected a list of strings, got {values!r}")
        return tuple(values)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key")

    def _join(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key


def load_spec(path: Path | str = DEFAULT_SPEC) -> PipelineSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the pipeline spec {path}: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    return parse_spec(raw, path, text)


def parse_spec(raw: Mapping[str, Any], path: Path, text: str = "") -> PipelineSpec:
    top = _Table(raw, "", path)
    name = top.get("name", str)
    task = top.get("task", str)
    if task not in TASKS:
        raise top.fail("task", f"{task!r} is not supported; this pipeline does {', '.join(TASKS)}")
    description = top.get("description", str, "")
    schema = _schema(top, path)
    data = _data(top.table("data"), schema)  # type: ignore[arg-type]
    settings = _settings(top)
    top.done()
    return PipelineSpec(name, task, description, schema, data, settings, path.resolve(), text)


def _schema(top: _Table, path: Path) -> Schema:
    events = top.table("events")
    label = top.table("label")
    features = top.table("features", required=False)
    assert events is not None and label is not None
    raw_fields = events.get("fields", list)
    if not raw_fields:
        raise events.fail("fields", "at least one field is needed")
    fields = tuple(
        _field(_Table(item, f"events.fields[{i}]", path)) for i, item in enumerate(raw_fields)
    )
    names = [f.name for f in fields]
    for i, name in enumerate(names):
        if name in names[:i] or name in ENVELOPE_KEYS:
            raise events.fail(f"fields[{i}].name", f"{name!r} is taken")
    missing = frozenset(events.strings("missing", ("",)))
    events.done()
    label_field = label.get("field", str)
    if label_field in names or label_field in ENVELOPE_KEYS:
        raise label.fail("field", f"{label_field!r} is also an event field")
    labels = (label.get("negative", str), label.get("positive", str))
    if labels[0] == labels[1]:
        raise label.fail("positive", "the two classes must differ")
    spellings = label.get("spellings", dict, {})
    for written, meant in spellings.items():
        if meant not in labels:
            raise label.fail(f"spellings.{written}", f"{meant!r} is not one of {labels}")
    label.done()
    crosses: tuple[tuple[str, str], ...] = ()
    if features is not None:
        crosses = tuple(_cross(features, pair, names) for pair in features.get("crosses", list))
        features.done()
    return Schema(fields, label_field, labels, tuple(spellings.items()), missing, crosses)


def _field(table: _Table) -> Field:
    name = table.get("name", str)
    kind = table.get("kind", str)
    if kind not in KINDS:
        raise table.fail("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    required = table.get("required", bool, True)
    if kind == "numeric":
        low, high = table.get("min", float, None), table.get("max", float, None)
        if low is not None and high is not None and low > high:
            raise table.fail("min", f"{low} is above max {high}")
        table.done()
        return Field(name, "numeric", required, minimum=low, maximum=high)
    max_length = table.get("max_length", int, 100)
    if max_length < 1:
        raise table.fail("max_length", "must be at least 1")
    table.done()
    return Field(name, "categorical", required, max_length=max_length)


def _cross(features: _Table, pair: Any, names: list[str]) -> tuple[str, str]:
    if not (isinstance(pair, list) and len(pair) == 2 and all(p in names for p in pair)):
        raise features.fail("crosses", f"{pair!r} is not a pair of event fields")
    return pair[0], pair[1]


def _data(table: _Table, schema: Schema) -> DataSpec:
    train = _source(table.table("train"))  # type: ignore[arg-type]
    test_table = table.table("test", required=False)
    test = _source(test_table) if test_table is not None else None
    csv = CsvOptions(
        columns=table.strings("columns", ()),
        header=table.get("header", bool, True),
        sep=table.get("sep", str, ","),
        skip_rows=table.get("skip_rows", int, 0),
        comment=table.get("comment", str, None),
        na_values=table.strings("na_values", ()),
        skip_initial_space=table.get("skip_initial_space", bool, False),
    )
    if not csv.header and not csv.columns:
        raise table.fail("columns", "needed when header = false")
    needed = [*schema.feature_fields, schema.label_field]
    absent = [n for n in needed if csv.columns and n not in csv.columns]
    if absent:
        raise table.fail("columns", f"no column for {absent}")
    fraction = table.get("test_fraction", float, 0.3)
    if not 0.0 < fraction < 1.0:
        raise table.fail("test_fraction", "must be between 0 and 1")
    seed = table.get("split_seed", int, 42)
    every = table.get("holdout_every", int, 2)
    if every < 1:
        raise table.fail("holdout_every", "must be at least 1")
    table.done()
    return DataSpec(train, test, csv, fraction, seed, every)


def _source(table: _Table) -> Source:
    sha256 = table.get("sha256", str)
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise table.fail("sha256", "expected 64 lowercase hex digits")
    url = table.get("url", str, "")
    package, resource = table.get("package", str, ""), table.get("resource", str, "")
    file = table.get("file", str, url.rsplit("/", 1)[-1] if url else "")
    if bool(package) != bool(resource):
        raise table.fail("resource" if package else "package", "package and resource go together")
    if not (file or package):
        raise table.fail("file", "a source needs file, url, or package and resource")
    table.done()
    return Source(sha256, file, url, package, resource)


def _settings(top: _Table) -> dict[str, str]:
    settings: dict[str, str] = {}
    for section, names in SPEC_SETTINGS.items():
        table = top.table(section, required=False)
        if table is None:
            continue
        for key in list(table.data):
            setting = _MODEL_KEYS.get(key, key) if section == "model" else key
            if setting not in names:
                raise table.fail(key, "unknown key")
            settings[setting] = table.get(key, str)
        table.done()
    return settings
