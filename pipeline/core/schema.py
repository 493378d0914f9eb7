"""The event fields the model reads, spelled once for data loading, validation and features."""

from typing import Final

# Field -> kind, in the order of the Adult files and the events' `data` object.
FIELD_KINDS: Final = {
    "age": "numeric",
    "workclass": "categorical",
    "fnlwgt": "numeric",
    "education": "categorical",
    "marital_status": "categorical",
    "occupation": "categorical",
    "relationship": "categorical",
    "race": "categorical",
    "gender": "categorical",
    "capital_gain": "numeric",
    "capital_loss": "numeric",
    "hours_per_week": "numeric",
    "native_country": "categorical",
}
FEATURE_FIELDS: Final = tuple(FIELD_KINDS)
NUMERIC_FIELDS: Final = tuple(name for name, kind in FIELD_KINDS.items() if kind == "numeric")
CATEGORICAL_FIELDS: Final = tuple(n for n, kind in FIELD_KINDS.items() if kind == "categorical")
LABEL_FIELD: Final = "income_bracket"
POSITIVE_LABEL: Final = ">50K"
LABELS: Final = ("<=50K", ">50K")

# Crossed columns from the seed article: interactions a tree finds only with many splits.
CROSSED_FIELDS: Final = (
    ("education", "occupation"),
    ("native_country", "occupation"),
)


def normalize_label(raw: str) -> str:
    """`adult.test` and the seed article's producers write `<=50K.`; both mean `<=50K`."""
    return raw.strip().rstrip(".").strip()
