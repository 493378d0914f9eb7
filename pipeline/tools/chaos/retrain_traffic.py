"""Bad traffic for the Trainer: requests that can never be honoured, and an upstream
transaction that aborts. Neither may stop retraining, and nothing aborted may be acted on.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaProducer
from mlflow.tracking import MlflowClient

from pipeline.core.events import encode_event
from pipeline.core.messages import RetrainRequest, to_json
from pipeline.kafka_io.clients import kafka_security, make_producer
from pipeline.tools.chaos.faults import Stage
from pipeline.tools.chaos.harness import FaultResult, Script, isolated, stop_all
from pipeline.tools.chaos.news import RetrainNews

FAR = 10**12


def poisoned_requests(stage: Stage) -> FaultResult:
    """A missing partition, another topic, a negative offset: each rejected with a
    training_failed that names it; offsets past the log end are cut and honoured."""
    settings = isolated(stage.settings, "poison")
    topic = settings.input_topic
    poison = [
        RetrainRequest("chaos", topic, {"0": 0, "99": 5}, 0, request_id="missing-partition"),
        RetrainRequest("chaos", "someone-elses-topic", {"0": 1}, 0, request_id="other-topic"),
        RetrainRequest("chaos", topic, {"0": -5}, 0, request_id="negative-offset"),
    ]
    far = RetrainRequest("chaos", topic, {"0": FAR, "1": FAR}, 0, request_id="past-log-end")
    trainer = Script("trainer.py", settings, stage.logs).start()
    news = RetrainNews(settings)
    try:
        sent = time.time()
        _send(settings, [*poison, far])
        rejected = _failed_ids(news, {r.request_id for r in poison}, 120, [trainer])
        ready = news.wait_for("model_ready", 300, [trainer])
        recovered = time.time() - sent
        clean_exit = stop_all([trainer])
    finally:
        trainer.stop()
        news.close()
    return _trainer_result(
        f"poisoned retrain requests x{len(poison) + 1}",
        len(poison) + 1,
        recovered,
        trainer,
        {
            "each unanswerable request rejected by name": rejected,
            "offsets past the log end cut and honoured": (ready or {}).get("request_ids")
            == [far.request_id],
            "clean stop": clean_exit,
        },
    )


def aborted_upstream(stage: Stage) -> FaultResult:
    """Events and a retrain request in a transaction that aborts: never trained on, never
    answered; the honest request after them is answered from the committed events only."""
    settings = isolated(stage.settings, "aborted")
    trainer = Script("trainer.py", settings, stage.logs).start()
    news = RetrainNews(settings)
    try:
        committed = _upstream_transactions(settings, stage.rows)
        sent = time.time()
        _send(settings, [RetrainRequest("chaos", settings.input_topic, {"0": FAR, "1": FAR}, 0)])
        ready = news.wait_for("model_ready", 300, [trainer])
        recovered = time.time() - sent
        clean_exit = stop_all([trainer])
    finally:
        trainer.stop()
        news.close()
    answered = [m for m in [*news.seen, ready or {}] if "aborted" in m.get("request_ids", [])]
    return _trainer_result(
        "aborted upstream transaction (events + request)",
        1,
        recovered,
        trainer,
        {
            "the honest request answered": ready is not None,
            "the aborted request never answered": not answered,
            "only committed events trained on": _events_read(settings, ready) == committed,
            "clean stop": clean_exit,
        },
    )


def _upstream_transactions(settings: Any, rows: list[dict[str, Any]]) -> int:
    """A committed transaction of 200 events, then an aborted one of 100 and a request."""
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        transactional_id=f"chaos-upstream-{settings.input_topic}",
        **kafka_security(settings),
    )
    producer.init_transactions()
    for prefix, count, commit in (("kept", 200, True), ("aborted", 100, False)):
        producer.begin_transaction()
        for i in range(count):
            rid = f"{prefix}-{i}"
            producer.send(settings.input_topic, value=encode_event(rid, rows[i]), key=rid.encode())
        if not commit:
            request = RetrainRequest("chaos", settings.input_topic, {}, 0, request_id="aborted")
            producer.send(settings.retrain_topic, value=to_json(request))
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close(timeout=10)
    return 200


def _send(settings: Any, requests: list[RetrainRequest]) -> None:
    producer = make_producer(settings, "chaos")
    for request in requests:
        producer.send(settings.retrain_topic, value=to_json(request)).get(timeout=60)
    producer.close(timeout=10)


def _failed_ids(news: RetrainNews, wanted: set[str], timeout_s: float, watch: list) -> bool:
    """Until a training_failed has named each of `wanted`, one request per announcement."""
    named: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while not wanted <= named and time.monotonic() < deadline:
        failed = news.wait_for("training_failed", deadline - time.monotonic(), watch)
        if failed is not None and failed.get("reason", "").startswith("rejected"):
            named |= set(failed.get("request_ids", []))
    return wanted <= named


def _events_read(settings: Any, ready: dict[str, Any] | None) -> int:
    """The event count the Trainer logged to MLflow for the version it announced (-1: none)."""
    if ready is None:
        return -1
    client = MlflowClient()
    run_id = client.get_model_version(settings.model_name, str(ready["version"])).run_id
    return int(client.get_run(str(run_id)).data.params.get("lineage.events_read", -1))


def _trainer_result(
    fault: str, injections: int, recovered: float, trainer: Script, checks: dict[str, bool]
) -> FaultResult:
    return FaultResult(
        fault,
        injections,
        0,
        0,
        0,
        0,
        recovered,
        trainer.crashes,
        checks=checks,
        crash_notes=trainer.crash_notes,
    )
