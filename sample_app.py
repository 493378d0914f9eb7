"""Play an upstream service: stream the spec's test rows as events, read predictions, report."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence

from pipeline.config.settings import Settings
from pipeline.core.data import load_data
from pipeline.services.entry import run_entry
from pipeline.tools.sample_stream import SampleApp, event_rows


def stream(settings: Settings, stop: threading.Event) -> int:
    spec = settings.pipeline_spec
    data = load_data(spec, settings.data_folder, allow_download=settings.allow_download)
    rows = event_rows(data.test, spec.schema)
    summary = SampleApp(settings, rows, progress=lambda line: print(line, flush=True)).run(stop)
    print(json.dumps(summary))
    return 0 if summary["missing"] == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run_entry("sample_app", __doc__ or "", argv, stream)


if __name__ == "__main__":
    sys.exit(main())
