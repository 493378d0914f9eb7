"""A challenger scores its share of live traffic in the shadow: on a real broker, through an
operator's commands, a restart and a hot-swap of the champion."""

from __future__ import annotations

import json
from dataclasses import replace

from mlflow.tracking import MlflowClient

from pipeline.config.settings import Settings
from pipeline.core.messages import parse_shadow
from pipeline.core.shadow import in_shadow
from pipeline.core.training import train_model
from pipeline.core.tuning import TuningConfig
from pipeline.ops.__main__ import main as ops
from pipeline.registry import tracking
from pipeline.registry.challenger import challenger_version, set_challenger
from pipeline.services.predictor import Predictor
from pipeline.services.trainer import Trainer

from .conftest import TopicReader, await_true, in_thread, produce, register
from .helpers import make_events, retrain_request
from .test_lifecycle import ops_argv

FRACTION = 0.4


def test_a_challenger_scores_in_the_shadow_and_never_answers(
    live: Settings, adult, trained_model, capsys
) -> None:
    settings = replace(live, alias_poll_s=2.0, shadow_fraction=FRACTION)
    other = train_model(
        adult.train.head(3000),
        TuningConfig(max_evals=1, folds=2, max_rounds=30, early_stopping_rounds=5, seed=5),
        live.pipeline_spec.schema,
    ).model
    challenger = register(settings, other, adult.test.head(50))
    assert ops(ops_argv(settings, "challenger", str(challenger))) == 0
    assert ops(ops_argv(settings, "status", "--json")) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["champion"] == 1 and report["challenger"] == challenger

    answers = TopicReader(settings, settings.predictions_topic)
    shadow = TopicReader(settings, settings.shadow_topic)
    try:
        _shadow_through_restart_swap_and_clear(
            settings, adult, trained_model, answers, shadow, challenger
        )
    finally:
        answers.close()
        shadow.close()


def _shadow_through_restart_swap_and_clear(
    settings: Settings,
    adult,
    trained_model,
    answers: TopicReader,
    shadow: TopicReader,
    challenger: int,
) -> None:
    sent: list[str] = []

    def send(prefix: str, start: int) -> set[str]:
        events = make_events(adult, 150, prefix, start=start)
        produce(settings, events)
        sent.extend(key for key, _ in events)
        answers.wait_for(lambda r: len({x.key for x in r}) >= len(sent), 60, f"{prefix} answered")
        return {key for key, _ in events if in_shadow(key, FRACTION)}

    def shadowed(prefix: str) -> list[dict]:
        return [r for r in _entries(shadow.records) if r["request_id"].startswith(f"{prefix}-")]

    # From the first batch, and again from the first batch after a restart.
    for prefix, start in (("a", 0), ("b", 150)):
        with in_thread(Predictor(settings).run):
            picked = send(prefix, start)
            enough = len(picked)
            shadow.wait_for(
                lambda r, p=prefix, n=enough: len(shadowed(p)) >= n, 30, "shadow records"
            )
        assert {r["request_id"] for r in shadowed(prefix)} == picked
        assert all(r["pair"] == (1, challenger) for r in shadowed(prefix))

    predictor = Predictor(settings)
    with in_thread(predictor.run):
        # The champion is hot-swapped; the challenger stays in the shadow of the new one.
        v3 = register(settings, trained_model, adult.test.head(50))
        assert ops(ops_argv(settings, "promote", str(v3))) == 0
        await_true(lambda: predictor.slot.current.version == v3, 30, "the swap to v3")
        picked = send("c", 300)
        shadow.wait_for(lambda r: len(shadowed("c")) >= len(picked), 30, "shadow after the swap")
        assert {r["pair"] for r in shadowed("c")} == {(v3, challenger)}
        # Cleared: the Predictor drops it, and the next events have no shadow.
        assert ops(ops_argv(settings, "challenger", "--clear")) == 0
        await_true(lambda: predictor.slot.challenger is None, 30, "the challenger dropped")
        send("d", 450)
        for _ in range(5):  # written before the answers were, if at all
            shadow.poll()
        assert shadowed("d") == []

    served = answers.json()
    assert {a["model_version"] for a in served} == {1, v3}  # never the challenger's
    everything = _entries(shadow.records)
    assert all(r["pair"][1] == challenger for r in everything)
    assert len(everything) == len({r["request_id"] for r in everything})
    assert tracking.champion_version(settings) == v3


def test_the_trainer_promotes_a_better_challenger_and_retires_a_worse_one_on_live_evidence(
    live: Settings, adult, trained_model
) -> None:
    settings = replace(live, alias_poll_s=2.0, shadow_fraction=1.0, shadow_min_labelled=300)
    weak = train_model(
        adult.train.head(400),
        TuningConfig(max_evals=1, folds=2, max_rounds=4, early_stopping_rounds=2, seed=9),
        live.pipeline_spec.schema,
    ).model
    tracking.connect(settings)
    weak_version = register(settings, weak, adult.test.head(50))
    tracking.set_champion(settings, weak_version, by="test")
    strong = register(settings, trained_model, adult.test.head(50))
    set_challenger(settings, strong, by="test", reason="a better model")
    predictor, trainer = Predictor(settings), Trainer(settings)
    news = TopicReader(settings, settings.retrain_topic)
    try:
        with in_thread(trainer.run), in_thread(predictor.run):
            produce(settings, make_events(adult, 400, "a"))
            await_true(lambda: tracking.champion_version(settings) == strong, 60, "promotion")
            await_true(lambda: predictor.slot.current.version == strong, 30, "the swap")
            await_true(lambda: len(trainer.judge.decisions) == 1, 30, "the verdict recorded")
            assert challenger_version(settings) is None
            [first] = trainer.judge.decisions
            assert first["version"] == strong and first["decision"] == "promoted"
            assert 300 <= first["labelled"] <= 400
            # Now a worse one: it is retired, and the champion stays.
            again = register(settings, weak, adult.test.head(50))
            set_challenger(settings, again, by="test", reason="a worse model")
            await_true(lambda: predictor.slot.challenger is not None, 30, "the new shadow")
            produce(settings, make_events(adult, 400, "b", start=400))
            await_true(lambda: challenger_version(settings) is None, 60, "retirement")
            await_true(lambda: len(trainer.judge.decisions) == 2, 30, "the second verdict")
            assert trainer.judge.decisions[-1]["decision"] == "retired"
        assert tracking.champion_version(settings) == strong
        tags = MlflowClient().get_model_version(settings.model_name, str(again)).tags
        assert tags["shadow.decision"] == "retired" and "live evidence" in tags["shadow.reason"]
        news.wait_for(lambda r: len(_model_ready(r)) >= 2, 30, "both verdicts announced")
        ready = _model_ready(news.records)
        assert [(m["version"], m["promoted"]) for m in ready] == [
            (strong, True),
            (again, False),
        ]
    finally:
        news.close()


def _model_ready(records: list) -> list[dict]:
    messages = [json.loads(r.value) for r in records if r.value]
    return [m for m in messages if m.get("type") == "model_ready"]


def _entries(records: list) -> list[dict]:
    """Every shadowed event in the shadow records read so far."""
    out = []
    for record in records:
        batch = parse_shadow(record.value)
        pair = (batch.champion_version, batch.challenger_version)
        out += [{"request_id": e.request_id, "pair": pair, "truth": e.truth} for e in batch.entries]
    return out


def test_a_trainer_set_to_challenger_gives_a_better_candidate_the_challenger_alias(
    live: Settings, adult
) -> None:
    """--candidates-to challenger: a retrain that passes the offline gate shadows first; the
    champion does not move, and the announcement says the champion is unchanged."""
    settings = replace(live, candidates_to="challenger")
    weak = train_model(
        adult.train.head(400),
        TuningConfig(max_evals=1, folds=2, max_rounds=4, early_stopping_rounds=2, seed=9),
        live.pipeline_spec.schema,
    ).model
    tracking.set_champion(settings, register(settings, weak, adult.test.head(50)), by="test")
    champion = tracking.champion_version(settings)
    news = TopicReader(settings, settings.retrain_topic)
    request = retrain_request(settings, "to-the-shadow")
    try:
        with in_thread(Trainer(settings).run):
            produce(settings, [("r", request)], topic=settings.retrain_topic)
            news.wait_for(lambda r: len(_model_ready(r)) >= 1, 180, "the retrained model")
        [ready] = _model_ready(news.records)
        assert ready["gate"]["alias"] == "challenger" and ready["promoted"] is False
        assert challenger_version(settings) == ready["version"] != champion
        assert tracking.champion_version(settings) == champion
        tags = MlflowClient().get_model_version(settings.model_name, str(ready["version"])).tags
        assert tags["gate.alias"] == "challenger" and tags["gate.promoted"] == "true"
    finally:
        news.close()
