"""What every fault scenario needs: pipeline processes to kill, a stream, and a ledger of outcomes.

The ledger counts only what Kafka acknowledged to the stream's producer: an event the broker
never took is the upstream's problem, an acknowledged one without a prediction is a loss.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings, secret_env, settings_to_argv
from pipeline.core.events import encode_event
from pipeline.core.messages import DLQ_TRUNCATED
from pipeline.kafka_io.admin import ensure_topics
from pipeline.kafka_io.clients import kafka_security, make_producer

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class FaultResult:
    fault: str
    injections: int
    events: int
    lost: int
    duplicated: int
    dlq: int
    recovered_s: float  # the slowest return to scoring after an injection ended
    crashes: int  # pipeline processes that died without being killed
    exactly_once: bool = False
    checks: dict[str, bool] = field(default_factory=dict)  # scenario-specific outcomes
    offsets_moved_back: int = 0  # samples of a committed offset lower than the one before
    crash_notes: list[str] = field(default_factory=list)  # each crash's exit code and last words

    @property
    def passed(self) -> bool:
        duplicates_ok = self.duplicated == 0 or not self.exactly_once
        intact = self.lost == 0 and self.crashes == 0 and self.offsets_moved_back == 0
        return intact and duplicates_ok and all(self.checks.values())


def isolated(base: Settings, name: str, partitions: int = 2) -> Settings:
    """Topics and groups of one scenario, so scenarios never read each other's messages."""
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    settings = replace(
        base,
        input_topic=f"chaos-in-{tag}",
        predictions_topic=f"chaos-out-{tag}",
        dlq_topic=f"chaos-dlq-{tag}",
        retrain_topic=f"chaos-retrain-{tag}",
        input_partitions=partitions,
        predictor_group=f"chaos-{tag}",
        trainer_group=f"chaos-trainer-{tag}",
        instance_id=tag,
    )
    ensure_topics(
        settings.bootstrap_servers, settings.topic_specs(), security=kafka_security(settings)
    )
    return settings


class Script:
    """One pipeline process (predictor.py or trainer.py) that a scenario starts and kills."""

    def __init__(
        self,
        script: str,
        settings: Settings,
        logs: Path,
        env: dict[str, str] | None = None,
        label: str = "",
    ) -> None:
        self.script, self.settings, self.logs = script, settings, logs
        self.env = env or {}
        # names the log file; an instance without --instance-id (dynamic membership) needs one
        self.label = label or settings.instance_id
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.crashes = 0
        self.crash_notes: list[str] = []
        self.starts = 0
        # The process we sent SIGTERM to (or whose exit was counted): its exit code is the
        # caller's to judge (a clean stop returns 0), never a crash, and never counted twice.
        self._settled: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.logs / f"{Path(self.script).stem}-{self.label}.log"

    def start(self) -> Script:
        self.logs.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            str(ROOT / self.script),
            *settings_to_argv(self.settings, Path(self.script).stem),
        ]
        env = {**os.environ, **secret_env(self.settings), **self.env}
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )
        self.starts += 1
        return self

    def check(self) -> None:
        """Counts a process that exited on its own (a crash) and starts it again."""
        if self.process is not None and self.process.poll() is not None:
            self._crashed(self.process.returncode)
            self.start()

    def _crashed(self, code: int) -> None:
        """Counted, with the log's last words: a CI run's failure message is often all there
        is to read, the process logs are gone with its machine."""
        note = f"{self.script} exited {code}: {last_words(self.log_file)}"
        log.error("%s on its own", note)
        self.crashes += 1
        self.crash_notes.append(note)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.kills += 1

    def terminate(self) -> None:
        """SIGTERM without waiting: `stop()` collects the exit code."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self._settled = self.process

    def stop(self) -> int:
        """SIGTERM, as an operator would; returns the exit code. A process that had already
        exited non-zero on its own is counted as a crash, once."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.terminate()
            try:
                return self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(10)
        code = self.process.returncode
        if code != 0 and self._settled is not self.process:
            self._crashed(code)
        self._settled = self.process
        return code


def last_words(log_file: Path, lines: int = 3, width: int = 300) -> str:
    """The last few lines a process wrote (its exit reason or traceback's end), shortened."""
    try:
        with log_file.open("rb") as out:
            out.seek(max(out.seek(0, os.SEEK_END) - 65536, 0))
            tail = out.read().decode(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    said = [line.strip()[:width] for line in tail if line.strip()][-lines:]
    return " // ".join(said) or "(empty log)"


class Stream:
    """Events at a steady rate from a thread, until stopped; remembers what Kafka acknowledged."""

    def __init__(self, settings: Settings, rows: list[dict[str, Any]], rate: float) -> None:
        self.settings, self.rows, self.rate = settings, rows, rate
        self.acknowledged: list[str] = []
        self.failed = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-stream", daemon=True)
        self._prefix = uuid.uuid4().hex[:6]

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(180)

    def _run(self) -> None:
        producer = make_producer(self.settings, "chaos-stream", linger_ms=5)
        started = time.monotonic()
        while not self._stop.is_set():
            delay = started + self.sent / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            request_id = f"{self._prefix}-{self.sent}"
            future = producer.send(
                self.settings.input_topic,
                value=encode_event(request_id, self.rows[self.sent % len(self.rows)]),
                key=request_id.encode(),
            )
            future.add_callback(lambda _, rid=request_id: self.acknowledged.append(rid))
            future.add_errback(self._failed)
            self.sent += 1
        producer.flush(timeout=150)  # the delivery timeout (120 s) decides each send's fate
        producer.close(timeout=10)

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        log.warning("the broker did not take an event: %s", exc)


class Ledger:
    """Predictions and dead letters, read from the beginning with read_committed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self.scored_at_ms: list[int] = []
        self.versions: set[int] = set()
        self.first_scored_ms: dict[int, int] = {}  # model version -> its first prediction
        self.dlq = 0
        self.dlq_truncated = 0
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            isolation_level="read_committed",
            enable_auto_commit=False,
            **kafka_security(settings),
        )
        tps = [
            TopicPartition(topic, p)
            for topic in (settings.predictions_topic, settings.dlq_topic)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)

    def poll(self) -> None:
        for tp, records in self.consumer.poll(timeout_ms=200, max_records=20000).items():
            if tp.topic == self.settings.dlq_topic:
                self.dlq += len(records)
                self.dlq_truncated += sum(DLQ_TRUNCATED in dict(r.headers) for r in records)
                continue
            for record in records:
                prediction = json.loads(record.value)
                self.counts[prediction["request_id"]] += 1
                scored, version = int(prediction["scored_at_ms"]), int(prediction["model_version"])
                self.scored_at_ms.append(scored)
                self.versions.add(version)
                self.first_scored_ms[version] = min(
                    self.first_scored_ms.get(version, scored), scored
                )

    def wait_for(self, request_ids: list[str], timeout_s: float, watch: list[Script]) -> None:
        """Until every id has a prediction; crashed processes are counted and restarted."""
        deadline = time.monotonic() + timeout_s
        wanted = set(request_ids)
        while time.monotonic() < deadline:
            self.poll()
            if wanted.issubset(self.counts):
                return
            for script in watch:
                script.check()
        log.error("%d events still have no prediction", len(wanted - set(self.counts)))

    def await_scored_after(self, wall_s: float, timeout_s: float, watch: list[Script]) -> float:
        """Seconds from `wall_s` (time.time) to the first prediction scored after it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            later = [ms / 1000 for ms in self.scored_at_ms if ms / 1000 >= wall_s]
            if later:
                return min(later) - wall_s
            for script in watch:
                script.check()
        raise TimeoutError(f"no prediction within {timeout_s:.0f}s of the fault")

    def outcome(self, request_ids: list[str]) -> tuple[int, int]:
        """(lost, duplicated) over the acknowledged events."""
        lost = sum(1 for rid in request_ids if rid not in self.counts)
        duplicated = sum(self.counts[rid] - 1 for rid in request_ids if self.counts[rid] > 1)
        return lost, duplicated

    def result(
        self,
        fault: str,
        injections: int,
        acknowledged: list[str],
        recovered_s: float,
        scripts: list[Script],
        **extra: Any,
    ) -> FaultResult:
        lost, duplicated = self.outcome(acknowledged)
        crashes = sum(script.crashes for script in scripts)
        extra.setdefault("crash_notes", [n for script in scripts for n in script.crash_notes])
        return FaultResult(
            fault,
            injections,
            len(acknowledged),
            lost,
            duplicated,
            self.dlq,
            recovered_s,
            crashes,
            **extra,
        )

    def close(self) -> None:
        self.consumer.close()


def stop_all(scripts: list[Script]) -> bool:
    """SIGTERM each, as an operator would: True if every one exited 0."""
    return all([script.stop() == 0 for script in scripts])
