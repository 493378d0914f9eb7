"""Live model monitoring in the Predictor: online quality per version, input drift, and the
retrain requests they call for.

The scoring loop hands over each batch's labelled outcomes and columns; windows close here
(a few milliseconds per thousand events). Everything that talks to MLflow (which run made the
serving version, its holdout AUC, logging each quality window to that run) happens on a
worker thread, so a slow or unreachable registry never stalls scoring.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping

from prometheus_client import Gauge

from pipeline.config.settings import Settings
from pipeline.core.batching import BatchResult
from pipeline.core.drift import DriftMonitor, FeatureProfile
from pipeline.core.messages import REASON_DRIFT, REASON_QUALITY
from pipeline.core.quality import OnlineQuality, WindowReport, decayed
from pipeline.errors import PipelineError
from pipeline.registry.online import VersionRecord, log_window, version_record
from pipeline.services.metrics import PredictorMetrics

log = logging.getLogger(__name__)
QUEUE_LIMIT = 1000  # windows waiting for MLflow; past it a new one is dropped with a warning


class RegistryWriter:
    """Looks up serving versions and logs quality windows, off the scoring thread.

    A version's run gets at most one write every `interval_s`, of its newest window: an MLflow
    write costs about 10 ms of CPU (sqlite store), and in a Predictor's process that CPU comes
    out of scoring. With every event labelled, 20,000 events/s close 20 windows a second, and
    writing each took a third of the Predictor's throughput (README, Performance).
    """

    def __init__(
        self,
        lookup: Callable[[int], VersionRecord],
        log_report: Callable[[str, WindowReport], None],
        interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup, self._log = lookup, log_report
        self._interval_s, self._clock = interval_s, clock
        self.records: dict[int, VersionRecord] = {}
        self.cpu_s = 0.0  # this thread's CPU time, for the benchmark's cost of watching
        self.skipped = 0  # windows not logged: a newer one of the same run was
        self._pending: dict[str, WindowReport] = {}  # run -> its newest window not yet logged
        self._due: dict[str, float] = {}  # run -> when it may be written again
        self._jobs: queue.Queue[tuple[int, WindowReport | None] | None] = queue.Queue(QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._work, name="quality-to-mlflow", daemon=True)
        self._thread.start()

    def submit(self, version: int, report: WindowReport | None = None) -> None:
        try:
            self._jobs.put_nowait((version, report))
        except queue.Full:
            log.warning("MLflow is behind: a quality window of version %d is not logged", version)

    def look_up(self, version: int) -> None:
        """The version's record, read on the caller's thread: at start-up, before any event,
        rather than on this thread while the first batches are scored (the registry's reply
        costs tens of milliseconds of CPU, and a thread's CPU here is the scoring loop's)."""
        try:
            self._record(version)
        except PipelineError as exc:
            log.warning("online quality of version %d will not be recorded: %s", version, exc)

    def close(self, timeout_s: float = 10.0) -> None:
        """Logs the windows still pending, then stops."""
        try:
            self._jobs.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def _work(self) -> None:
        while (job := self._next()) is not None:
            started = time.thread_time()
            if job:
                self._take(*job)
            self._write(due_only=True)
            self.cpu_s += time.thread_time() - started
        started = time.thread_time()
        self._write(due_only=False)
        self.cpu_s += time.thread_time() - started

    def _next(self) -> tuple[int, WindowReport | None] | tuple[()] | None:
        """The next job; `()` when a pending window falls due first; None to stop."""
        wait = None
        if self._pending:
            wait = max(0.0, min(self._due.get(run, 0.0) for run in self._pending) - self._clock())
        try:
            return self._jobs.get(timeout=wait)
        except queue.Empty:
            return ()

    def _take(self, version: int, report: WindowReport | None) -> None:
        try:
            record = self._record(version)  # at once: the decay check reads it
        except PipelineError as exc:
            log.warning("online quality of version %d not recorded: %s", version, exc)
            return
        if report is None or record is None or not record.run_id:
            return
        self.skipped += record.run_id in self._pending
        self._pending[record.run_id] = report

    def _write(self, due_only: bool) -> None:
        now = self._clock()
        for run_id, report in list(self._pending.items()):
            if due_only and self._due.get(run_id, 0.0) > now:
                continue
            del self._pending[run_id]
            self._due[run_id] = now + self._interval_s
            try:
                self._log(run_id, report)
            except PipelineError as exc:
                log.warning("online quality of version %d not recorded: %s", report.version, exc)

    def _record(self, version: int) -> VersionRecord | None:
        if version <= 0:
            return None
        if version not in self.records:
            self.records[version] = self._lookup(version)
        return self.records[version]


class LiveMonitor:
    """Feed every scored batch; `observe` answers with a retrain reason when one is due."""

    def __init__(
        self,
        settings: Settings,
        metrics: PredictorMetrics,
        writer: RegistryWriter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.writer = writer
        self.clock = clock
        self.quality = OnlineQuality(settings.quality_window)
        self.drift: DriftMonitor | None = None
        self.drift_version = -1
        self._last_request = -float("inf")
        self.drift_alerts: list[dict[str, object]] = []
        self._children: dict[tuple[Gauge, tuple[str, ...]], Gauge] = {}

    @classmethod
    def create(cls, settings: Settings, metrics: PredictorMetrics) -> LiveMonitor:
        writer = RegistryWriter(
            lambda v: version_record(settings, v), log_window, settings.quality_log_interval_s
        )
        return cls(settings, metrics, writer)

    def observe(
        self,
        version: int,
        profile: Mapping[str, FeatureProfile] | None,
        result: BatchResult,
        late: Mapping[int, list[tuple[float, int]]] | None = None,
    ) -> str | None:
        """`late`: (probability, label) pairs completed by labels that came after their event,
        per version that scored them."""
        reasons = []
        reports = self.quality.add_arrays(version, result.outcome_proba, result.outcome_truth)
        for scored_by, pairs in (late or {}).items():
            reports += self.quality.add(scored_by, pairs)
        for report in reports:
            self._publish_quality(report)
            if report.version == version and self._decayed(report):
                reasons.append(REASON_QUALITY)
        if result.columns and self._watch(version, profile):
            assert self.drift is not None
            stride = self.settings.drift_sample_every
            columns = result.columns
            if stride > 1:  # a slice per feature, in C: the sample costs nothing to take
                columns = {name: values[::stride] for name, values in columns.items()}
            figures = self.drift.add(columns)
            if figures is not None and self._publish_drift(version, figures):
                reasons.append(REASON_DRIFT)
        return self._debounced(reasons)

    def close(self) -> None:
        self.writer.close()

    def _watch(self, version: int, profile: Mapping[str, FeatureProfile] | None) -> bool:
        """A new version brings its own reference profile; versions without one go unwatched."""
        if version != self.drift_version:
            self.drift_version = version
            self.drift = None
            if profile:
                s = self.settings
                self.drift = DriftMonitor(
                    profile, s.drift_window, s.drift_threshold, max(s.drift_patience, 1)
                )
            self.writer.submit(version)  # look its record up before the first window closes
        return self.drift is not None

    def _decayed(self, report: WindowReport) -> bool:
        record = self.writer.records.get(report.version)
        if record is None or record.holdout_auc is None or self.settings.quality_max_drop >= 1:
            return False
        if not decayed(report, record.holdout_auc, self.settings.quality_max_drop):
            return False
        log.warning(
            "version %d: online AUC %.4f over %d labelled events is more than %.3f below its "
            "holdout AUC %.4f",
            report.version,
            report.metrics["auc"],
            report.rows,
            self.settings.quality_max_drop,
            record.holdout_auc,
        )
        return True

    def _publish_quality(self, report: WindowReport) -> None:
        version = str(report.version)
        for name, value in report.metrics.items():
            self._gauge(self.metrics.online_quality, version, name).set(value)
        for span, values in report.ewma.items():
            for name, value in values.items():
                self._gauge(self.metrics.online_quality_ewma, version, name, str(span)).set(value)
        self.writer.submit(report.version, report)

    def _gauge(self, family: Gauge, *labels: str) -> Gauge:
        """A labelled gauge, looked up once: `labels()` validates and locks on every call, and a
        window sets some forty of them."""
        key = (family, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def _publish_drift(self, version: int, figures: dict[str, dict[str, float]]) -> bool:
        assert self.drift is not None
        for feature, values in figures.items():
            self._gauge(self.metrics.drift_js, feature).set(values["js"])
            self._gauge(self.metrics.drift_psi, feature).set(values["psi"])
            self._gauge(self.metrics.drift_over, feature).set(self.drift.over.get(feature, 0))
        alarms = self.drift.alarms() if self.settings.drift_patience > 0 else []
        if alarms:
            worst = {f: round(figures[f]["js"], 4) for f in alarms}
            log.warning("version %d: drift on %s (Jensen-Shannon %s)", version, alarms, worst)
            self.drift_alerts.append({"version": version, "features": worst})
        return bool(alarms)

    def _debounced(self, reasons: list[str]) -> str | None:
        if not reasons:
            return None
        now = self.clock()
        if now - self._last_request < self.settings.retrain_min_interval_s:
            log.info("a %s retrain is due but one was asked for recently", reasons[0])
            return None
        self._last_request = now
        return reasons[0]
