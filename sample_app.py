"""Play an upstream service: stream adult.test rows as events, read predictions, report."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from pipeline.data import load_adult
from pipeline.errors import PipelineError
from pipeline.logs import setup_logging
from pipeline.sample_stream import SampleApp, event_rows
from pipeline.settings import parse_settings

log = logging.getLogger("sample_app")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings("sample_app", __doc__ or "", argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    setup_logging(settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        rows = event_rows(
            load_adult(settings.data_dir, allow_download=settings.allow_download).test
        )
        summary = SampleApp(settings, rows, progress=lambda line: print(line, flush=True)).run(stop)
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    print(json.dumps(summary))
    return 0 if summary["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
