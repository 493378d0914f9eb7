"""Process-wide logging setup, called once by each entry script."""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
from collections.abc import Callable

QUIET_LIBRARIES = ("kafka", "librdkafka", "mlflow", "alembic", "hyperopt", "urllib3", "git", "py4j")
# The Kafka clients, whose retries repeat the same warnings until the broker answers.
KAFKA_CLIENT_LOGS = ("kafka", "librdkafka")
REPEAT_WINDOW_S = 10.0


def setup_logging(level: str = "INFO") -> None:
    # Progress bars from MLflow artifact transfers would interleave with the log lines.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    for handler in logging.getLogger().handlers:  # one each: a record passes every handler
        repeats = RepeatFilter()
        handler.addFilter(repeats)
        # What the last window held back is said when the process ends (logging's own exit
        # hook, registered at its import, runs after this one and closes the handler).
        atexit.register(_report_held_at_exit, handler, repeats)


_NUMBERS = re.compile(r"\d+")


def _report_held_at_exit(handler: logging.Handler, repeats: RepeatFilter) -> None:
    """Only for a handler still in use: a later setup replaced the earlier ones, and a stream
    closed before exit (a test runner's capture) takes no more lines."""
    stream = getattr(handler, "stream", None)
    if handler not in logging.getLogger().handlers or getattr(stream, "closed", False):
        return
    repeats.report_held(handler)


class RepeatFilter(logging.Filter):
    """Each distinct warning or error of the Kafka clients once per window, with a count.

    While a broker is away, kafka-python logs three lines for every reconnection attempt of
    every client, and a Predictor has several: a 4-s broker restart left 380 such lines in its
    log, which buried the service's own few. A line passes when it was not seen in the last
    `window_s` (numbers ignored, so backoffs and ports do not make it new); the next one that
    passes after that says how many were held back, so the outage stays visible without the
    flood. Below WARNING (asked for with --log-level DEBUG) nothing is held back."""

    def __init__(
        self,
        window_s: float = REPEAT_WINDOW_S,
        loggers: tuple[str, ...] = KAFKA_CLIENT_LOGS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self._prefixes = tuple(f"{name}." for name in loggers)
        self._loggers = loggers
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._last_text: dict[tuple[str, int, str], str] = {}  # of the lines held back

    def _watched(self, name: str) -> bool:
        return name in self._loggers or name.startswith(self._prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not self._watched(record.name):
            return True
        key = (record.name, record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = self._clock()
        with self._lock:
            last, held = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.window_s:
                self._seen[key] = (last, held + 1)
                self._last_text[key] = record.getMessage()
                return False
            if len(self._seen) > 1000:  # lines that varied in more than numbers
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window_s}
                self._last_text = {k: v for k, v in self._last_text.items() if k in self._seen}
            self._seen[key] = (now, 0)
            self._last_text.pop(key, None)
        if held and last is not None:
            record.msg = (
                f"{record.getMessage()} ({held} more like it in the last {now - last:.0f} s)"
            )
            record.args = None
        return True

    def report_held(self, handler: logging.Handler) -> None:
        """One line per kind still held back (the last of them, with the count), written to
        `handler` directly: a flood that ended is counted even if no line of its kind follows."""
        now = self._clock()
        with self._lock:
            held = [
                (key, count, now - since) for key, (since, count) in self._seen.items() if count
            ]
            texts = {key: self._last_text.get(key, key[2]) for key, _, _ in held}
            for key, _, _ in held:
                self._seen[key] = (now, 0)
        for key, count, age in held:
            name, level, _ = key
            message = "%s (%d like it held back in the last %.0f s)"
            line = logging.LogRecord(
                name, level, __file__, 0, message, (texts[key], count, age), None
            )
            handler.handle(line)
