"""A spec's data files: fetched when absent, always checksum-verified, parsed into clean frames.

A file lives in the data folder (downloaded from its URL when missing) or inside an installed
package (`importlib.resources`); either way its sha256 must be the one the spec records.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import shutil
import urllib.error
import urllib.request
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.schema import Schema
from pipeline.core.spec import DataSpec, PipelineSpec, Source
from pipeline.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TabularData:
    train: pd.DataFrame
    test: pd.DataFrame  # the rows the sample app streams; the holdout is taken from them
    holdout_every: int = 2

    @property
    def holdout(self) -> pd.DataFrame:
        return holdout_of(self.test, self.holdout_every)


def holdout_of(test: pd.DataFrame, every: int) -> pd.DataFrame:
    """Never trained on: candidate and champion are compared on these rows."""
    return test.iloc[::every].reset_index(drop=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            f"{path}: sha256 {actual} does not match the published {expected}; "
            "delete the file to download it again"
        )


def download(url: str, dest: Path) -> None:
    """Download to a temporary name first so an interrupted transfer never looks complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(dest.suffix + ".part")
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"cannot download {url}: {exc}") from exc
    partial.replace(dest)


def _located(source: Source, data_dir: Path, allow_download: bool) -> AbstractContextManager[Path]:
    if source.package:
        try:
            resource = importlib.resources.files(source.package).joinpath(source.resource)
        except ModuleNotFoundError as exc:
            raise DataError(f"{source.label}: package {source.package} is not installed") from exc
        if not resource.is_file():
            raise DataError(f"{source.label}: no such file in the installed package")
        return importlib.resources.as_file(resource)
    path = Path(source.file) if Path(source.file).is_absolute() else data_dir / source.file
    if not path.exists():
        if not source.url:
            raise DataError(f"{path} is missing and the spec gives no url to download it from")
        if not allow_download:
            raise DataError(f"{path} is missing and downloading is disabled")
        download(source.url, path)
    return nullcontext(path)


def source_uri(source: Source, data_dir: Path) -> str:
    """Where a person finds the file again: its URL, or its path here."""
    if source.url:
        return source.url
    if source.package:
        return str(importlib.resources.files(source.package).joinpath(source.resource))
    return str((data_dir / source.file).resolve())


def read_source(
    source: Source, spec: DataSpec, schema: Schema, data_dir: Path, allow_download: bool = True
) -> pd.DataFrame:
    with _located(source, data_dir, allow_download) as path:
        verify_checksum(path, source.sha256)
        return read_table(path, spec, schema)


def read_table(path: Path, spec: DataSpec, schema: Schema) -> pd.DataFrame:
    """Parse one CSV file into the events' field names, with missing kept missing."""
    csv = spec.csv
    try:
        frame = pd.read_csv(
            path,
            header=0 if csv.header else None,
            sep=csv.sep,
            skiprows=csv.skip_rows,
            skipinitialspace=csv.skip_initial_space,
            na_values=list(csv.na_values),
            keep_default_na=False,
            comment=csv.comment,
            dtype=str,
            skip_blank_lines=True,
            on_bad_lines="error",
            engine="c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: malformed CSV file: {exc}") from exc
    if csv.columns:
        if frame.shape[1] != len(csv.columns):
            raise DataError(
                f"{path}: {frame.shape[1]} fields per row, the spec names {len(csv.columns)}"
            )
        frame.columns = list(csv.columns)
    absent = [n for n in (*schema.feature_fields, schema.label_field) if n not in frame]
    if absent:
        raise DataError(f"{path}: no column for {absent}")
    return _clean(frame, path, schema)


def _clean(frame: pd.DataFrame, path: Path, schema: Schema) -> pd.DataFrame:
    label = schema.label_field
    if frame.empty:
        raise DataError(f"{path}: no rows")
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]):
            stripped = frame[column].str.strip()
            frame[column] = stripped.mask(stripped.isin(list(schema.missing | {""})))
    if frame[label].isna().any():  # a short row, or an empty or missing-marked label
        line = int(frame.index[frame[label].isna()][0]) + 1
        raise DataError(f"{path}: row {line} has too few fields or no {label}")
    for column in schema.numeric_fields:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            line = int(frame.index[bad][0]) + 1
            raise DataError(
                f"{path}: row {line}: {column}={frame[column][bad].iloc[0]!r} is not a number"
            )
        frame[column] = numbers.astype("float64")
    frame[label] = frame[label].map(schema.normalize_label)
    unknown = ~frame[label].isin(schema.labels)
    if unknown.any():
        line = int(frame.index[unknown][0]) + 1
        raise DataError(f"{path}: row {line}: unknown label {frame[label][unknown].iloc[0]!r}")
    return frame[[*schema.feature_fields, label]].reset_index(drop=True)


def load_data(spec: PipelineSpec, data_dir: Path, *, allow_download: bool = True) -> TabularData:
    """Train and test rows; without a test file, a seeded share of the rows is the test."""
    data = spec.data
    train = read_source(data.train, data, spec.schema, data_dir, allow_download)
    if data.test is not None:
        test = read_source(data.test, data, spec.schema, data_dir, allow_download)
        return TabularData(train, test, data.holdout_every)
    order = np.random.default_rng(data.split_seed).permutation(len(train))
    cut = round(len(train) * data.test_fraction)
    test = train.iloc[order[:cut]].reset_index(drop=True)
    rest = train.iloc[order[cut:]].reset_index(drop=True)
    return TabularData(rest, test, data.holdout_every)
