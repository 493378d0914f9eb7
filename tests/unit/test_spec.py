"""The pipeline spec: read whole, refused with the file and the key, and everything follows it."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pipeline.config.settings import parse_settings, settings_from
from pipeline.core.data import load_data
from pipeline.core.events import EventDecoder, encode_event
from pipeline.core.model_checks import check_spec
from pipeline.core.spec import DEFAULT_SPEC, SpecError, load_spec
from pipeline.core.training import evaluate, train_model
from pipeline.core.tuning import TuningConfig
from pipeline.errors import ModelError, ValidationError
from pipeline.tools.sample_stream import event_rows

SPECS = DEFAULT_SPEC.parent
CANCER = SPECS / "breast_cancer.toml"
TINY = TuningConfig(max_evals=1, folds=2, max_rounds=40, early_stopping_rounds=5, seed=1)


def edited(tmp_path: Path, old: str, new: str, source: Path = DEFAULT_SPEC) -> Path:
    text = source.read_text()
    assert old in text, old
    path = tmp_path / "edited.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_shipped_adult_spec_is_the_contract_the_pipeline_always_had() -> None:
    spec = load_spec()
    schema = spec.schema
    assert spec.name == "adult" and spec.task == "binary"
    assert schema.feature_fields[:3] == ("age", "workclass", "fnlwgt")
    assert len(schema.numeric_fields) == 5 and len(schema.categorical_fields) == 8
    assert schema.labels == ("<=50K", ">50K") and schema.label_field == "income_bracket"
    assert schema.normalize_label(" >50K. ") == ">50K"
    assert schema.crosses == (("education", "occupation"), ("native_country", "occupation"))
    assert spec.settings["input_topic"] == "app_messages"
    assert spec.settings["model_name"] == "adult-income"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('task = "binary"', 'task = "multiclass"', "task"),
        ('task = "binary"', 'task = "binary"\ncolour = "red"', "colour"),
        ('kind = "numeric", min = 0, max = 150', 'kind = "number"', r"events\.fields\[0\]\.kind"),
        ("min = 0, max = 150", "min = 200, max = 150", r"events\.fields\[0\]\.min"),
        ("max_length = 100 },\n  { name = \"fnlwgt\"", "max_length = 0 },\n  { name = \"fnlwgt\"",
         r"events\.fields\[1\]\.max_length"),
        ('positive = ">50K"', 'positive = 50', r"label\.positive"),
        ('positive = ">50K"', 'positive = "<=50K"', r"label\.positive"),
        ('"<=50K." = "<=50K"', '"<=50K." = "low"', r"label\.spellings\.<=50K\."),
        ('["education", "occupation"]', '["education", "salary"]', r"features\.crosses"),
        ('"hours_per_week", "native_country", "income_bracket",', '"hours_per_week",',
         r"data\.columns"),
        ('sha256 = "5b00', 'sha256 = "XX00', r"data\.train\.sha256"),
        ("holdout_every = 2", "holdout_every = 0", r"data\.holdout_every"),
        ('input_topic = "app_messages"', 'input_topic = 3', r"kafka\.input_topic"),
        ('input_topic = "app_messages"', 'inbox = "x"', r"kafka\.inbox"),
        ('field = "income_bracket"', 'field = "age"', r"label\.field"),
    ],
)  # fmt: skip
def test_a_wrong_spec_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    path = edited(tmp_path, old, new)
    with pytest.raises(SpecError, match=rf"^{re.escape(str(path))}: {key}: "):
        load_spec(path)


def test_a_spec_that_is_not_there_or_not_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the pipeline spec"):
        load_spec(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("name = [unclosed")
    with pytest.raises(SpecError, match="not valid TOML") as caught:
        load_spec(tmp_path / "bad.toml")
    assert caught.value.exit_code == 2 and isinstance(
        caught.value.__cause__, tomllib.TOMLDecodeError
    )


def test_the_spec_names_topics_groups_and_model_and_a_flag_still_wins() -> None:
    settings = parse_settings("predictor", "", ["--spec", str(CANCER)], env={})
    assert settings.input_topic == "cancer_events" and settings.model_name == "breast-cancer"
    assert settings.predictor_group == "cancer-predictor"
    assert settings.data_folder == Path("data/breast-cancer")
    flagged = parse_settings(
        "predictor", "", ["--spec", str(CANCER), "--input-topic", "mine"], env={}
    )
    assert flagged.input_topic == "mine" and flagged.dlq_topic == "cancer_events_dlq"
    from_env = settings_from(argparse.Namespace(), env={"PIPELINE_SPEC": str(CANCER)})
    assert from_env.pipeline_spec.name == "breast-cancer"
    default = parse_settings("predictor", "", [], env={})
    assert default.pipeline_spec.path == DEFAULT_SPEC.resolve()
    assert (default.input_topic, default.model_name) == ("app_messages", "adult-income")
    assert default.data_folder == Path("data/adult")


def test_the_second_data_set_comes_from_an_installed_package_checksum_verified(
    tmp_path: Path,
) -> None:
    spec = load_spec(CANCER)
    data = load_data(spec, tmp_path, allow_download=False)
    assert (len(data.train), len(data.test), len(data.holdout)) == (398, 171, 86)
    assert set(data.train["diagnosis"]) == {"benign", "malignant"}
    assert not list(tmp_path.iterdir()), "nothing is downloaded or copied"
    wrong = edited(tmp_path, 'sha256 = "fed3', 'sha256 = "0ed3', CANCER)
    with pytest.raises(Exception, match="does not match the published"):
        load_data(load_spec(wrong), tmp_path)


def test_events_are_decoded_by_the_spec_they_belong_to(tmp_path: Path) -> None:
    spec = load_spec(CANCER)
    data = load_data(spec, tmp_path)
    decoder = EventDecoder(spec.schema)
    row = event_rows(data.test.head(1), spec.schema)[0]
    event = decoder.parse(encode_event("r1", row))
    assert event.label in spec.schema.labels and len(event.values) == 30
    assert decoder.parse(encode_event("r2", {**row, "diagnosis": "0"})).label == "malignant"
    with pytest.raises(ValidationError) as caught:
        decoder.parse(encode_event("r3", {**row, "mean_radius": -1}))
    assert caught.value.field == "data.mean_radius"
    with pytest.raises(ValidationError, match="missing field mean_texture"):
        decoder.parse(encode_event("r4", {k: v for k, v in row.items() if k != "mean_texture"}))
    adult = EventDecoder(load_spec().schema)
    with pytest.raises(ValidationError, match="missing field age"):
        adult.parse(encode_event("r5", row))  # one pipeline's event is another's bad input


def test_a_model_trained_for_one_spec_is_refused_by_another_with_the_reason(
    tmp_path: Path,
) -> None:
    spec = load_spec(CANCER)
    data = load_data(spec, tmp_path)
    model = train_model(data.train, TINY, spec.schema).model
    assert evaluate(model, data.holdout)["auc"] > 0.9
    check_spec(model, spec.schema)  # its own: fine
    with pytest.raises(ModelError, match=r"trained for another pipeline spec.*missing \['age'"):
        check_spec(model, load_spec().schema)
    # Same fields, other classes: the fingerprint tells them apart where names cannot.
    text = CANCER.read_text().replace('"malignant"', '"bad"')
    (tmp_path / "relabelled.toml").write_text(text)
    relabelled = load_spec(tmp_path / "relabelled.toml")
    assert relabelled.schema.feature_fields == spec.schema.feature_fields
    with pytest.raises(ModelError, match="labels"):
        check_spec(model, relabelled.schema)
    assert np.isfinite(model.predict_proba(data.test)).all()


def test_a_spec_with_only_numbers_has_no_categorical_features(tmp_path: Path) -> None:
    spec = load_spec(CANCER)
    data = load_data(spec, tmp_path)
    model = train_model(data.train, TINY, spec.schema).model
    assert model.features.categorical == () and model.features.categorical_features == []
    assert model.features.is_fitted
