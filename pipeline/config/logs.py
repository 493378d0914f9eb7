"""Process-wide logging setup, called once by each entry script."""

import logging
import os

QUIET_LIBRARIES = ("kafka", "librdkafka", "mlflow", "alembic", "hyperopt", "urllib3", "git", "py4j")


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
