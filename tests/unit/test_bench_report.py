import statistics

from pipeline.tools.bench import per_client
from pipeline.tools.bench.__main__ import headline, targets
from pipeline.tools.bench.floor import rounds_note
from pipeline.tools.bench.live import _median_round, percentiles
from pipeline.tools.bench.report import markdown, write


def sample_results() -> dict:
    return {
        "events": 1000,
        "partitions": 4,
        "ceiling_eps": 10000.0,
        "throughput_eps": 9000.0,
        "throughput_2_eps": 12000.0,
        "naive_eps": 50.0,
        "rss_mb": 300.0,
        "trees": 300,
        "by_trees": {
            100: {"rounds_eps": [9500.0, 9700.0], "eps": 9600.0, "ratio_vs_ceiling": 0.96},
            300: {"rounds_eps": [8900.0, 9100.0], "eps": 9000.0, "ratio_vs_ceiling": 0.9},
            1000: {"rounds_eps": [7000.0, 7400.0], "eps": 7200.0, "ratio_vs_ceiling": 0.72},
        },
        "metrics_cost": {
            "events": 1000,
            "rounds": 3,
            "scoring_us_per_event": 50.0,
            "direct_us_per_event": 4.0,
            "direct_us_min_max": [3.9, 4.2],
            "paired_us_per_event": 5.0,
            "extra_us_per_event": 5.0,
            "extra_us_min_max": [4.0, 6.0],
            "trees": 300,
        },
        "latency": {
            1000: {
                **percentiles([1.0, 2.0, 3.0, 40.0]),
                "offered_eps": 1000,
                "scored_eps": 990.0,
                "missing": 0,
                "latencies_ms": [1.0, 2.0, 3.0, 40.0],
            }
        },
        "latency_floor_1000": {
            **percentiles([0.5, 1.0, 2.0, 30.0]),
            "to_scored_p50_ms": 0.4,
            "to_scored_p99_ms": 9.0,
            "offered_eps": 1000,
            "scored_eps": 1000.0,
            "missing": 0,
        },
        "shadow": {
            "rounds_eps": [6000.0, 6400.0],
            "eps": 6200.0,
            "latency_1000": {**percentiles([1.0, 2.0, 3.0, 52.0]), "offered_eps": 1000},
        },
        "swap": {
            "swap_seconds": 0.5,
            "steady_p99_ms": 5.0,
            "swap_window_p99_ms": 12.0,
            "swap_p99_ratio": 2.4,
            "lost": 0,
            "duplicated": 0,
            "timeline": [(0.1, 2.0, 1), (1.2, 3.0, 2)],
            "announced_at_s": 1.0,
        },
    }


def test_percentiles_include_the_worst_case() -> None:
    values = percentiles([float(v) for v in range(1, 101)])
    assert values["max_ms"] == 100.0 and 98.0 <= values["p99_ms"] <= 100.0
    assert values["p50_ms"] == 50.5


def test_targets_are_judged_on_the_measured_ratios() -> None:
    h = headline(sample_results())
    assert h["ratio_vs_ceiling"] == 0.9 and h["speedup_vs_naive"] == 180.0
    verdicts = {name: ok for name, _, ok in targets(h)}
    assert verdicts["throughput >= 0.8 x ceiling"]
    assert h["trees"] == 300 and h["ratio_vs_ceiling_1000_trees"] == 0.72
    assert verdicts["throughput >= 0.8 x ceiling, 100-tree model"]
    assert not verdicts["throughput >= 0.8 x ceiling, 1000-tree model"]
    assert h["shadow_throughput_ratio"] == round(6200 / 9000, 3)
    assert verdicts["challenger shadowing every event: throughput >= 0.65 x one model"]
    assert not verdicts["challenger shadowing every event: p99 at 1,000 events/s rises <= 20 %"]
    assert not verdicts["p99 <= 10 ms at 1,000 events/s"]  # p99 of the sample is ~39 ms
    assert not verdicts["swap p99 <= 2 x steady p99"]
    # 5 us of 1/9,000 s per event: 4.5 % of what an event costs the Predictor.
    assert h["metrics_overhead"] == 0.045
    assert not verdicts["metrics and monitoring <= 3 % of throughput"]


def test_reports_are_written(tmp_path) -> None:
    results = sample_results()
    table = write(results, targets(headline(results)), tmp_path)
    assert "| a) ceiling" in table and "| NO |" in table
    assert {p.name for p in tmp_path.iterdir()} == {"bench.json", "bench.md", "bench.png"}
    assert "latencies_ms" not in (tmp_path / "bench.json").read_text()
    assert markdown(results, []).count("\n") > 8


def test_a_quick_run_says_the_two_instance_figure_was_not_run() -> None:
    results = {**sample_results(), "throughput_2_eps": float("nan")}
    assert "2 instances, 4 partitions | not run (--quick) |" in markdown(results, [])
    assert "12,000 events/s" in markdown(sample_results(), [])


def test_the_p99_targets_name_the_floor_measured_in_the_same_run() -> None:
    results = sample_results()
    h = headline(results)
    assert h["floor_p99_ms_at_1000"] == round(results["latency_floor_1000"]["p99_ms"], 2)
    measured = {name: value for name, value, _ in targets(h)}
    assert measured["p99 <= 10 ms at 1,000 events/s"].endswith(
        f"(floor {h['floor_p99_ms_at_1000']:.1f} ms)"
    )
    assert "| d) latency floor at 1,000 events/s: the same two hops" in markdown(results, [])
    # Without a floor (a report from before it existed) the p99 stands alone.
    del results["latency_floor_1000"]
    h = headline(results)
    assert h["floor_p99_ms_at_1000"] is None
    assert (
        "floor"
        not in {name: value for name, value, _ in targets(h)}["p99 <= 10 ms at 1,000 events/s"]
    )


def test_the_librdkafka_rows_carry_their_own_floor() -> None:
    floor = {**sample_results()["latency_floor_1000"], "p99_ms": 7.5}
    at_1000 = {**percentiles([1.0, 2.0, 12.0]), "to_scored_p99_ms": 8.0, "floor": floor}
    results = {
        **sample_results(),
        "librdkafka": per_client.summary(
            [{"ceiling_eps": 40000.0, "eps": 16000.0, "events": 120000.0}], at_1000
        ),
    }
    h = headline(results)
    assert h["floor_p99_ms_at_1000_librdkafka"] == 7.5
    verdicts = {name: (value, ok) for name, value, ok in targets(h)}
    value, ok = verdicts["librdkafka: p99 <= 10 ms at 1,000 events/s"]
    assert value.endswith("(floor 7.5 ms)") and not ok
    rows = per_client.markdown_rows(results)
    assert any("latency floor at 1,000 events/s, librdkafka" in row for row in rows)
    assert any("Predictor on librdkafka, 1 instance, 120,000 events" in row for row in rows)


def test_latency_rounds_report_the_median_of_each_percentile_and_list_every_round() -> None:
    def stream(latencies: list[float], missing: int = 0) -> dict:
        to_scored = percentiles([x / 2 for x in latencies])
        return {
            **percentiles(latencies),
            "to_scored_p50_ms": to_scored["p50_ms"],
            "to_scored_p99_ms": to_scored["p99_ms"],
            "offered_eps": 1000,
            "scored_eps": float(len(latencies)),
            "missing": missing,
            "latencies_ms": latencies,
        }

    first_after_heavy_writes = stream([5.0, 49.5, 60.0], missing=1)
    calm = [stream([2.0, 13.2]), stream([3.0, 14.9], missing=2)]
    merged = _median_round([first_after_heavy_writes, *calm])

    assert merged["p99_ms"] == statistics.median(
        r["p99_ms"] for r in [first_after_heavy_writes, *calm]
    )
    assert merged["p99_ms"] < first_after_heavy_writes["p99_ms"]
    assert merged["max_ms"] == 14.9 and merged["p50_ms"] == 8.95
    assert merged["missing"] == 3 and merged["offered_eps"] == 1000
    assert [r["p99_ms"] for r in merged["rounds"]] == [
        r["p99_ms"] for r in [first_after_heavy_writes, *calm]
    ]
    assert len(merged["latencies_ms"]) == 7  # every stream's, for the distribution plot
    note = rounds_note(merged)
    assert note.startswith("; median of 3 rounds, p99 per round ")
    assert rounds_note(first_after_heavy_writes) == ""  # one stream: nothing to say

    results = sample_results()
    results["latency"] = {1000: merged}
    results["latency_floor_1000"] = {k: v for k, v in merged.items() if k != "latencies_ms"}
    table = markdown(results, [])
    assert table.count("median of 3 rounds, p99 per round") == 2  # the Predictor and the floor


def test_the_peak_rss_row_names_each_run_so_a_rare_high_one_can_be_placed() -> None:
    results = sample_results()
    for trees, peaks in ((100, [390.0, 395.0]), (300, [401.0, 501.0]), (1000, [408.0, 410.0])):
        results["by_trees"][trees]["rounds_rss_mb"] = peaks
    results["rss_2_mb"] = 388.0
    row = next(line for line in markdown(results, []).splitlines() if "peak RSS" in line)
    assert "100 trees 390 / 395; 300 trees 401 / 501; 1000 trees 408 / 410; 2 instances 388" in row


def test_results_without_each_runs_peak_keep_the_plain_rss_row() -> None:
    assert "| g) Predictor peak RSS | 300 MB |" in markdown(sample_results(), [])


def test_the_process_own_memory_is_reported_beside_its_peak_rss() -> None:
    results = sample_results()
    for trees, own in ((100, [201.0, 204.0]), (300, [207.0, 203.0]), (1000, [219.0, 212.0])):
        results["by_trees"][trees]["rounds_rss_mb"] = [470.0, 480.0]
        results["by_trees"][trees]["rounds_anon_mb"] = own
    lines = markdown(results, []).splitlines()
    own_row = next(line for line in lines if "of which the process's own" in line)
    assert own_row.endswith("| 219 MB |")  # the largest of every run
    assert not any("process's own" in line for line in markdown(sample_results(), []).splitlines())
