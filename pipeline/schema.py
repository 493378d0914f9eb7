"""The event fields the model reads, spelled once for data loading, validation and features."""

from typing import Final

NUMERIC_FIELDS: Final = (
    "age",
    "fnlwgt",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
)
CATEGORICAL_FIELDS: Final = (
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native_country",
)
FEATURE_FIELDS: Final = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
)
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
