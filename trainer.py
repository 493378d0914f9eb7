"""Answer retrain requests: dataset from Kafka, Hyperopt-tuned LightGBM, MLflow, gate, announce."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence

from pipeline.errors import PipelineError
from pipeline.logs import setup_logging
from pipeline.retraining import Trainer
from pipeline.settings import parse_settings

log = logging.getLogger("trainer")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings("trainer", __doc__ or "", argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    setup_logging(settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("trainer %s starting on %s", settings.instance_name, settings.bootstrap_servers)
    try:
        Trainer(settings).run(stop)
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    log.info("trainer stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
