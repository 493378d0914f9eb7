"""Retraining datasets: the original rows plus labelled events, deduplicated, with lineage.

The holdout (every Nth test row, as the spec says) never enters training: a labelled event whose
features equal a holdout row is dropped, so candidate and champion are compared on rows that
neither has seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.events import Event
from pipeline.core.schema import Schema


def categories(values: pd.Series) -> pd.Series:
    """Text, with missing kept missing (None) whatever the pandas version: pandas 2's
    `astype("str")` spells a missing value "None", which a retrained model would then learn as
    a category while serving sends NaN."""
    return pd.Series(
        [None if pd.isna(v) else str(v) for v in values], index=values.index, dtype=object
    )


def normalize(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """One dtype per column whatever the source, so equal rows hash equal."""
    out = pd.DataFrame(index=frame.index)
    for name in schema.numeric_fields:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for name in schema.categorical_fields:
        out[name] = categories(frame[name])
    out = out[list(schema.feature_fields)]
    if schema.label_field in frame:
        out[schema.label_field] = frame[schema.label_field].astype("str")
    return out


def events_frame(events: Sequence[Event], schema: Schema) -> pd.DataFrame:
    fields = schema.feature_fields
    columns = list(zip(*(event.values for event in events), strict=True)) or [()] * len(fields)
    frame = pd.DataFrame(dict(zip(fields, columns, strict=True)))
    frame[schema.label_field] = [event.label for event in events]
    frame["request_id"] = [event.request_id for event in events]
    return frame


def feature_hashes(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    features = normalize(frame, schema)[list(schema.feature_fields)]
    return pd.util.hash_pandas_object(features, index=False).to_numpy()


def digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


@dataclass(frozen=True)
class RetrainDataset:
    frame: pd.DataFrame
    lineage: dict[str, Any]


def build_retrain_dataset(
    original: pd.DataFrame,
    events: Sequence[Event],
    holdout: pd.DataFrame,
    schema: Schema,
    offset_ranges: Mapping[str, Sequence[int]] | None = None,
) -> RetrainDataset:
    new = events_frame(events, schema)
    labelled = new[new[schema.label_field].notna()]
    unique = labelled.drop_duplicates(subset="request_id", keep="last")
    overlap = (
        np.isin(feature_hashes(unique, schema), feature_hashes(holdout, schema))
        if len(unique)
        else np.array([], bool)
    )
    kept = unique[~overlap].drop(columns=["request_id"])
    frame = pd.concat([normalize(original, schema), normalize(kept, schema)], ignore_index=True)
    lineage = {
        "original_rows": len(original),
        "events_read": len(new),
        "labelled_events": len(labelled),
        "duplicate_request_ids_dropped": len(labelled) - len(unique),
        "holdout_overlap_dropped": int(overlap.sum()),
        "event_rows_added": len(kept),
        "training_rows": len(frame),
        "holdout_rows": len(holdout),
        "dataset_sha256": digest(frame),
        "offset_ranges": {k: list(v) for k, v in (offset_ranges or {}).items()},
    }
    return RetrainDataset(frame, lineage)


def merge_end_offsets(requests: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Requests from several instances cover different partitions; keep the furthest of each."""
    merged: dict[str, int] = {}
    for offsets in requests:
        for partition, offset in offsets.items():
            merged[partition] = max(merged.get(partition, 0), offset)
    return merged
