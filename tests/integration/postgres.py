"""A throwaway PostgreSQL from the Debian package: initdb in a temporary folder, a free loopback
port, password authentication over TCP, stopped and deleted at the end.

PostgreSQL refuses to run as root; as root the server runs as the package's `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from pipeline.kafka_io.broker import free_port

USER = "mlflow"
DATABASE = "mlflow"


def find_binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb and postgres, or PATH's."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("postgres") else None


class LocalPostgres:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="pipeline-pg-"))
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen[bytes] | None = None
        self.run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")  # KeyError: no such user, said by the caller
            self.run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            os.chown(self.root, account.pw_uid, account.pw_gid)

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def sqlalchemy_uri(self) -> str:
        """What MLflow takes: SQLAlchemy's dialect with psycopg 3 as its driver."""
        return self.dsn().replace("postgresql://", "postgresql+psycopg://", 1)

    def start(self, timeout_s: float = 60.0) -> LocalPostgres:
        data = self.root / "data"
        secret = self.root / "password"
        secret.write_text(self.password)
        if self.run_as:
            os.chown(secret, self.run_as["user"], self.run_as["group"])
        initdb = [str(self.bin_dir / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8"]
        initdb += [f"--pwfile={secret}", "--auth-host=scram-sha-256", "--auth-local=trust"]
        initdb += ["--no-sync", "--no-instructions"]
        subprocess.run(initdb, check=True, capture_output=True, **self.run_as)
        server = [str(self.bin_dir / "postgres"), "-D", str(data), "-p", str(self.port)]
        server += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}"]
        server += ["-c", "fsync=off", "-c", "synchronous_commit=off"]  # a test's data, not a bank's
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                server,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.run_as,
            )
        self._await_ready(timeout_s)
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def _await_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not answer: {self.log_tail()}") from None
                time.sleep(0.2)

    def log_tail(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients cut off, clean stop), then the folder goes."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                pass
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
