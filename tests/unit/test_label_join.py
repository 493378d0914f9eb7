"""The late-label join: whichever side comes second completes the pair, per version; state is
bounded by size and age whatever upstream does."""

from __future__ import annotations

import pytest

from pipeline.core.messages import MessageError, label_record, parse_label
from pipeline.services.label_join import JoinState


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_labels_after_or_before_their_prediction_are_joined_to_its_version() -> None:
    state = JoinState(ttl_s=60, max_entries=100)
    state.predicted(1, [("a", 0.9), ("b", 0.2)])
    state.labelled([("a", 1), ("zz", 0)])  # zz: another instance's event, or not scored yet
    state.predicted(2, [("zz", 0.4)])
    assert state.drain() == {1: [(0.9, 1)], 2: [(0.4, 0)]}
    assert state.drain() == {}
    assert list(state.predictions) == ["b"] and state.matched == 2 and state.read == 2


def test_state_is_bounded_by_size_and_by_age() -> None:
    clock = Clock()
    state = JoinState(ttl_s=10, max_entries=100, clock=clock)
    state.predicted(1, [(f"r{i}", 0.5) for i in range(250)])
    assert len(state.predictions) == 100 and next(iter(state.predictions)) == "r150"
    state.labelled([(f"x{i}", 1) for i in range(150)])
    assert len(state.labels) == 100
    clock.now = 11.0
    state.predicted(1, [("new", 0.5)])
    state.labelled([("late", 0)])
    assert list(state.predictions) == ["new"] and list(state.labels) == ["late"]
    assert state.expired == 150 + 50 + 100 + 100


def test_label_records_round_trip_and_bad_ones_are_refused(schema) -> None:
    assert parse_label(label_record("r1", ">50K."), schema) == ("r1", 1)
    assert parse_label(label_record("r2", "<=50K"), schema) == ("r2", 0)
    for raw in (b"{", b"[]", b'{"request_id": "r"}', b'{"request_id": "r", "label": "rich"}'):
        with pytest.raises(MessageError):
            parse_label(raw, schema)
