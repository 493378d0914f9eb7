"""Benchmark outputs: a JSON file, a Markdown table and a PNG plot."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pipeline.tools.bench import floor, per_client


def machine() -> str:
    cpus = len(__import__("os").sched_getaffinity(0))
    return f"{platform.machine()}, {cpus} cores, Python {platform.python_version()}, {platform.system()}"


def _eps(value: float) -> str:
    return "not run (--quick)" if value != value else f"{value:,.0f} events/s"


def _rounds(results: dict[str, Any], name: str) -> str:
    key = f"{name}_rounds_eps" if name else "rounds_eps"
    return ", ".join(f"{eps:,.0f}" for eps in results.get(key, []))


def _in_parentheses(note: str) -> str:
    return f" ({note.removeprefix('; ')})" if note else ""


def markdown(results: dict[str, Any], targets: list[tuple[str, str, bool]]) -> str:
    lat = results["latency"]
    rows = [
        "| measure | value |",
        "| --- | --- |",
        f"| a) ceiling: consume + produce, no ML (median of {_rounds(results, 'ceiling')}) | "
        f"{results['ceiling_eps']:,.0f} events/s |",
        *(
            f"| b) Predictor, 1 instance, {results['events']:,} events, {trees}-tree model "
            f"(median of {', '.join(f'{eps:,.0f}' for eps in row['rounds_eps'])}) | "
            f"{row['eps']:,.0f} events/s, {row['ratio_vs_ceiling']:.2f} x the ceiling |"
            for trees, row in sorted(results.get("by_trees", {}).items())
        ),
        *(
            [
                f"| b) Predictor, 1 instance, a copy of the model as @challenger scoring every "
                f"event in the shadow (median of "
                f"{', '.join(f'{eps:,.0f}' for eps in results['shadow']['rounds_eps'])}) | "
                f"{results['shadow']['eps']:,.0f} events/s, "
                f"{results['shadow']['eps'] / results['throughput_eps']:.2f} x one model |"
            ]
            if "shadow" in results
            else []
        ),
        (
            f"| b) peer: the same job as a Quix Streams application, one message at a time, "
            f"same model and events (median of {_rounds(results['peer_quix'], '')}) | "
            f"{results['peer_quix']['eps']:,.0f} events/s; the Predictor makes "
            f"{results['throughput_eps'] / results['peer_quix']['eps']:.2f} x that |"
            if "peer_quix" in results
            else "| b) peer: Quix Streams application | not run: Quix Streams is not installed "
            "(pip install -e '.[peer]') |"
        ),
        f"| b) Predictors, 2 instances, {results['partitions']} partitions | "
        f"{_eps(results['throughput_2_eps'])} |",
        f"| c) naive seed-article loop | {results['naive_eps']:,.1f} events/s |",
        *per_client.markdown_rows(results),
    ]
    for rate, values in lat.items():
        rows.append(
            f"| d) latency at {int(rate):,} events/s offered (p50 / p95 / p99 / max) | "
            f"{values['p50_ms']:.1f} / {values['p95_ms']:.1f} / {values['p99_ms']:.1f} / "
            f"{values['max_ms']:.1f} ms (scored {values['scored_eps']:,.0f}/s; event -> scored "
            f"p50 {values.get('to_scored_p50_ms', float('nan')):.1f} / "
            f"p99 {values.get('to_scored_p99_ms', float('nan')):.1f} ms"
            f"{floor.rounds_note(values)}) |"
        )
    if "latency_floor_1000" in results:
        rows.append(floor.floor_row("", results["latency_floor_1000"]))
    if "shadow" in results:
        values = results["shadow"]["latency_1000"]
        rows.append(
            f"| d) latency at 1,000 events/s, challenger shadowing every event (p50 / p95 / p99 "
            f"/ max) | {values['p50_ms']:.1f} / {values['p95_ms']:.1f} / {values['p99_ms']:.1f} "
            f"/ {values['max_ms']:.1f} ms{_in_parentheses(floor.rounds_note(values))} |"
        )
    swap = results["swap"]
    rows += [
        f"| e) swap: duration / p99 steady / p99 around swap | {swap['swap_seconds']:.2f} s / "
        f"{swap['steady_p99_ms']:.1f} ms / {swap['swap_window_p99_ms']:.1f} ms |",
        f"| e) swap: events lost / duplicated | {swap['lost']} / {swap['duplicated']} |",
    ]
    if "retrain" in results:
        r = results["retrain"]
        rows.append(
            f"| f) retrain: request -> model_ready / -> first new prediction | "
            f"{r['request_to_ready_s']:.1f} s / +{r['ready_to_first_prediction_s']:.2f} s |"
        )
    rows.append(f"| g) Predictor peak RSS{_rss_runs(results)} | {results['rss_mb']:.0f} MB |")
    anonymous = [
        mb for row in results.get("by_trees", {}).values() for mb in row.get("rounds_anon_mb", [])
    ]
    if anonymous:  # results written before the split have none
        rows.append(
            "| g) of which the process's own (RssAnon at the end of each run; the rest is "
            f"shared-library pages, as many as the page cache holds) | {max(anonymous):.0f} MB |"
        )
    if "metrics_cost" in results:
        cost = results["metrics_cost"]
        low, high = cost["extra_us_min_max"]
        rows.append(
            f"| h) metrics and monitoring, CPU per event (the monitoring calls themselves: median "
            f"{cost['direct_us_per_event']:.2f} us of {cost['rounds']} rounds; fastest watched "
            f"pass minus fastest bare one: {cost['paired_us_per_event']:.2f} us, a round "
            f"moving {low:.1f} to {high:.1f}) | {cost['extra_us_per_event']:.2f} us, the larger, "
            f"against {cost['scoring_us_per_event']:.1f} us to decode and score |"
        )
    if "label_join" in results:
        join = results["label_join"]
        rows.append(
            f"| i) late-label join at its limit ({join['entries_per_side']:,} predictions + "
            f"as many early labels) | {join['mb']:.1f} MB |"
        )
    checks = ["", "| target | measured | met |", "| --- | --- | --- |"]
    checks += [f"| {name} | {value} | {'yes' if ok else 'NO'} |" for name, value, ok in targets]
    trees = results.get("trees")
    model = (
        f"; models: fixed recipe (search_space.DEFAULT_POINT, seed 42), {trees} trees unless "
        "a row says otherwise"
        if trees
        else ""
    )
    return "\n".join([f"Machine: {machine()}{model}", "", *rows, *checks, ""])


def plot(results: dict[str, Any], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    for rate, values in results["latency"].items():
        data = np.sort(np.asarray(values["latencies_ms"]))
        if data.size:
            left.plot(data, np.linspace(0, 1, data.size), label=f"{int(rate):,} ev/s")
    left.set_xscale("log")
    left.set_xlabel("end-to-end latency (ms)")
    left.set_ylabel("fraction of events")
    left.set_title("Latency distribution per offered load")
    left.legend()
    swap = results["swap"]
    timeline = np.asarray([(t, lat) for t, lat, _ in swap["timeline"]])
    if timeline.size:
        seconds = np.floor(timeline[:, 0]).astype(int)
        counts = np.bincount(seconds)
        p99 = [
            np.percentile(timeline[seconds == s, 1], 99) if (seconds == s).any() else np.nan
            for s in range(counts.size)
        ]
        right.plot(range(counts.size), counts, color="tab:blue", label="events/s scored")
        twin = right.twinx()
        twin.plot(range(counts.size), p99, color="tab:red", label="p99 latency (ms)")
        twin.set_ylabel("p99 latency (ms)")
        right.axvline(swap["announced_at_s"], color="black", linestyle="--", label="swap announced")
    right.set_xlabel("seconds")
    right.set_ylabel("events/s")
    right.set_title("Throughput and latency over time, hot-swap marked")
    right.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(results: dict[str, Any], targets: list[tuple[str, str, bool]], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(results, default=float))
    for values in slim["latency"].values():
        values.pop("latencies_ms", None)
    slim["swap"].pop("timeline", None)
    (out / "bench.json").write_text(json.dumps(slim, indent=2))
    table = markdown(results, targets)
    (out / "bench.md").write_text(table)
    plot(results, out / "bench.png")
    return table


def _rss_runs(results: dict[str, Any]) -> str:
    """Each run's peak, so a rare high one is seen for what it is (and where it happened)."""
    runs = [
        f"{trees} trees {' / '.join(f'{mb:.0f}' for mb in row.get('rounds_rss_mb', []))}"
        for trees, row in results.get("by_trees", {}).items()
        if row.get("rounds_rss_mb")  # results written before b73fc0f have none
    ]
    if results.get("rss_2_mb"):
        runs.append(f"2 instances {results['rss_2_mb']:.0f}")
    return f" (each run, MB: {'; '.join(runs)})" if runs else ""
