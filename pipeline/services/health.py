"""`/metrics`, `/healthz` and `/readyz` on `--metrics-port`, for Prometheus and Kubernetes.

- `/healthz`: the scoring loop went round within the last `STALL_S` seconds (a liveness
  probe: a loop stuck for that long is worth a restart).
- `/readyz`: a model is loaded and checked, partitions are assigned, and a golden event scores
  now with the model in service (a readiness probe: traffic can be given to this instance).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

STALL_S = 30.0


class HealthState:
    """Written by the scoring loop, read by the HTTP thread: plain attribute reads and writes."""

    def __init__(
        self, golden_check: Callable[[], None] | None = None, needs_partitions: bool = True
    ) -> None:
        self.last_loop = 0.0
        self.model_checked = False
        self.partitions: frozenset[int] = frozenset()
        self.golden_check = golden_check
        # A Trainer is ready without partitions (a second instance waits as a standby).
        self.needs_partitions = needs_partitions
        # Set while a long step runs on the loop's thread (a training): alive, just busy.
        self.busy: str | None = None

    def beat(self) -> None:
        self.last_loop = time.monotonic()

    def live(self) -> tuple[bool, str]:
        idle = time.monotonic() - self.last_loop
        if self.busy is not None:
            return True, f"{self.busy} (loop last went round {idle:.0f}s ago)"
        if self.last_loop and idle <= STALL_S:
            return True, f"loop went round {idle:.1f}s ago"
        return (
            False,
            "the loop has not gone round" if not self.last_loop else f"stalled {idle:.0f}s",
        )

    def ready(self) -> tuple[bool, str]:
        if not self.model_checked:
            return False, "no checked model yet"
        if self.needs_partitions and not self.partitions:
            return False, "no partitions assigned"
        if self.golden_check is not None:
            try:
                self.golden_check()
            except Exception as exc:  # any failure on known rows means not ready
                return False, f"the golden event does not score: {exc}"
        if not self.needs_partitions:
            return True, f"running; partitions {sorted(self.partitions)}"
        return True, f"serving partitions {sorted(self.partitions)}"


def _handler(state: HealthState, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok, why = state.live() if path == "/healthz" else state.ready()
                self._send(200 if ok else 503, f"{'ok' if ok else 'not ok'}: {why}\n".encode())
            else:
                self._send(404, b"not found: /metrics, /healthz, /readyz\n")

        def _send(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes every few seconds
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


class HealthServer:
    """A small threaded HTTP server; port 0 in settings means no server at all."""

    def __init__(self, port: int, state: HealthState, registry: CollectorRegistry) -> None:
        self.server = ThreadingHTTPServer(("0.0.0.0", port), _handler(state, registry))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="health-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        log.info("metrics and health on http://0.0.0.0:%d (/metrics /healthz /readyz)", self.port)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_health(port: int, state: HealthState, registry: CollectorRegistry) -> HealthServer | None:
    """The server a service runs on `--metrics-port`, started; None when the port is 0."""
    if not port:
        return None
    try:
        server = HealthServer(port, state, registry)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: {exc}") from exc
    return server.start()
