"""`make demo`: a broker (an existing one, or a local one it starts), then the first model.

Uses the broker named by KAFKA_BOOTSTRAP_SERVERS / PIPELINE_BOOTSTRAP_SERVERS when set;
otherwise starts the local Kafka launcher for the length of the demo and stops it after.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace

import initialize
from pipeline.broker import LocalBroker
from pipeline.errors import PipelineError
from pipeline.logs import setup_logging
from pipeline.settings import Settings, parse_settings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[Settings]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("PIPELINE_BOOTSTRAP_SERVERS"):
        log.info("using the Kafka broker at %s", settings.bootstrap_servers)
        yield settings
        return
    with LocalBroker(settings.home / "demo-kafka") as broker:
        log.info("started a local Kafka broker at %s", broker.bootstrap_servers)
        yield replace(settings, bootstrap_servers=broker.bootstrap_servers)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings("demo", __doc__ or "", argv)
        setup_logging(settings.log_level)
        with broker_for(settings) as live:
            summary = initialize.initialize(live)
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    print(
        f"first model: {summary['model']} version {summary['version']}, test AUC "
        f"{summary['test_auc']:.4f}, accuracy {summary['test_accuracy']:.4f}, "
        f"log loss {summary['test_log_loss']:.4f}"
    )
    print("see every run: make mlflow-ui, then open http://127.0.0.1:5000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
