import json

import numpy as np
import pytest

from pipeline.core.features import FeatureBuilder


@pytest.fixture(scope="module")
def builder(adult, schema) -> FeatureBuilder:
    return FeatureBuilder.for_schema(schema).fit(adult.train)


def test_unseen_category_and_cross_become_missing(builder, adult) -> None:
    # The seed article crashed at row 519 of adult.test on this unseen cross.
    row = adult.test.iloc[[0]].copy()
    row["native_country"] = "Columbia"
    row["occupation"] = "Farming-fishing"
    row["workclass"] = "Moon-base"
    matrix = builder.transform(row)
    names = builder.feature_names
    assert np.isnan(matrix[0, names.index("workclass")])
    assert np.isnan(matrix[0, names.index("native_country_x_occupation")])
    assert not np.isnan(matrix[0, names.index("occupation")])


def test_missing_field_and_missing_values_become_nan(builder, adult) -> None:
    rows = adult.test.head(3).drop(columns=["occupation"])
    rows.loc[rows.index[0], "age"] = None
    matrix = builder.transform(rows)
    names = builder.feature_names
    assert np.isnan(matrix[:, names.index("occupation")]).all()
    assert np.isnan(matrix[:, names.index("education_x_occupation")]).all()
    assert np.isnan(matrix[0, names.index("age")])
    assert not np.isnan(matrix[1, names.index("age")])


def test_column_order_does_not_matter(builder, adult) -> None:
    rows = adult.test.head(50)
    shuffled = rows[list(reversed(rows.columns))]
    np.testing.assert_array_equal(builder.transform(rows), builder.transform(shuffled))


def test_one_row_equals_the_same_row_inside_a_batch(builder, adult) -> None:
    batch = adult.test.head(600)
    matrix = builder.transform(batch)
    for position in (0, 17, 519, 599):
        alone = builder.transform(batch.iloc[[position]])
        np.testing.assert_array_equal(alone[0], matrix[position])


def test_plain_column_dicts_give_the_same_matrix(builder, adult, schema) -> None:
    rows = adult.test.head(20)
    columns = {name: rows[name].tolist() for name in schema.feature_fields}
    np.testing.assert_array_equal(builder.transform(columns), builder.transform(rows))


def test_json_round_trip_keeps_the_encoding(builder, adult, schema) -> None:
    again = FeatureBuilder.from_dict(json.loads(json.dumps(builder.to_dict())))
    np.testing.assert_array_equal(
        again.transform(adult.test.head(100)), builder.transform(adult.test.head(100))
    )
    assert again.numeric == schema.numeric_fields
    assert again.categorical == schema.categorical_fields
    assert again.crossed == schema.crosses
    legacy = {k: v for k, v in builder.to_dict().items() if k != "numeric"}
    with pytest.raises(ValueError, match="names no fields"):
        FeatureBuilder.from_dict(legacy)


def test_transform_before_fit_is_refused(adult, schema) -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        FeatureBuilder.for_schema(schema).transform(adult.test.head(1))


def test_a_refit_forgets_the_old_vocabulary(adult, schema) -> None:
    builder = FeatureBuilder.for_schema(schema).fit(adult.train.head(200))
    builder.transform(adult.test.head(5))
    builder.fit(adult.train)
    np.testing.assert_array_equal(
        builder.transform(adult.test.head(50)),
        FeatureBuilder.for_schema(schema).fit(adult.train).transform(adult.test.head(50)),
    )


def test_missing_categories_are_missing_in_training_and_in_serving(adult, schema) -> None:
    """Train/serve skew: the retraining path (events -> frame -> normalize) and the serving path
    (events -> columns) must give the same matrix for events with missing values."""
    from pipeline.core.batching import columns_of
    from pipeline.core.datasets import events_frame, normalize
    from pipeline.core.events import EventDecoder, encode_event
    from pipeline.tools.sample_stream import event_rows

    decoder = EventDecoder(schema, 65536)
    rows = event_rows(adult.test.head(40), schema)
    for i, row in enumerate(rows):
        if i % 2:
            row["workclass"] = None
        if i % 3 == 0:
            row["occupation"] = None
    events = [decoder.parse(encode_event(f"r-{i}", row)) for i, row in enumerate(rows)]
    training = normalize(events_frame(events, schema), schema)
    assert not (training[["workclass", "occupation"]] == "None").any().any()
    builder = FeatureBuilder.for_schema(schema).fit(training)
    assert "None" not in json.dumps(builder.to_dict())
    np.testing.assert_array_equal(
        builder.transform(training), builder.transform(columns_of(events, schema.feature_fields))
    )
