"""Answer retrain requests: dataset from Kafka, Hyperopt-tuned LightGBM, MLflow, gate, announce."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence

from pipeline.config.settings import Settings
from pipeline.services.entry import run_entry
from pipeline.services.trainer import Trainer

log = logging.getLogger("trainer")


def serve(settings: Settings, stop: threading.Event) -> int:
    log.info("trainer %s starting on %s", settings.instance_name, settings.bootstrap_servers)
    Trainer(settings).run(stop)
    log.info("trainer stopped cleanly")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_entry("trainer", __doc__ or "", argv, serve)


if __name__ == "__main__":
    sys.exit(main())
