"""The broker's process plumbing: free ports, the Java executable, stopping a pid for good.

Kept apart from `broker.py` so the broker module is about the broker's configuration and life
cycle; the chaos tools and tests use these helpers too.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from pipeline.errors import BrokerError

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home, "bin", "java") if home else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise BrokerError(
            "Java 17+ is needed to run the local Kafka broker (or use Docker / "
            "KAFKA_BOOTSTRAP_SERVERS)"
        )
    return found


def stop_pid(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM lets Kafka close its logs cleanly; SIGKILL only if it will not go."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    log.warning("Kafka (pid %d) ignored SIGTERM for %.0fs; killing it", pid, timeout_s)
    os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")
