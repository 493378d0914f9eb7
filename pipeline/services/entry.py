"""What every long-running entry script does around its loop, written once.

Settings errors exit 2 before anything starts; SIGTERM/SIGINT set the stop event the loop
polls, so the batch in hand is finished and committed; a PipelineError becomes its exit code.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from pipeline.config.logs import setup_logging
from pipeline.config.settings import Settings, parse_settings
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

Body = Callable[[Settings, threading.Event], int]


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_entry(script: str, description: str, argv: Sequence[str] | None, body: Body) -> int:
    try:
        settings = parse_settings(script, description, argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    setup_logging(settings.log_level)
    try:
        return body(settings, stop_on_signals())
    except PipelineError as exc:
        logging.getLogger(script).error("%s", exc)
        return exc.exit_code
