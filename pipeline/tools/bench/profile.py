"""Where one Predictor's loop spends its time: py-spy samples while it drains preloaded events.

    python -m pipeline.tools.bench.profile [--events N] [--kafka-client C]   (make profile)

Same broker, model (the benchmark's fixed 300-tree recipe) and events as the benchmark's row b.
py-spy samples the Predictor process 200 times a second (raw folded stacks, kept under
.pipeline/bench/profile.raw); each sample inside the loop is put in the first part of the loop
it is in, and the shares are written to .pipeline/bench/profile-<client>.md and printed, with
the CPU an event of the ceiling and of the Predictor over as many events (`cpu_share.py`), and
how the loop's thread spent the run's wall time, interval by interval (`loop_time.py`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from pipeline.config.logs import setup_logging
from pipeline.config.settings import KAFKA_CLIENTS, Settings
from pipeline.core.data import load_data
from pipeline.kafka_io.broker import broker_for
from pipeline.tools.bench import cpu_share, loop_time, workloads
from pipeline.tools.bench.__main__ import BENCH_SUFFIX, HEADLINE_TREES, defined_models
from pipeline.tools.sample_stream import event_rows

log = logging.getLogger(__name__)

LOOP = "Predictor._loop (pipeline/services/predictor.py"
# (part, the frame that marks it, as py-spy names frames): the innermost match wins.
PARTS = (
    ("decode and validate (msgspec)", "EventDecoder.parse (pipeline/core/events.py"),
    ("decode and validate (msgspec)", "EventDecoder.parse_batch (pipeline/core/events.py"),
    ("features (vocabulary codes, matrix)", "FeatureBuilder.transform (pipeline/core/features.py"),
    ("trees (compiled, lleaves)", "ScoringModel.predict_matrix (pipeline/core/scoring.py"),
    ("prediction records (JSON)", "prediction_record (pipeline/core/messages.py"),
    ("prediction records (JSON)", "prediction_records (pipeline/core/messages.py"),
    ("publish: sending the outputs", "BatchPublisher._send_all (pipeline/services/publishing"),
    ("publish: flush and commit", "BatchPublisher._then_commit (pipeline/services/publishing"),
    ("monitoring (quality, drift, metrics)", "LiveMonitor.observe (pipeline/services/monitoring"),
    ("monitoring (quality, drift, metrics)", "Instruments.after_batch (pipeline/services/metrics"),
    ("poll (client fetch and parse)", "KafkaConsumer.poll (kafka/consumer/group.py"),
    ("poll (client fetch and parse)", "RdConsumer.poll (pipeline/kafka_io/rdkafka_consumer.py"),
    ("rest of score_batch", "score_batch (pipeline/core/batching.py"),
)


def classify(stack: str) -> str | None:
    """The part of the loop a folded stack (outermost first) was sampled in; None outside it."""
    if LOOP not in stack:
        return None
    frames = stack.split(";")
    for frame in reversed(frames):
        for part, marker in PARTS:
            if frame.startswith(marker):
                return part
    return "rest of the loop"


def shares(raw: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        part = classify(stack)
        if part is not None and number.isdigit():
            counts[part] += int(number)
    return counts


def record(
    spy: str, settings: Settings, rows: list[dict], events: int, out: Path, broker: int | None
) -> tuple[Path, cpu_share.Usage, loop_time.LoopTime | None]:
    """Samples wall time (`--idle`): waiting on the broker is part of where the loop goes. The
    Predictor's CPU is read from its first prediction (its start-up left out) to its last."""
    raw = out / "profile.raw"
    logs = out / "logs"
    workloads.preload(settings, rows, events)
    with workloads.predictors(settings, 1, logs) as (predictor,):
        sampler = subprocess.Popen(
            [
                spy,
                "record",
                "-r",
                "200",
                "--idle",
                "--nonblocking",
                "-f",
                "raw",
                "-o",
                str(raw),
                "--pid",
                str(predictor.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        topic, timeout_s = settings.predictions_topic, max(120.0, events / 1000)
        first = workloads.wait_for_records(settings, topic, 1, timeout_s, every_s=0.05)
        before = cpu_share.read(predictor.pid, broker)
        over_time = loop_time.Recorder(predictor.pid)
        over_time.offer(first)
        last = workloads.wait_for_records(
            settings, topic, events, timeout_s, every_s=0.05, watch=over_time.offer
        )
        after = cpu_share.read(predictor.pid, broker)
        steadiness = over_time.finish(last)
        sampler.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        sampler.wait(timeout=60)
    if last < events:
        raise RuntimeError(f"only {last} of {events} events were answered; see {logs}")
    return raw, cpu_share.usage(before, after, last - first), steadiness


def measure_ceiling(
    settings: Settings, rows: list[dict], events: int, broker: int | None
) -> tuple[cpu_share.Usage, float]:
    """The ceiling over as many events, on this thread, with its CPU an event."""
    ceiling = workloads.scenario_settings(settings, "profile-ceiling", 4)
    workloads.preload(ceiling, rows, events)
    before = cpu_share.read_here(broker)
    eps = workloads.ceiling(ceiling, events, ceiling.batch_size)
    return cpu_share.usage(before, cpu_share.read_here(broker), events), eps


def markdown(counts: Counter[str], events: int, client: str) -> str:
    total = sum(counts.values())
    lines = [
        f"One Predictor draining {events:,} preloaded events, 300-tree model, {client}; "
        f"{total:,} py-spy samples in the loop (200/s)",
        "",
        "| part of the loop | share |",
        "| --- | --- |",
    ]
    lines += [f"| {part} | {n / total:.0%} |" for part, n in counts.most_common()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.bench.profile")
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--out", type=Path, default=Path(".pipeline/bench"))
    parser.add_argument("--kafka-client", choices=KAFKA_CLIENTS, default=KAFKA_CLIENTS[0])
    args = parser.parse_args(argv)
    setup_logging("INFO")
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if spy is None:
        log.error("py-spy is not installed (it is a dev dependency: pip install -e '.[dev]')")
        return 2
    base = replace(
        Settings(),
        batch_wait_ms=5,
        log_level="WARNING",
        retrain_every=0,
        kafka_client=args.kafka_client,
    )
    base = replace(base, model_name=base.model_name + BENCH_SUFFIX)
    if os.environ.get("PIPELINE_DATA_DIR"):
        base = replace(base, data_dir=Path(os.environ["PIPELINE_DATA_DIR"]))
    with broker_for(base) as settings:
        spec = settings.pipeline_spec
        data = load_data(spec, settings.data_folder, allow_download=settings.allow_download)
        models = defined_models(settings, data)
        one = workloads.scenario_settings(settings, "profile", 4)
        reader = workloads.variant(one, "p", models[HEADLINE_TREES])
        args.out.mkdir(parents=True, exist_ok=True)
        rows = event_rows(data.test, spec.schema)
        broker = cpu_share.broker_pid(settings.home / "demo-kafka")
        log.info("the ceiling over %d events, its CPU read from /proc", args.events)
        ceiling, ceiling_eps = measure_ceiling(settings, rows, args.events, broker)
        raw, predictor, steadiness = record(spy, reader, rows, args.events, args.out, broker)
    text = markdown(shares(raw), args.events, args.kafka_client)
    text += "\n" + cpu_share.markdown(ceiling, ceiling_eps, predictor, args.kafka_client)
    text += "\n" + loop_time.markdown(steadiness)
    (args.out / f"profile-{args.kafka_client}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
