"""`python -m pipeline.tools.chaos [--quick]`: the fault suite on a broker of its own.

Prints a table (fault, events, lost, duplicated, DLQ'd, recovered in s) and, last, one JSON
line with the totals. Exit code 0 only if every fault was survived.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.config.logs import setup_logging
from pipeline.config.settings import Settings
from pipeline.core.data import load_data
from pipeline.kafka_io.broker import LocalBroker
from pipeline.services.hot_swap import load_champion
from pipeline.tools.chaos import faults
from pipeline.tools.chaos.dead_letters import dlq_refuses_big_letters
from pipeline.tools.chaos.harness import FaultResult
from pipeline.tools.chaos.registry import registry_outage
from pipeline.tools.chaos.retrain_traffic import aborted_upstream, poisoned_requests
from pipeline.tools.chaos.rolling import rolling_restart
from pipeline.tools.sample_stream import event_rows
from pipeline.tools.sandbox import register_copy, sandbox_champion

log = logging.getLogger("chaos")
CHAOS_SUFFIX = "-chaos"
FULL = {
    "kills": 10,
    "rate": 1000.0,
    "down_s": 8.0,
    "pause_s": 8.0,
    "fuzz_examples": 5000,
    "rolling_rounds": 3,
    "big_letters": 5,
}
QUICK = {
    "kills": 5,
    "rate": 500.0,
    "down_s": 4.0,
    "pause_s": 4.0,
    "fuzz_examples": 2500,
    "rolling_rounds": 1,
    "big_letters": 3,
}


def run_faults(
    stage: faults.Stage, broker: LocalBroker, plan: dict[str, Any], data: Any
) -> list[FaultResult]:
    settings = stage.settings
    incompatible = register_copy(
        settings, data, "chaos-incompatible", signature=faults.INCOMPATIBLE
    )
    good = register_copy(settings, data, "chaos-good-other-name")
    steps = [
        lambda: faults.predictor_kills(stage, plan["kills"], exactly_once=False),
        lambda: faults.predictor_kills(stage, plan["kills"], exactly_once=True),
        lambda: rolling_restart(stage, plan["rolling_rounds"], exactly_once=False),
        lambda: rolling_restart(stage, plan["rolling_rounds"], exactly_once=True),
        lambda: faults.broker_restart(stage, broker, plan["down_s"]),
        lambda: faults.broker_pause(stage, broker, plan["pause_s"]),
        lambda: dlq_refuses_big_letters(stage, plan["big_letters"]),
        lambda: faults.trainer_kill(stage),
        lambda: poisoned_requests(stage),
        lambda: aborted_upstream(stage),
        lambda: registry_outage(stage, load_champion(settings).model, data.test.head(50)),
        lambda: faults.corrupt_announcements(stage, incompatible, good),
    ]
    results = []
    for step in steps:
        result = step()
        log.info("%s: %s", result.fault, "survived" if result.passed else "FAILED")
        results.append(result)
    return results


def fuzz_cases(examples: int) -> int:
    """The property-based validation tests, run here: how many examples they generated and ran
    (each example once, however many payloads it checks)."""
    os.environ["PIPELINE_FUZZ_EXAMPLES"] = str(examples)
    from tests.unit import test_events_fuzz as fuzz  # a dev tool: it runs the tests' properties

    before = fuzz.Tally.examples
    for test in fuzz.ALL:
        test()
    return fuzz.Tally.examples - before


def table(results: list[FaultResult]) -> str:
    rows = [
        "| fault | injected | events sent | lost | duplicated | DLQ'd | recovered in s | crashes |"
        " offsets moved back | survived |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        failed = [name for name, ok in r.checks.items() if not ok]
        crashed = [f"crashed: {note}".replace("|", "/") for note in r.crash_notes]
        verdict = (
            "yes"
            if r.passed
            else "NO: " + "; ".join(failed + crashed or ["events lost or offsets moved back"])
        )
        rows.append(
            f"| {r.fault} | {r.injections} | {r.events:,} | {r.lost} | {r.duplicated} | {r.dlq} |"
            f" {r.recovered_s:.1f} | {r.crashes} | {r.offsets_moved_back} | {verdict} |"
        )
    return "\n".join(rows)


def totals(results: list[FaultResult], fuzzed: int) -> dict[str, int]:
    return {
        "faults": sum(r.injections for r in results),
        "events": sum(r.events for r in results),
        "lost": sum(r.lost for r in results),
        "duplicated_exactly_once": sum(r.duplicated for r in results if r.exactly_once),
        "crashes": sum(r.crashes for r in results),
        "fuzz_cases": fuzzed,
        "offsets_moved_back": sum(r.offsets_moved_back for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer kills, shorter outages")
    parser.add_argument("--out", type=Path, default=Path(".pipeline/chaos"))
    args = parser.parse_args(argv)
    setup_logging("INFO")
    plan = QUICK if args.quick else FULL
    base = replace(Settings(), log_level="INFO", retrain_every=0, retrain_evals=2)
    base = replace(base, model_name=base.model_name + CHAOS_SUFFIX)
    if os.environ.get("PIPELINE_DATA_DIR"):
        base = replace(base, data_dir=Path(os.environ["PIPELINE_DATA_DIR"]))
    data = load_data(base.pipeline_spec, base.data_folder, allow_download=base.allow_download)
    log.info("fuzzing the validation core with %d examples per strategy", plan["fuzz_examples"])
    fuzzed = fuzz_cases(int(plan["fuzz_examples"]))
    with LocalBroker(args.out / "kafka") as broker:
        settings = replace(base, bootstrap_servers=broker.bootstrap_servers)
        sandbox_champion(settings, data, CHAOS_SUFFIX)
        stage = faults.Stage(
            settings,
            event_rows(data.test, base.pipeline_spec.schema),
            args.out / "logs",
            plan["rate"],
        )
        results = run_faults(stage, broker, plan, data)
    report = table(results)
    (args.out / "chaos.md").write_text(report + "\n")
    print(report)
    summary = totals(results, fuzzed)
    (args.out / "chaos.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
