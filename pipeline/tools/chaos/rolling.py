"""Rolling restarts: two Predictors stopped and started in turn under load, the partitions
moving between them, and the group's committed offsets sampled throughout.

The Predictors are dynamic group members (--no-static-membership; their stable --instance-id
only names their transactional ids), so a stopped one leaves the group at once and its
partitions move to the other. Each round stops the instance that joined last; the
other takes every partition, including ones it scored before and the first one scored since,
and it is stopped the moment it logs that it holds them all (the worst moment: a partition
back, nothing read from it yet). Then both start again, one after the other. Nothing may be lost, nothing
duplicated in exactly-once mode, and no committed offset may ever be lower than one before it.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from functools import partial

from pipeline.config.settings import Settings
from pipeline.kafka_io.admin import wait_for_members
from pipeline.kafka_io.clients import kafka_security
from pipeline.tools.chaos.faults import Stage
from pipeline.tools.chaos.harness import FaultResult, Ledger, Script, Stream, isolated, stop_all
from pipeline.tools.chaos.offset_watch import OffsetWatch

PARTITIONS = 4


def rolling_restart(stage: Stage, rounds: int, exactly_once: bool) -> FaultResult:
    mode = "exactly-once" if exactly_once else "at-least-once"
    base = isolated(stage.settings, "roll-eos" if exactly_once else "roll", PARTITIONS)
    settings = replace(base, exactly_once=exactly_once, batch_size=100, static_membership=False)
    pair = [
        Script("predictor.py", replace(settings, instance_id=f"{base.instance_id}-{n}"), stage.logs)
        for n in "ab"
    ]
    ledger = Ledger(settings)
    recovered: list[float] = []
    clean = True
    try:
        with OffsetWatch(settings) as watch, Stream(settings, stage.rows, stage.rate) as stream:
            _start_in_turn(settings, pair)
            ledger.await_scored_after(0.0, 120, pair)
            jitter = random.Random(stage.seed)
            for _ in range(rounds):
                last, first = pair[1], pair[0]  # `first` owes offsets on `last`'s partitions
                clean &= _stop_last_then_first(last, first)
                restarted = time.time()
                pair = [last, first]  # `last` restarts first and holds every partition a while
                _start_in_turn(settings, pair)
                recovered.append(ledger.await_scored_after(restarted, 120, pair))
                time.sleep(jitter.uniform(1.0, 2.0))
        ledger.wait_for(stream.acknowledged, 180, pair)
        clean &= stop_all(pair)
    finally:
        for script in pair:
            script.stop()
        ledger.close()
    return ledger.result(
        f"rolling restart x{2 * rounds}, 2 Predictors ({mode})",
        2 * rounds,
        stream.acknowledged,
        max(recovered, default=0.0),
        pair,
        exactly_once=exactly_once,
        offsets_moved_back=watch.moved_back,
        checks={"every stop was clean (exit 0)": clean, "offsets were sampled": watch.samples > 0},
    )


def _start_in_turn(settings: Settings, pair: list[Script]) -> None:
    """The first joins alone and takes every partition; the second then takes its share."""
    for count, script in enumerate(pair, start=1):
        script.start()
        wait_for_members(
            settings.bootstrap_servers,
            settings.predictor_group,
            count,
            partial(_exited, pair[:count]),
            settle_s=1.0,
            security=kafka_security(settings),
        )


def _exited(scripts: list[Script]) -> list[Script]:
    return [s for s in scripts if s.process is not None and s.process.poll() is not None]


def _stop_last_then_first(last: Script, first: Script) -> bool:
    since = first.log_file.stat().st_size
    last.terminate()
    _await_line(first, f"partitions assigned: {list(range(PARTITIONS))}", since, timeout_s=60)
    first.terminate()  # it has just taken `last`'s partitions back
    return last.stop() == 0 and first.stop() == 0


def _await_line(script: Script, line: str, since: int, timeout_s: float) -> None:
    """Until the script logs `line` (after byte `since` of its log), read every 2 ms: the
    Predictor logs its assignment the moment it gets it, before it reads anything."""
    deadline = time.monotonic() + timeout_s
    with script.log_file.open("rb") as log_file:
        log_file.seek(since)
        seen = b""
        while time.monotonic() < deadline:
            seen += log_file.read()
            if line.encode() in seen:
                return
            time.sleep(0.002)
    raise TimeoutError(f"{script.log_file.name} did not log {line!r} within {timeout_s:.0f}s")
