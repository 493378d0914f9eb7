"""The benchmark rows of the second Kafka client: librdkafka (`--kafka-client confluent-kafka`).

Same events, same headline model, same workloads as the default client's rows; the ceiling is
measured through the same client seam (`kafka_io/rdkafka_consumer.py`, `rdkafka_producer.py`), so each client is compared
with its own ceiling, as the targets say. Skipped, and said so, where confluent-kafka is not
installed.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.config.settings import CONFLUENT_KAFKA, Settings
from pipeline.tools.bench import floor, live, workloads

log = logging.getLogger(__name__)


def available() -> bool:
    found = importlib.util.find_spec("confluent_kafka") is not None
    if not found:
        log.warning("confluent-kafka is not installed: no librdkafka rows (pip install '.[dev]')")
    return found


def one_round(
    settings: Settings, rows: list[dict[str, Any]], events: int, model: str, logs: Path
) -> dict[str, float]:
    """The ceiling and one Predictor on librdkafka over `events` preloaded for this round."""
    one = workloads.scenario_settings(_on_librdkafka(settings), "rd", 4)
    workloads.preload(one, rows, events)
    reader = workloads.variant(one, "rd", model)
    log.info("a) ceiling over %d events, librdkafka", events)
    ceiling = workloads.ceiling(reader, events, reader.batch_size)
    log.info("b) one Predictor on librdkafka over the same %d events", events)
    run = workloads.predictor_throughput(reader, rows, events, 1, logs)
    return {"ceiling_eps": ceiling, "eps": run["eps"], "events": float(events)}


def latency(
    settings: Settings, rows: list[dict[str, Any]], seconds: float, rounds: int, logs: Path
) -> dict[str, Any]:
    log.info(
        "d) latency at 1,000 events/s, librdkafka: the Predictor and the floor (the hops, "
        "nothing between), taking turns for %d rounds",
        rounds,
    )
    measured, at_floor = live.latency_rounds(
        [
            live.Server(_on_librdkafka(workloads.scenario_settings(settings, "lat-rd", 4))),
            live.Server(
                _on_librdkafka(workloads.scenario_settings(settings, "floor-rd", 4)),
                workloads.FLOOR,
            ),
        ],
        rows,
        1000,
        seconds,
        rounds,
        logs,
    )
    return {
        **{k: v for k, v in measured.items() if k != "latencies_ms"},
        "floor": {k: v for k, v in at_floor.items() if k != "latencies_ms"},
    }


def _on_librdkafka(settings: Settings) -> Settings:
    return replace(settings, kafka_client=CONFLUENT_KAFKA)


def summary(rounds: list[dict[str, float]], at_1000: dict[str, Any]) -> dict[str, Any]:
    ceilings = [r["ceiling_eps"] for r in rounds]
    runs = [r["eps"] for r in rounds]
    return {
        "events": int(rounds[0]["events"]) if rounds else 0,
        "ceiling_rounds_eps": ceilings,
        "ceiling_eps": statistics.median(ceilings),
        "rounds_eps": runs,
        "eps": statistics.median(runs),
        "latency_1000": at_1000,
    }


def headline(results: dict[str, Any]) -> dict[str, Any]:
    rd = results.get("librdkafka")
    if rd is None:
        return {
            "throughput_eps_librdkafka": None,
            "ceiling_eps_librdkafka": None,
            "ratio_vs_ceiling_librdkafka": None,
            "p99_ms_at_1000_librdkafka": None,
            "floor_p99_ms_at_1000_librdkafka": None,
        }
    at_floor = rd["latency_1000"].get("floor")
    return {
        "throughput_eps_librdkafka": round(rd["eps"], 1),
        "ceiling_eps_librdkafka": round(rd["ceiling_eps"], 1),
        "ratio_vs_ceiling_librdkafka": round(rd["eps"] / rd["ceiling_eps"], 3),
        "p99_ms_at_1000_librdkafka": round(rd["latency_1000"]["p99_ms"], 2),
        "floor_p99_ms_at_1000_librdkafka": round(at_floor["p99_ms"], 2) if at_floor else None,
    }


def targets(h: dict[str, Any]) -> list[tuple[str, str, bool]]:
    if h.get("throughput_eps_librdkafka") is None:
        return []
    return [
        (
            "librdkafka: throughput >= 0.8 x its own ceiling",
            f"{h['ratio_vs_ceiling_librdkafka']:.2f} x",
            h["ratio_vs_ceiling_librdkafka"] >= 0.8,
        ),
        (
            "librdkafka: p99 <= 10 ms at 1,000 events/s",
            floor.with_floor(
                h["p99_ms_at_1000_librdkafka"], h.get("floor_p99_ms_at_1000_librdkafka")
            ),
            h["p99_ms_at_1000_librdkafka"] <= 10,
        ),
    ]


def markdown_rows(results: dict[str, Any]) -> list[str]:
    rd = results.get("librdkafka")
    if rd is None:
        return ["| librdkafka rows | not run: confluent-kafka is not installed |"]
    lat = rd["latency_1000"]
    return [
        f"| a) ceiling, librdkafka (median of "
        f"{', '.join(f'{e:,.0f}' for e in rd['ceiling_rounds_eps'])}) | "
        f"{rd['ceiling_eps']:,.0f} events/s |",
        f"| b) Predictor on librdkafka, 1 instance, {rd.get('events', 0):,} events, "
        f"{results['trees']}-tree model (median of "
        f"{', '.join(f'{e:,.0f}' for e in rd['rounds_eps'])}) | {rd['eps']:,.0f} events/s, "
        f"{rd['eps'] / rd['ceiling_eps']:.2f} x its ceiling |",
        f"| d) latency at 1,000 events/s, librdkafka (p50 / p95 / p99 / max) | "
        f"{lat['p50_ms']:.1f} / {lat['p95_ms']:.1f} / {lat['p99_ms']:.1f} / "
        f"{lat['max_ms']:.1f} ms (event -> scored p99 {lat['to_scored_p99_ms']:.1f} ms"
        f"{floor.rounds_note(lat)}) |",
        *([floor.floor_row(", librdkafka", lat["floor"])] if "floor" in lat else []),
    ]
