from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.data import load_data, read_source, read_table, sha256_of, verify_checksum
from pipeline.errors import DataError

ROW = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K"


def test_checksum_mismatch_names_the_file(tmp_path: Path, adult_spec) -> None:
    (tmp_path / "adult.data").write_text(ROW + "\n")
    (tmp_path / "adult.test").write_text(ROW + "\n")
    with pytest.raises(DataError, match=r"adult\.data: sha256 .* does not match"):
        load_data(adult_spec, tmp_path, allow_download=False)
    data = adult_spec.data
    with pytest.raises(DataError, match=r"adult\.test: sha256 .* does not match"):
        read_source(data.test, data, adult_spec.schema, tmp_path, allow_download=False)
    with pytest.raises(DataError, match=r"adult\.data: sha256 .* does not match"):
        verify_checksum(tmp_path / "adult.data", data.train.sha256)


def test_missing_file_without_download_is_a_clear_error(tmp_path: Path, adult_spec) -> None:
    with pytest.raises(DataError, match=r"adult\.data is missing"):
        load_data(adult_spec, tmp_path, allow_download=False)


def test_question_marks_are_missing_and_spaces_are_stripped(tmp_path: Path, adult_spec) -> None:
    path = tmp_path / "adult.data"
    path.write_text(
        "  25 ,  ? , 226802, 11th, 7, Never-married, ?, Own-child, Black, Male, 0, 0, 40,  ?  ,  >50K \n"
    )
    frame = read_table(path, adult_spec.data, adult_spec.schema)
    row = frame.iloc[0]
    assert row["age"] == 25.0
    assert (
        pd.isna(row["workclass"]) and pd.isna(row["occupation"]) and pd.isna(row["native_country"])
    )
    assert row["race"] == "Black"
    assert row["income_bracket"] == ">50K"


def test_test_file_header_line_and_trailing_dot(tmp_path: Path, adult_spec) -> None:
    path = tmp_path / "adult.test"
    path.write_text("|1x3 Cross validator\n" + ROW.replace("<=50K", "<=50K.") + "\n\n")
    frame = read_table(path, adult_spec.data, adult_spec.schema)
    assert len(frame) == 1
    assert frame["income_bracket"].tolist() == ["<=50K"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("39, State-gov, 77516\n", "3 fields per row, the spec names 15"),
        (ROW + "\n39, State-gov, 77516\n", "row 2 has too few fields"),
        (ROW.replace("39", "old") + "\n", "age='old' is not a number"),
        (ROW + ", extra, fields\n", "malformed"),
        (ROW.replace("<=50K", "maybe") + "\n", "unknown label"),
    ],
)
def test_malformed_file_is_an_error_naming_the_file(
    tmp_path: Path, adult_spec, content: str, message: str
) -> None:
    path = tmp_path / "broken.data"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        read_table(path, adult_spec.data, adult_spec.schema)
    assert str(path) in str(caught.value)


def test_shared_files_match_the_published_sums(data_dir: Path, adult_spec) -> None:
    sources = {"adult.data": adult_spec.data.train, "adult.test": adult_spec.data.test}
    for name, source in sources.items():
        assert source is not None and source.file == name
        assert sha256_of(data_dir / name) == source.sha256


def test_real_files_load_with_their_row_counts(adult) -> None:
    assert len(adult.train) == 32561
    assert len(adult.test) == 16281
    assert set(adult.test["income_bracket"]) == {"<=50K", ">50K"}
    assert pd.api.types.is_string_dtype(adult.train["workclass"])
    assert adult.train["workclass"].isna().sum() == 1836
