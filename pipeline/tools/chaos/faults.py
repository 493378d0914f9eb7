"""The faults: each breaks one part of a running pipeline and reports what survived it.

Modelled on Kafka's own system tests: bounce processes and the broker under a steady stream,
then count every acknowledged event's predictions.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from pipeline.core.messages import ModelReady, RetrainRequest, to_json
from pipeline.kafka_io.broker import LocalBroker
from pipeline.kafka_io.clients import make_producer
from pipeline.registry import tracking
from pipeline.tools.chaos.harness import FaultResult, Ledger, Script, Stream, isolated, stop_all
from pipeline.tools.chaos.news import RetrainNews
from pipeline.tools.chaos.offset_watch import OffsetWatch

# A version of the model whose declared input lacks fields the events carry: Predictors must
# refuse it rather than score with it.
INCOMPATIBLE = ModelSignature(inputs=Schema([ColSpec("double", "age")]), outputs=tracking.OUTPUTS)


@dataclass(frozen=True)
class Stage:
    """What every scenario gets: settings with a champion in place, rows to send, a log folder."""

    settings: Any
    rows: list[dict[str, Any]]
    logs: Path
    rate: float = 500.0
    seed: int = 7


def predictor_kills(stage: Stage, kills: int, exactly_once: bool) -> FaultResult:
    """SIGKILL at random points of a stream, restart each time; count every event's predictions."""
    name = "kill-eos" if exactly_once else "kill"
    settings = replace(isolated(stage.settings, name), exactly_once=exactly_once, batch_size=100)
    jitter = random.Random(stage.seed)
    ledger = Ledger(settings)
    predictor = Script("predictor.py", settings, stage.logs).start()
    recovered: list[float] = []
    try:
        with OffsetWatch(settings) as watch, Stream(settings, stage.rows, stage.rate) as stream:
            ledger.await_scored_after(0.0, 120, [predictor])
            for _ in range(kills):
                time.sleep(jitter.uniform(0.2, 1.5))
                predictor.kill()
                restarted = time.time()
                predictor.start()
                recovered.append(ledger.await_scored_after(restarted, 120, [predictor]))
        ledger.wait_for(stream.acknowledged, 180, [predictor])
        clean_exit = stop_all([predictor])
    finally:
        predictor.stop()
        ledger.close()
    mode = "exactly-once" if exactly_once else "at-least-once"
    return ledger.result(
        f"Predictor SIGKILL x{kills} ({mode})",
        kills,
        stream.acknowledged,
        max(recovered, default=0.0),
        [predictor],
        exactly_once=exactly_once,
        offsets_moved_back=watch.moved_back,
        checks={"stopped cleanly at the end": clean_exit},
    )


def broker_restart(stage: Stage, broker: LocalBroker, down_s: float) -> FaultResult:
    """Stop the broker mid-stream and start it again; Predictor and Trainer must carry on."""

    def restart() -> None:
        broker.stop()
        time.sleep(down_s)
        broker.start(keep_data=True)

    return _broker_fault(stage, f"broker stopped {down_s:.0f}s, restarted", restart)


def broker_pause(stage: Stage, broker: LocalBroker, pause_s: float) -> FaultResult:
    """A broker that answers nothing for a while (SIGSTOP): the slowest broker there is."""

    def pause() -> None:
        broker.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            time.sleep(pause_s)
        finally:
            broker.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]

    return _broker_fault(stage, f"broker frozen {pause_s:.0f}s (SIGSTOP)", pause)


def _broker_fault(stage: Stage, fault: str, inject: Callable[[], None]) -> FaultResult:
    settings = isolated(stage.settings, "broker")
    predictor = Script("predictor.py", settings, stage.logs).start()
    trainer = Script("trainer.py", settings, stage.logs).start()
    ledger = Ledger(settings)
    try:
        with Stream(settings, stage.rows, stage.rate) as stream:
            ledger.await_scored_after(0.0, 120, [predictor, trainer])
            time.sleep(1.0)
            inject()
            back = time.time()
            recovered = ledger.await_scored_after(back, 180, [predictor, trainer])
            time.sleep(1.0)
        ledger.wait_for(stream.acknowledged, 180, [predictor, trainer])
        trainer_answers = _trainer_answers(settings, 240, [predictor, trainer])
        clean_exit = stop_all([predictor, trainer])
    finally:
        predictor.stop()
        trainer.stop()
        ledger.close()
    return ledger.result(
        fault,
        1,
        stream.acknowledged,
        recovered,
        [predictor, trainer],
        checks={"trainer answers a request afterwards": trainer_answers, "clean stop": clean_exit},
    )


def _trainer_answers(settings: Any, timeout_s: float, watch: list[Script]) -> bool:
    news = RetrainNews(settings)
    try:
        request_retrain(settings)
        return news.wait_for("model_ready", timeout_s, watch) is not None
    finally:
        news.close()


def request_retrain(settings: Any) -> None:
    producer = make_producer(settings, "chaos")
    request = RetrainRequest("chaos", settings.input_topic, {}, 0)
    producer.send(settings.retrain_topic, value=to_json(request)).get(timeout=60)
    producer.close(timeout=10)


def trainer_kill(stage: Stage) -> FaultResult:
    """SIGKILL the Trainer while it trains; after its restart the same request is answered."""
    settings = replace(isolated(stage.settings, "trainer"), retrain_evals=3)
    trainer = Script("trainer.py", settings, stage.logs).start()
    news = RetrainNews(settings)
    try:
        request_retrain(settings)
        started = news.wait_for("training_started", 120, [trainer])
        time.sleep(0.5)  # inside the training, not at its first line
        trainer.kill()
        # What a killed process announced, it announced before the kill: a model_ready here
        # would mean the kill came after the training, and would prove nothing.
        finished_first = news.wait_for("model_ready", 2, []) is not None
        restarted = time.time()
        trainer.start()
        ready = news.wait_for("model_ready", 300, [trainer])
        recovered = time.time() - restarted
        clean_exit = stop_all([trainer])
    finally:
        trainer.stop()
        news.close()
    return FaultResult(
        "Trainer SIGKILL mid-training",
        1,
        0,
        0,
        0,
        0,
        recovered,
        trainer.crashes,
        crash_notes=trainer.crash_notes,
        checks={
            "the kill hit a running training": started is not None and not finished_first,
            "the pending request was answered after the restart": ready is not None,
            "clean stop": clean_exit,
        },
    )


def corrupt_announcements(
    stage: Stage, incompatible_version: int, good_version: int
) -> FaultResult:
    """Bad news on the retrain topic, and @champion moved to a version that fails its checks:
    all refused while scoring goes on with the same model. Then a good version is aliased and
    announced, and must be swapped in: proof the watcher is alive after its refusals."""
    settings = isolated(stage.settings, "news")
    serving = tracking.champion_version(settings)
    predictor = Script("predictor.py", settings, stage.logs).start()
    ledger = Ledger(settings)
    bad = [
        b"{not json",
        b'{"type": "model_ready", "model_name": "' + settings.model_name.encode() + b'"}',
        to_json(_ready(settings.model_name, 99_999)),
        to_json(_ready("someone-elses-model", good_version)),
        to_json(_ready(settings.model_name, incompatible_version)),
    ]
    try:
        with Stream(settings, stage.rows, stage.rate) as stream:
            ledger.await_scored_after(0.0, 120, [predictor])
            refused_at = _announce_bad(settings, bad, incompatible_version)
            _announce(settings, good_version, [])
            swapped = _await_version(ledger, good_version, 60, [predictor])
        ledger.wait_for(stream.acknowledged, 120, [predictor])
        clean_exit = stop_all([predictor])
    finally:
        predictor.stop()
        ledger.close()
        tracking.set_champion(settings, serving or good_version, by="chaos", reason="restored")
    refusals = _refusals(stage.logs / f"predictor-{settings.instance_id}.log")
    return ledger.result(
        "corrupt announcements x5",
        len(bad),
        stream.acknowledged,
        swapped - refused_at if swapped else 0.0,
        [predictor],
        checks={
            "no prediction from a refused version": ledger.versions <= {serving, good_version},
            "both refusals logged (other model, failed checks)": refusals >= 2,
            "the good version announced afterwards was swapped in": swapped is not None,
            "clean stop": clean_exit,
        },
    )


def _announce_bad(settings: Any, bad: list[bytes], incompatible_version: int) -> float:
    """The bad news, the last one with @champion naming the incompatible version."""
    producer = make_producer(settings, "chaos")
    for value in bad[:-1]:
        producer.send(settings.retrain_topic, value=value).get(timeout=30)
    producer.close(timeout=10)
    _announce(settings, incompatible_version, bad[-1:])
    time.sleep(3.0)  # long enough for a load and a check, were the news accepted
    return time.time()


def _announce(settings: Any, version: int, values: list[bytes]) -> None:
    """Moves @champion to `version`, then tells the Predictors (an announcement only makes them
    read the alias now)."""
    tracking.set_champion(settings, version, by="chaos", reason="announcement test")
    producer = make_producer(settings, "chaos")
    for value in values or [to_json(_ready(settings.model_name, version))]:
        producer.send(settings.retrain_topic, value=value).get(timeout=30)
    producer.close(timeout=10)


def _await_version(
    ledger: Ledger, version: int, timeout_s: float, watch: list[Script]
) -> float | None:
    """Wall time of the first prediction made with `version`, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ledger.poll()
        if version in ledger.versions:
            return ledger.first_scored_ms[version] / 1000
        for script in watch:
            script.check()
    return None


def _refusals(log_file: Path) -> int:
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    return text.count("refused an announcement of model") + text.count("refused model")


def _ready(name: str, version: int) -> ModelReady:
    return ModelReady(name, version, tracking.model_uri(name, version), {}, {}, True, 1, {})
