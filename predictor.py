"""Score `app_messages` in real time with the champion model; hot-swap on announcements."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence

from pipeline.config.settings import Settings
from pipeline.services.entry import run_entry
from pipeline.services.predictor import Predictor

log = logging.getLogger("predictor")


def serve(settings: Settings, stop: threading.Event) -> int:
    log.info(
        "predictor %s starting on %s (%s)",
        settings.instance_name,
        settings.bootstrap_servers,
        "exactly-once" if settings.exactly_once else "at-least-once",
    )
    Predictor(settings).run(stop)
    log.info("predictor %s stopped cleanly", settings.instance_name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_entry("predictor", __doc__ or "", argv, serve)


if __name__ == "__main__":
    sys.exit(main())
