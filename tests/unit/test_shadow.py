"""The challenger in the shadow: which events it scores, what it publishes, how it comes and
goes between batches."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pipeline.config.settings import build_parser, settings_from
from pipeline.core.batching import ServingModel, columns_of, same_features, score_batch
from pipeline.core.events import EventDecoder, encode_event
from pipeline.core.messages import ShadowBatch, ShadowEntry, parse_shadow
from pipeline.core.shadow import in_shadow
from pipeline.core.training import train_model
from pipeline.core.tuning import TuningConfig
from pipeline.errors import ConfigError, ModelError
from pipeline.ops.__main__ import main as ops
from pipeline.services.hot_swap import ModelSlot, ModelWatcher
from pipeline.tools.sample_stream import event_rows


@pytest.fixture(scope="module")
def decoder(schema) -> EventDecoder:
    return EventDecoder(schema, 1 << 16)


def test_the_shadow_share_is_chosen_by_request_id_alone() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    picked = [i for i in ids if in_shadow(i, 0.1)]
    assert 0.09 < len(picked) / len(ids) < 0.11
    assert picked == [i for i in ids if in_shadow(i, 0.1)]  # the same answer every time
    assert set(picked) <= {i for i in ids if in_shadow(i, 0.3)}  # a larger share keeps these
    assert not any(in_shadow(i, 0.0) for i in ids[:1000])
    assert all(in_shadow(i, 1.0) for i in ids[:1000])
    # CRC-32, not Python's salted hash: the same in every process, on every machine.
    assert [in_shadow(f"r{i}", 0.5) for i in range(8)] == _crc_reference(8, 0.5)


def _crc_reference(n: int, fraction: float) -> list[bool]:
    import zlib

    return [zlib.crc32(f"r{i}".encode()) / 2**32 < fraction for i in range(n)]


class Record:
    topic, partition, key = "in", 0, None

    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value = offset, value


@pytest.fixture(scope="module")
def two_models(adult, schema):
    def tiny(rows: int, seed: int):
        config = TuningConfig(
            max_evals=1, folds=2, max_rounds=20, early_stopping_rounds=5, seed=seed
        )
        return train_model(adult.train.head(rows), config, schema).model

    return ServingModel(tiny(2000, 1), "adult", 1), ServingModel(tiny(1200, 2), "adult", 7)


def test_the_challenger_scores_its_share_in_the_batch_and_never_answers(
    adult, schema, decoder, two_models
) -> None:
    champion, challenger = two_models
    rows = event_rows(adult.test.head(60), schema)
    records = [Record(i, encode_event(f"r{i}", row)) for i, row in enumerate(rows)]
    result = score_batch(records, champion, decoder, "test", challenger, 0.5)

    answers = [json.loads(o.value) for o in result.predictions]
    assert len(answers) == 60 and {a["model_version"] for a in answers} == {1}
    [record] = result.shadow  # one record for the batch's shadowed events
    batch = parse_shadow(record.value)
    assert (batch.model_name, batch.champion_version, batch.challenger_version) == ("adult", 1, 7)
    expected = [f"r{i}" for i in range(60) if in_shadow(f"r{i}", 0.5)]
    assert [e.request_id for e in batch.entries] == expected and 15 < len(expected) < 45
    assert record.key == expected[0].encode()
    events = [decoder.parse(records[int(r[1:])].value) for r in expected]
    theirs = challenger.model.predict_proba(columns_of(events, schema.feature_fields))
    mine = {a["request_id"]: a["probability"] for a in answers}
    for entry, p in zip(batch.entries, theirs.tolist(), strict=True):
        assert entry.champion == mine[entry.request_id] and entry.challenger == p
        assert entry.truth in ("<=50K", ">50K")
        assert entry.offset == int(entry.request_id[1:]) and batch.topic == "in"
    assert not np.allclose(theirs, [mine[r] for r in expected])  # two models, two answers
    assert not same_features(champion.model.features, challenger.model.features)

    # A challenger with the champion's features scores the champion's own matrix.
    twin = ServingModel(challenger.model, "adult", 8)
    twin_features = ServingModel(
        dataclasses.replace(challenger.model, features=champion.model.features), "adult", 9
    )
    assert same_features(champion.model.features, twin_features.model.features)
    shared = score_batch(records, champion, decoder, "test", twin_features, 1.0)
    own = twin_features.model.predict_proba(
        columns_of([decoder.parse(r.value) for r in records], schema.feature_fields)
    )
    [entries] = [parse_shadow(o.value).entries for o in shared.shadow]
    assert [e.challenger for e in entries] == own.tolist()
    [other] = score_batch(records, champion, decoder, "test", twin, 1.0).shadow
    assert len(parse_shadow(other.value).entries) == 60


def test_a_large_batch_is_shadowed_in_records_that_fit(adult, schema, decoder, two_models) -> None:
    champion, challenger = two_models
    rows = event_rows(adult.test.head(2500), schema)
    records = [Record(i, encode_event(f"r{i}", row)) for i, row in enumerate(rows)]
    shadow = score_batch(records, champion, decoder, "test", challenger, 1.0).shadow
    sizes = [len(parse_shadow(o.value).entries) for o in shadow]
    assert sizes == [1000, 1000, 500] and max(len(o.value) for o in shadow) < 200_000

    assert score_batch(records, champion, decoder, "test", None, 0.5).shadow == []
    assert score_batch(records, champion, decoder, "test", challenger, 0.0).shadow == []


def test_a_challenger_that_cannot_score_costs_the_shadow_not_the_batch(
    adult, schema, decoder, two_models
) -> None:
    champion = two_models[0]

    class Broken:
        threshold = 0.5

        def predict_proba(self, columns):
            raise ValueError("a broken challenger")

    rows = event_rows(adult.test.head(10), schema)
    records = [Record(i, encode_event(f"r{i}", row)) for i, row in enumerate(rows)]
    broken = ServingModel(Broken(), "adult", 9)  # type: ignore[arg-type]
    result = score_batch(records, champion, decoder, "test", broken, 1.0)
    assert len(result.predictions) == 10 and result.shadow == []


def test_the_slot_takes_and_drops_the_challenger_between_batches() -> None:
    slot = ModelSlot(ServingModel(None, "adult", 1))  # type: ignore[arg-type]
    slot.offer_challenger(ServingModel(None, "adult", 2))  # type: ignore[arg-type]
    assert slot.challenger is None and slot.challenger_target == 2
    assert slot.swap_if_pending() is False  # the champion did not change
    assert slot.challenger is not None and slot.challenger.version == 2
    slot.offer(ServingModel(None, "adult", 3))  # type: ignore[arg-type]
    assert slot.swap_if_pending() is True
    assert slot.current.version == 3 and slot.challenger.version == 2  # the shadow survives
    slot.offer_challenger(None)
    assert slot.challenger_target is None
    slot.swap_if_pending()
    assert slot.challenger is None


def test_the_watcher_follows_challenger_and_refuses_a_bad_one() -> None:
    aliases = {"champion": 1, "challenger": 2}
    broken = {5}

    def load(version: int) -> ServingModel:
        if version in broken:
            raise ModelError(f"version {version} failed its checks")
        return ServingModel(None, "adult", version)  # type: ignore[arg-type]

    slot = ModelSlot(ServingModel(None, "adult", 1))  # type: ignore[arg-type]
    watcher = ModelWatcher(
        None,  # type: ignore[arg-type]
        slot,
        "adult",
        read_alias=lambda: aliases["champion"],
        load=load,
        read_challenger=lambda: aliases["challenger"],
    )
    watcher.reconcile()
    slot.swap_if_pending()
    assert slot.challenger is not None and slot.challenger.version == 2
    aliases["challenger"] = 5
    watcher.reconcile()
    slot.swap_if_pending()
    assert slot.challenger.version == 2 and watcher.refused == 1  # the bad one stays out
    aliases["challenger"] = None  # type: ignore[assignment]
    watcher.reconcile()
    slot.swap_if_pending()
    assert slot.challenger is None


def test_candidates_go_to_champion_or_challenger_and_nothing_else() -> None:
    parser = build_parser("trainer", "")
    assert settings_from(parser.parse_args([]), {}).candidates_to == "champion"
    chosen = settings_from(parser.parse_args(["--candidates-to", "challenger"]), {})
    assert chosen.candidates_to == "challenger"
    with pytest.raises(ConfigError, match="candidates_to"):
        settings_from(parser.parse_args(["--candidates-to", "shadow"]), {})
    with pytest.raises(ConfigError, match="shadow_fraction"):
        settings_from(build_parser("predictor", "").parse_args(["--shadow-fraction", "1.5"]), {})


def test_the_challenger_verb_wants_a_version_or_clear(capsys) -> None:
    assert ops(["challenger"]) == 2
    assert ops(["challenger", "3", "--clear"]) == 2
    assert "VERSION or --clear" in capsys.readouterr().err


def _batch(
    n: int, champion_noise: float, challenger_noise: float, seed: int = 0, champion: int = 1
) -> ShadowBatch:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)

    def scores(noise: float) -> np.ndarray:
        return np.clip(0.3 + 0.4 * truth + rng.normal(0, noise, n), 0.001, 0.999)

    mine, theirs = scores(champion_noise), scores(challenger_noise)
    entries = [
        ShadowEntry(
            f"r{i}", float(mine[i]), float(theirs[i]), ">50K" if truth[i] else "<=50K", 0, i
        )
        for i in range(n)
    ]
    return ShadowBatch("adult", champion, 2, 0.5, "in", 0, entries)


def test_live_evidence_promotes_a_clearly_better_challenger_and_retires_a_worse_one() -> None:
    from pipeline.core.gate import GateConfig
    from pipeline.core.shadow_evidence import ShadowEvidence

    better, worse = ShadowEvidence(400, ("<=50K", ">50K")), ShadowEvidence(400, ("<=50K", ">50K"))
    better.add(_batch(400, champion_noise=0.4, challenger_noise=0.15))
    worse.add(_batch(400, champion_noise=0.15, challenger_noise=0.4, seed=1))
    assert better.ready((1, 2)) and worse.ready((1, 2))
    verdict = better.verdict((1, 2), GateConfig())
    assert verdict.promoted and verdict.candidate_auc > verdict.champion_auc
    assert not worse.verdict((1, 2), GateConfig()).promoted
    figures = better.figures((1, 2))
    assert figures["labelled"] == 400 and 0 < figures["agreement"] < 1
    assert figures["challenger_auc"] > figures["champion_auc"]
    assert {"challenger_log_loss", "challenger_precision", "champion_recall"} <= set(figures)


def test_evidence_counts_labelled_records_per_pair_and_waits_for_both_classes() -> None:
    from pipeline.core.shadow_evidence import ShadowEvidence

    evidence = ShadowEvidence(10, ("<=50K", ">50K"))
    batch = _batch(30, 0.2, 0.2)
    evidence.add(dataclasses.replace(batch, entries=batch.entries[:9]))
    assert not evidence.ready((1, 2))
    unlabelled = [dataclasses.replace(e, truth=None) for e in batch.entries[9:20]]
    assert evidence.add(dataclasses.replace(batch, entries=unlabelled)) is None  # no evidence
    assert evidence.add(_batch(1, 0.2, 0.2, champion=3)) == (3, 2)  # another champion, pair
    assert evidence.labelled((1, 2)) == 9 and evidence.labelled((3, 2)) == 1
    one_class = ShadowEvidence(10, ("<=50K", ">50K"))
    positives = [e for e in batch.entries if e.truth == ">50K"]
    one_class.add(dataclasses.replace(batch, entries=positives))
    assert one_class.labelled((1, 2)) >= 10 and not one_class.ready((1, 2))


def test_a_shadow_record_that_is_not_one_is_refused() -> None:
    from pipeline.core.messages import MessageError

    for raw in (b"not json", b"[]", b'{"entries": [["r1", 0.5]]}'):
        with pytest.raises(MessageError):
            parse_shadow(raw)
