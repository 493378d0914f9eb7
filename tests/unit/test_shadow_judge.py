"""The Trainer's judge of @challenger, with the registry calls recorded instead of made: whose
records count, when a verdict is moot, and what a verdict does to the aliases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from kafka.errors import KafkaConnectionError

from pipeline.config.settings import Settings
from pipeline.core.messages import ShadowBatch, ShadowEntry, shadow_record
from pipeline.kafka_io import clients
from pipeline.services import shadow_judge
from pipeline.services.metrics import TrainerMetrics
from pipeline.services.shadow_judge import ShadowJudge


class Record:
    def __init__(self, value: bytes) -> None:
        self.value = value


class Consumer:
    """Hands out the records it is given, one poll at a time."""

    def __init__(self) -> None:
        self.waiting: list[list[Record]] = []

    def poll(self, timeout_ms: int = 0, max_records: int = 0) -> dict[str, list[Record]]:
        return {"tp": self.waiting.pop(0)} if self.waiting else {}


def batch(model: str, n: int, better: bool, seed: int = 0, truth_of=None) -> ShadowBatch:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    good = np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.12, n), 0.001, 0.999)
    poor = np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.45, n), 0.001, 0.999)
    mine, theirs = (poor, good) if better else (good, poor)
    labels = truth_of or (lambda t: ">50K" if t else "<=50K")
    entries = [
        ShadowEntry(f"r{i}", float(mine[i]), float(theirs[i]), labels(truth[i]), 0, i)
        for i in range(n)
    ]
    return ShadowBatch(model, 1, 2, 0.5, "in", 0, entries)


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, Any]]:
    made: list[tuple[str, Any]] = []
    aliases = {"champion": 1, "challenger": 2}
    monkeypatch.setattr(shadow_judge.tracking, "champion_version", lambda s: aliases["champion"])
    monkeypatch.setattr(shadow_judge, "challenger_version", lambda s: aliases["challenger"])
    monkeypatch.setattr(shadow_judge, "log_shadow", lambda *a, **k: made.append(("log", a[1])))
    monkeypatch.setattr(
        shadow_judge.tracking,
        "set_champion",
        lambda s, version, **k: made.append(("champion", version)),
    )
    monkeypatch.setattr(
        shadow_judge,
        "clear_challenger",
        lambda s, **k: made.append(("clear", k["expected"])),
    )
    made.append(("aliases", aliases))
    return made


def judge(min_labelled: int = 300) -> tuple[ShadowJudge, Consumer, list]:
    settings = Settings(model_name="adult", shadow_min_labelled=min_labelled)
    news: list = []
    made = ShadowJudge(settings, TrainerMetrics(), news.append)
    consumer = Consumer()
    made._consumer = consumer  # type: ignore[assignment]
    return made, consumer, news


def test_another_pipelines_records_and_unknown_labels_are_not_evidence(calls) -> None:
    made, consumer, news = judge()
    other = batch("someone-else", 400, better=True)
    junk = batch("adult", 400, better=True, truth_of=lambda t: "maybe")
    consumer.waiting = [[Record(shadow_record(other)), Record(shadow_record(junk))]]
    assert made.step() == 2
    assert made.evidence.labelled((1, 2)) == 0 and not news and made.decisions == []
    consumer.waiting = [[Record(shadow_record(batch("adult", 299, better=True)))]]
    made.step()
    assert made.evidence.labelled((1, 2)) == 299 and not news  # one short of a verdict


def test_a_better_challenger_is_promoted_and_its_alias_cleared_only_if_still_its_own(
    calls,
) -> None:
    made, consumer, news = judge()
    consumer.waiting = [[Record(shadow_record(batch("adult", 400, better=True)))]]
    made.step()
    assert ("champion", 2) in calls and ("clear", 2) in calls
    assert [d["decision"] for d in made.decisions] == ["promoted"]
    assert news[0].promoted and news[0].version == 2


def test_a_worse_challenger_is_retired_and_the_champion_stays(calls) -> None:
    made, consumer, news = judge()
    consumer.waiting = [[Record(shadow_record(batch("adult", 400, better=False, seed=3)))]]
    made.step()
    assert not any(kind == "champion" for kind, _ in calls) and ("clear", 2) in calls
    assert [d["decision"] for d in made.decisions] == ["retired"] and not news[0].promoted


def test_evidence_for_a_pair_the_aliases_no_longer_name_is_moot(calls) -> None:
    calls[0][1]["challenger"] = 5  # an operator set another challenger meanwhile
    made, consumer, news = judge()
    consumer.waiting = [[Record(shadow_record(batch("adult", 400, better=True)))]]
    made.step()
    assert not news and made.decisions == []
    assert not any(kind in ("champion", "clear") for kind, _ in calls)
    assert made.evidence.labelled((1, 2)) == 0  # forgotten, not judged later


def test_settle_reads_until_the_topic_is_drained(calls) -> None:
    made, consumer, _ = judge()
    consumer.waiting = [
        [Record(shadow_record(batch("adult", 200, better=True, seed=s)))] for s in (5, 6)
    ]
    made.settle(within_s=5)
    assert consumer.waiting == [] and [d["decision"] for d in made.decisions] == ["promoted"]


class StartingConsumer:
    """A consumer whose first metadata read meets a broker that has just gone away."""

    def __init__(self) -> None:
        self.reads, self.assigned, self.rewound = 0, [], []

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.reads += 1
        if self.reads == 1:
            raise KafkaConnectionError("111 ECONNREFUSED")
        return {0, 1}

    def assign(self, partitions: list) -> None:
        self.assigned = partitions

    def seek_to_beginning(self, *partitions: object) -> None:
        self.rewound = list(partitions)


def test_the_judge_starting_in_a_broker_outage_waits_for_the_broker(monkeypatch) -> None:
    consumer = StartingConsumer()
    monkeypatch.setattr(shadow_judge, "make_consumer", lambda *a, **k: consumer)
    monkeypatch.setattr(clients, "OUTAGE_PAUSE_S", 0.0)
    made = ShadowJudge(Settings(model_name="adult"), TrainerMetrics(), [].append)
    made.start()
    assert consumer.reads == 2
    assert (
        sorted(tp.partition for tp in consumer.assigned)
        == [0, 1]
        == sorted(tp.partition for tp in consumer.rewound)
    )
