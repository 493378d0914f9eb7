"""The UCI Adult files: fetched when absent, always checksum-verified, parsed into clean frames."""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.core.schema import (
    FEATURE_FIELDS,
    LABEL_FIELD,
    LABELS,
    NUMERIC_FIELDS,
    normalize_label,
)
from pipeline.errors import DataError

log = logging.getLogger(__name__)

UCI_BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"

# Published sums of the original files; a file that differs is not the data set we trained on.
SHA256 = {
    "adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
}

# The files carry `education-num` after `education`; the events do not (it repeats education).
FILE_COLUMNS = (*FEATURE_FIELDS[:4], "education_num", *FEATURE_FIELDS[4:], LABEL_FIELD)


@dataclass(frozen=True)
class AdultData:
    train: pd.DataFrame
    test: pd.DataFrame


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


def download(name: str, dest: Path, base_url: str = UCI_BASE_URL) -> None:
    """Download to a temporary name first so an interrupted transfer never looks complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(dest.suffix + ".part")
    url = base_url + name
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"cannot download {url}: {exc}") from exc
    partial.replace(dest)


def ensure_files(data_dir: Path, *, allow_download: bool = True) -> dict[str, Path]:
    """Return verified paths of the Adult files, downloading those that are missing."""
    paths = {}
    for name, expected in SHA256.items():
        path = data_dir / name
        if not path.exists():
            if not allow_download:
                raise DataError(f"{path} is missing and downloading is disabled")
            download(name, path)
        verify_checksum(path, expected)
        paths[name] = path
    return paths


def read_adult_file(path: Path) -> pd.DataFrame:
    """Parse one Adult file into the event field names, with `?` as missing and clean labels."""
    try:
        frame = pd.read_csv(
            path,
            header=None,
            sep=",",
            skipinitialspace=True,
            na_values=["?"],
            comment="|",  # adult.test opens with `|1x3 Cross validator`
            dtype=str,
            skip_blank_lines=True,
            on_bad_lines="error",
            engine="c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: malformed Adult file: {exc}") from exc
    if frame.shape[1] != len(FILE_COLUMNS):
        raise DataError(
            f"{path}: malformed Adult file: {frame.shape[1]} fields per row, expected {len(FILE_COLUMNS)}"
        )
    frame.columns = list(FILE_COLUMNS)
    return _clean(frame, path)


def _clean(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if frame.empty:
        raise DataError(f"{path}: no rows")
    if frame[LABEL_FIELD].isna().any():
        line = int(frame.index[frame[LABEL_FIELD].isna()][0]) + 1
        raise DataError(f"{path}: row {line} has too few fields (no income label)")
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]):
            stripped = frame[column].str.strip()
            frame[column] = stripped.mask(stripped == "?")  # `?` with trailing spaces too
    for column in NUMERIC_FIELDS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            line = int(frame.index[bad][0]) + 1
            raise DataError(
                f"{path}: row {line}: {column}={frame[column][bad].iloc[0]!r} is not a number"
            )
        frame[column] = numbers.astype("float64")
    frame[LABEL_FIELD] = frame[LABEL_FIELD].map(normalize_label)
    unknown = ~frame[LABEL_FIELD].isin(LABELS)
    if unknown.any():
        line = int(frame.index[unknown][0]) + 1
        raise DataError(
            f"{path}: row {line}: unknown label {frame[LABEL_FIELD][unknown].iloc[0]!r}"
        )
    return frame[[*FEATURE_FIELDS, LABEL_FIELD]].reset_index(drop=True)


def load_adult(data_dir: Path, *, allow_download: bool = True) -> AdultData:
    paths = ensure_files(data_dir, allow_download=allow_download)
    return AdultData(
        train=read_adult_file(paths["adult.data"]),
        test=read_adult_file(paths["adult.test"]),
    )
