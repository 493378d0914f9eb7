"""Apache Kafka's jars from Maven Central, resolved once into a cache outside the work tree.

Maven does the resolving (the broker's runtime dependencies are its business, not ours); a
second start finds the `.complete` marker and needs no network.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from pipeline.errors import BrokerError

log = logging.getLogger(__name__)

KAFKA_VERSION = os.environ.get("PIPELINE_KAFKA_VERSION", "4.1.1")
LOG4J_VERSION = "2.24.3"

POM_TEMPLATE = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.pipeline</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def default_cache_dir() -> Path:
    configured = os.environ.get("PIPELINE_KAFKA_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kafka-ml-pipeline"


def ensure_jars(version: str = KAFKA_VERSION, cache_dir: Path | None = None) -> Path:
    """Resolve Kafka and its runtime dependencies with Maven, once; returns the jar folder."""
    root = (cache_dir or default_cache_dir()) / f"kafka-{version}"
    libs = root / "libs"
    marker = root / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed once to fetch Kafka's jars; install it or set "
            "KAFKA_BOOTSTRAP_SERVERS to an existing broker"
        )
    root.mkdir(parents=True, exist_ok=True)
    pom = root / "pom.xml"
    pom.write_text(POM_TEMPLATE.format(kafka=version, log4j=LOG4J_VERSION))
    log.info("fetching Apache Kafka %s jars with Maven into %s", version, libs)
    staging = root / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerError(
            f"Maven could not fetch Kafka {version}:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.touch()
    return libs
