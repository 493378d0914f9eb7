"""What the sample app measures: delivery (missing, duplicates), latency, accuracy, versions."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.core.messages import now_ms


@dataclass
class StreamStats:
    started: float = field(default_factory=time.monotonic)
    sent_at: dict[str, float] = field(default_factory=dict)  # request_id -> send time (valid only)
    truth: dict[str, str] = field(default_factory=dict)
    bad_sent: int = 0
    predictions: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    correct: int = 0
    judged: int = 0
    versions: dict[int, int] = field(default_factory=dict)  # version -> predictions
    dlq: int = 0
    last_received: float = 0.0
    # Wall-clock send times, to split each latency at the Predictor's `scored_at_ms` stamp:
    # event -> scored (first hop + scoring), scored -> read (publish + second hop).
    sent_wall_ms: dict[str, float] = field(default_factory=dict)
    to_scored_ms: list[float] = field(default_factory=list)
    # (received at, latency ms, model version) per first prediction: for plots and swap windows
    timeline: list[tuple[float, float, int]] = field(default_factory=list)

    def sent(self, request_id: str, label: str | None, at: float) -> None:
        self.sent_at[request_id] = at
        # In whole milliseconds, as the Predictor stamps `scored_at_ms` (`now_ms`): a first hop
        # under a millisecond would otherwise read up to 1 ms below zero.
        self.sent_wall_ms[request_id] = now_ms()
        if label is not None:
            self.truth[request_id] = label

    def sent_bad(self) -> None:
        self.bad_sent += 1

    def received(
        self,
        request_id: str,
        label: str,
        version: int,
        at: float,
        scored_at_ms: float | None = None,
    ) -> None:
        if request_id not in self.sent_at:
            return  # someone else's event on a shared topic
        self.predictions[request_id] += 1
        self.versions[version] = self.versions.get(version, 0) + 1
        self.last_received = at
        if self.predictions[request_id] > 1:
            return  # a duplicate counts once, for delivery only
        latency = (at - self.sent_at[request_id]) * 1000.0
        self.latencies_ms.append(latency)
        if scored_at_ms is not None:
            self.to_scored_ms.append(scored_at_ms - self.sent_wall_ms[request_id])
        self.timeline.append((at, latency, version))
        if request_id in self.truth:
            self.judged += 1
            self.correct += self.truth[request_id] == label

    def dead_letter(self) -> None:
        self.dlq += 1

    @property
    def events(self) -> int:
        return len(self.sent_at) + self.bad_sent

    @property
    def missing(self) -> int:
        return sum(1 for rid in self.sent_at if rid not in self.predictions)

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.predictions.values())

    def percentile(self, q: float, last: int | None = None) -> float:
        values = self.latencies_ms[-last:] if last else self.latencies_ms
        return float(np.percentile(values, q)) if values else float("nan")

    def summary(self) -> dict[str, Any]:
        elapsed = max((self.last_received or time.monotonic()) - self.started, 1e-9)
        received = len(self.predictions)
        return {
            "events": self.events,
            "predictions": sum(self.predictions.values()),
            "missing": self.missing,
            "duplicates": self.duplicates,
            "dlq": self.dlq,
            "model_versions": sorted(self.versions),
            "throughput_eps": round(received / elapsed, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "accuracy": round(self.correct / self.judged, 4) if self.judged else 0.0,
        }

    def progress_line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        versions = ", ".join(f"v{v}: {n}" for v, n in sorted(self.versions.items()))
        accuracy = self.correct / self.judged if self.judged else float("nan")
        return (
            f"sent {self.events:>6}  scored {len(self.predictions):>6}  "
            f"{len(self.predictions) / elapsed:7.1f} ev/s  p50 {self.percentile(50, 2000):6.1f} ms  "
            f"p99 {self.percentile(99, 2000):6.1f} ms  accuracy {accuracy:.3f}  dlq {self.dlq}  "
            f"versions [{versions}]"
        )
