"""A real single-node Apache Kafka (KRaft) on loopback, from Maven Central jars, without Docker.

`python -m pipeline.kafka_io.broker up|down|status|run` is what `make kafka-up` / `kafka-down` call;
tests use `LocalBroker` as a context manager. Jars are resolved once by Maven into a cache
outside the work tree, so a second start needs no network.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.config.logs import setup_logging
from pipeline.config.settings import Settings
from pipeline.errors import BrokerError, PipelineError
from pipeline.kafka_io.admin import wait_for_broker
from pipeline.kafka_io.jars import KAFKA_VERSION, ensure_jars
from pipeline.kafka_io.processes import alive, free_port, java_executable, port_in_use, stop_pid
from pipeline.kafka_io.secure_broker import (
    BrokerSecurity,
    admin_client_config,
    java_argfile,
    scram_arguments,
    server_properties,
    write_private,
)

log = logging.getLogger(__name__)

# The heap Kafka's own kafka-server-start.sh gives a broker (-Xms1G -Xmx1G), touched at start.
# With 128 MB grown on demand to at most 512 MB, G1 kept a young generation of about 90 MB and
# collected it every 1.5 s at 1,000 events/s, pausing the broker 5-12 ms each time: those pauses
# were the bursts in every p99 at that load. With 1 GB from the start, about every 5 s, and the
# librdkafka p99 fell from 12.9 to 9.0 ms (floor 8.6 to 6.8; README, Performance). Pre-touching
# makes the first pass through the young generation as fast as the next ones, at a cost of
# seconds of start-up (the broker test: 8.9 s against 5.2 s). Kafka's own MaxGCPauseMillis=20
# made the pauses more frequent here, so it is left out.
BROKER_HEAP = "1g"

LOG4J_CONFIG = """rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka.server.KafkaRaftServer
logger.kafka.level=INFO
"""


def new_cluster_id() -> str:
    """Kafka's id format (url-safe base64 of 16 random bytes), never starting with '-': the
    storage tool would read such an id as an option (Kafka's own Uuid.randomUuid skips them too;
    one CI run in about 64 failed on it)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class LocalBroker:
    """One KRaft broker+controller process; `stop()` leaves no JVM behind.

    Without `security` it is PLAINTEXT with no authentication, what every local use needs; with
    it, SASL_SSL + SCRAM-SHA-512 and the StandardAuthorizer (see `secure_broker`).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        version: str = KAFKA_VERSION,
        heap: str = BROKER_HEAP,
        security: BrokerSecurity | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.controller_port = free_port()
        self.version = version
        self.heap = heap
        self.security = security
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def admin_security(self) -> dict[str, Any]:
        """kafka-python arguments for the admin (super user) principal; empty when PLAINTEXT."""
        return admin_client_config(self.security) if self.security else {}

    def _listeners(self) -> list[str]:
        if self.security is not None:
            return server_properties(self.security, self.port, self.controller_port)
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]

    def _write_config(self) -> Path:
        config = self.data_dir / "server.properties"
        write_private(  # with security, it holds the broker's own password
            config,
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    *self._listeners(),
                    f"log.dirs={self.data_dir / 'logs'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "",
                ]
            ),
        )
        (self.data_dir / "log4j2.properties").write_text(LOG4J_CONFIG)
        return config

    def _java(self, libs: Path, main: str, *args: str, server: bool = False) -> list[str]:
        return [
            java_executable(),
            *self._jvm_options(libs, server),
            main,
            *args,
        ]

    def _jvm_options(self, libs: Path, server: bool = False) -> list[str]:
        """`server`: the broker's own heap (see BROKER_HEAP); the one-shot tools get a small one."""
        heap = [f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+AlwaysPreTouch"]
        return [
            *(heap if server else ["-Xmx256m"]),
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
        ]

    def _format(self, libs: Path, config: Path) -> None:
        arguments = ["format", "-t", new_cluster_id(), "-c", str(config), "--standalone"]
        if self.security is None:
            command = self._java(libs, "kafka.tools.StorageTool", *arguments)
        else:  # SCRAM users carry passwords: the whole command line goes in an argument file
            argfile = self.data_dir / "format.args"
            arguments += scram_arguments(self.security)
            everything = [*self._jvm_options(libs), "kafka.tools.StorageTool", *arguments]
            command = [java_executable(), java_argfile(argfile, everything)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        finally:
            (self.data_dir / "format.args").unlink(missing_ok=True)
        if done.returncode != 0:
            output = done.stdout + done.stderr
            for secret in self.security.passwords() if self.security else []:
                output = output.replace(secret, "***")  # the tool may echo its arguments
            raise BrokerError(f"formatting KRaft storage failed:\n{output}")

    def start(
        self, timeout_s: float = 60.0, detach: bool = False, keep_data: bool = False
    ) -> LocalBroker:
        """A fresh cluster, or with `keep_data` the same one again (a restart keeps its logs)."""
        if port_in_use(self.port):
            raise BrokerError(
                f"port {self.port} is already in use; stop that process or pick another port"
            )
        libs = ensure_jars(self.version)
        config = self.data_dir / "server.properties"
        if not (keep_data and config.exists()):
            shutil.rmtree(self.data_dir / "logs", ignore_errors=True)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            config = self._write_config()
            self._format(libs, config)
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config), server=True),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detach,
            )
        try:
            self._await_ready(timeout_s)
        except BrokerError:
            self.stop()
            raise
        log.info(
            "Kafka %s is up at %s (pid %d)", self.version, self.bootstrap_servers, self.process.pid
        )
        return self

    def _await_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.process is not None and self.process.poll() is None:
            if port_in_use(self.port):
                wait_for_broker(
                    self.bootstrap_servers,
                    max(deadline - time.monotonic(), 1.0),
                    security=self.admin_security,
                )
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        tail = self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""
        raise BrokerError(f"Kafka did not become ready within {timeout_s:.0f}s:\n{tail}")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None:
            return
        stop_pid(self.process.pid, timeout_s)
        self.process.wait()
        self.process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[Settings]:
    """The configured broker when one is named, else a local one for the length of the block."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("PIPELINE_BOOTSTRAP_SERVERS"):
        log.info("using the Kafka broker at %s", settings.bootstrap_servers)
        yield settings
        return
    with LocalBroker(settings.home / "demo-kafka") as broker:
        log.info("started a local Kafka broker at %s", broker.bootstrap_servers)
        yield replace(settings, bootstrap_servers=broker.bootstrap_servers)


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.kafka_io.broker", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "run", "fetch"])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(".pipeline/kafka"),
        help="broker data folder (pid and log files live here too)",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PIPELINE_KAFKA_PORT", 9092))
    )
    args = parser.parse_args(argv)
    setup_logging()
    pid_file = args.dir / "broker.pid"
    try:
        if args.command == "fetch":
            print(ensure_jars())
        elif args.command == "up":
            if pid_file.exists() and alive(int(pid_file.read_text())):
                print(f"Kafka already running (pid {pid_file.read_text().strip()})")
                return 0
            broker = LocalBroker(args.dir, args.port).start(detach=True)
            assert broker.process is not None
            pid_file.write_text(str(broker.process.pid))
            print(
                f"Kafka is up: bootstrap servers {broker.bootstrap_servers}, log {broker.log_file}"
            )
        elif args.command == "down":
            if not pid_file.exists():
                print("no local Kafka running")
                return 0
            stop_pid(int(pid_file.read_text()))
            pid_file.unlink()
            print("Kafka stopped")
        elif args.command == "status":
            running = pid_file.exists() and alive(int(pid_file.read_text()))
            print("running" if running else "stopped")
            return 0 if running else 1
        else:
            with LocalBroker(args.dir, args.port) as broker:
                print(f"Kafka is up at {broker.bootstrap_servers}; Ctrl-C stops it", flush=True)
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
