"""Score `app_messages` in real time with the champion model; hot-swap on announcements."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence

from pipeline.errors import PipelineError
from pipeline.logs import setup_logging
from pipeline.serving import Predictor
from pipeline.settings import parse_settings

log = logging.getLogger("predictor")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings("predictor", __doc__ or "", argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    setup_logging(settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info(
        "predictor %s starting on %s (%s)",
        settings.instance_name,
        settings.bootstrap_servers,
        "exactly-once" if settings.exactly_once else "at-least-once",
    )
    try:
        Predictor(settings).run(stop)
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    log.info("predictor %s stopped cleanly", settings.instance_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
