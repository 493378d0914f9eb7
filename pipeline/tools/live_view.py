"""What the Grafana dashboard shows, for machines without Docker: the demo scrapes its
Predictors' /metrics every few seconds and draws the same views into one PNG at the end.

Throughput, event-to-scored latency percentiles, the version each instance serves over time,
online AUC per version and drift per feature: the figures are the services' own metrics, read
the way Prometheus reads them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)
QUANTILES = (0.5, 0.95, 0.99)


@dataclass
class Sample:
    at_s: float
    scored: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    versions: dict[str, int] = field(default_factory=dict)  # instance -> version
    online_auc: dict[str, float] = field(default_factory=dict)  # version -> last window's AUC
    drift: dict[str, float] = field(default_factory=dict)  # feature -> JS distance (max)
    drift_over: dict[tuple[str, str], float] = field(default_factory=dict)


def parse(text: str, instance: str, into: Sample) -> None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "pipeline_events_scored_total":
                into.scored += value
            elif name == "pipeline_event_to_scored_seconds_bucket":
                le = float(labels["le"])
                into.buckets[le] = into.buckets.get(le, 0.0) + value
            elif name == "pipeline_model_info" and value == 1:
                into.versions[instance] = int(labels["version"])
            elif name == "pipeline_online_quality" and labels.get("metric") == "auc":
                into.online_auc[labels["version"]] = value
            elif name == "pipeline_drift_js_distance":
                into.drift[labels["feature"]] = max(into.drift.get(labels["feature"], 0), value)
            elif name == "pipeline_drift_windows_over_threshold":
                into.drift_over[(instance, labels["feature"])] = value


class Scraper:
    def __init__(self, ports: dict[str, int], interval_s: float = 2.0) -> None:
        self.ports = ports
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-scraper", daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.scrape()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.scrape()

    def scrape(self) -> None:
        sample = Sample(time.monotonic() - self._started)
        for instance, port in self.ports.items():
            url = f"http://127.0.0.1:{port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    parse(response.read().decode(), instance, sample)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.debug("scrape of %s failed: %s", instance, exc)
        self.samples.append(sample)

    def drift_alerts(self, patience: int) -> list[dict[str, object]]:
        """Each time an instance's feature reached `patience` drifted windows in a row."""
        alerts: list[dict[str, object]] = []
        previous: dict[tuple[str, str], float] = {}
        for sample in self.samples:
            for key, over in sample.drift_over.items():
                if over >= patience > previous.get(key, 0):
                    alerts.append(
                        {"instance": key[0], "feature": key[1], "at_s": round(sample.at_s, 1)}
                    )
                previous[key] = over
        return alerts


def quantile(buckets: dict[float, float], q: float) -> float:
    """histogram_quantile over cumulative buckets, as PromQL computes it."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if le == float("inf"):
                return lower
            share = (rank - below) / max(buckets[le] - below, 1e-12)
            return lower + (le - lower) * share
        lower, below = le, buckets[le]
    return lower


def render(samples: list[Sample], path: Path) -> Path:
    fig, axes = plt.subplots(5, 1, figsize=(11, 16), sharex=True)
    times = [s.at_s for s in samples]
    pairs = list(itertools.pairwise(samples))
    axes[0].plot(times[1:], [(b.scored - a.scored) / max(b.at_s - a.at_s, 1e-9) for a, b in pairs])
    axes[0].set_ylabel("events/s scored")
    for q in QUANTILES:
        delta = [
            {le: b.buckets.get(le, 0) - a.buckets.get(le, 0) for le in b.buckets} for a, b in pairs
        ]
        axes[1].plot(times[1:], [quantile(d, q) * 1000 for d in delta], label=f"p{int(q * 100)}")
    axes[1].set_ylabel("event-to-scored ms")
    axes[1].legend(loc="upper right")
    for instance in sorted({i for s in samples for i in s.versions}):
        axes[2].step(
            times,
            [s.versions.get(instance, float("nan")) for s in samples],
            label=instance,
            where="post",
        )
    axes[2].set_ylabel("version served")
    axes[2].legend(loc="upper left")
    for version in sorted({v for s in samples for v in s.online_auc}, key=int):
        axes[3].plot(
            times, [s.online_auc.get(version, float("nan")) for s in samples], label=f"v{version}"
        )
    axes[3].set_ylabel("online AUC (last window)")
    axes[3].legend(loc="lower left", ncol=4)
    for feature in sorted({f for s in samples for f in s.drift}):
        axes[4].plot(times, [s.drift.get(feature, float("nan")) for s in samples], label=feature)
    axes[4].axhline(0.1, color="red", linestyle="--", linewidth=1)
    axes[4].set_ylabel("drift (Jensen-Shannon)")
    axes[4].set_xlabel("seconds into the stream")
    axes[4].legend(loc="upper left", ncol=4, fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("Kafka ML pipeline: the demo's live metrics (the Grafana dashboard's views)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def online_auc_by_version(samples: list[Sample]) -> dict[str, float]:
    """The online AUC of each version's last closed window, as its Predictors reported it."""
    last: dict[str, float] = defaultdict(float)
    for sample in samples:
        last.update({v: round(a, 4) for v, a in sample.online_auc.items() if a == a})
    return dict(sorted(last.items(), key=lambda kv: int(kv[0])))
