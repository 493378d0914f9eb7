"""Why a Kafka client could not start: one blocking TLS handshake and SASL login, for the message.

kafka-python 3.0.12 retries a refused SASL login until its bootstrap timeout and then reports
only "Unable to bootstrap". The broker sends its error response and closes the connection
straight after; the client's non-blocking reader often gets both in one read and drops the data
along with the close (`kafka/net/transport.py`, `_sock_recv`), so the reason is lost. A blocking
socket reads the response before it sees the close. After such a timeout, `login_failure` logs
in once the same way and returns what the broker said (or what TLS said), never the password.
"""

from __future__ import annotations

import itertools
import socket
import ssl
import struct
from collections.abc import Mapping
from typing import Any

from kafka.errors import for_code
from kafka.net.sasl import get_sasl_mechanism
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

from pipeline.kafka_io.security import SASL_PROTOCOLS, TLS_PROTOCOLS

HANDSHAKE_VERSION = 1  # v1: the SASL tokens travel in SaslAuthenticate requests
AUTHENTICATE_VERSION = 1  # the last version before flexible encoding; enough for SCRAM/PLAIN


class _Failed(Exception):
    """The login was refused; the message is the reason."""


def login_failure(
    bootstrap_servers: str, config: Mapping[str, Any], timeout_s: float = 5.0
) -> str | None:
    """What stops these client arguments at the first bootstrap server, or None if nothing
    does (or the broker is not there at all: that is not a login problem)."""
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    host = host.strip("[]")
    try:
        raw = socket.create_connection((host, int(port)), timeout=timeout_s)
    except (OSError, ValueError):
        return None
    with raw:
        sock: socket.socket = raw
        try:
            if config.get("security_protocol") in TLS_PROTOCOLS:
                sock = _tls(raw, host, config)
            if config.get("security_protocol") in SASL_PROTOCOLS:
                _sasl(sock, host, config)
        except ssl.SSLCertVerificationError as exc:
            return f"TLS certificate of {host}:{port} not accepted: {exc.verify_message}"
        except ssl.SSLError as exc:
            return f"TLS handshake with {host}:{port} failed: {exc.reason or exc}"
        except _Failed as exc:
            return str(exc)
        except (OSError, ValueError, struct.error):
            return None  # the broker went away mid-login: nothing certain to report
    return None


def _tls(sock: socket.socket, host: str, config: Mapping[str, Any]) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # as kafka-python builds it
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = bool(config.get("ssl_check_hostname", True))
    if config.get("ssl_cafile"):
        context.load_verify_locations(config["ssl_cafile"])
    else:
        context.load_default_certs()
    return context.wrap_socket(sock, server_hostname=host)


def _sasl(sock: socket.socket, host: str, config: Mapping[str, Any]) -> None:
    mechanism_name = config.get("sasl_mechanism") or "PLAIN"
    user = config.get("sasl_plain_username", "")
    ids = itertools.count(1)
    handshake = _exchange(
        sock,
        SaslHandshakeRequest(mechanism=mechanism_name),
        SaslHandshakeResponse,
        HANDSHAKE_VERSION,
        next(ids),
    )
    if handshake.error_code:
        raise _Failed(
            f"the broker does not accept SASL mechanism {mechanism_name} "
            f"(it offers {', '.join(handshake.mechanisms) or 'none'})"
        )
    mechanism = get_sasl_mechanism(mechanism_name)(host=host, **config)
    while not mechanism.is_done():
        response = _exchange(
            sock,
            SaslAuthenticateRequest(auth_bytes=mechanism.auth_bytes()),
            SaslAuthenticateResponse,
            AUTHENTICATE_VERSION,
            next(ids),
        )
        if response.error_code:
            reason = response.error_message or for_code(response.error_code).__name__
            raise _Failed(f"user {user!r} was refused by the broker: {reason}")
        mechanism.receive(response.auth_bytes)


def _exchange(
    sock: socket.socket, request: Any, response_class: Any, version: int, correlation_id: int
) -> Any:
    request.with_header(correlation_id=correlation_id, client_id="pipeline-login-probe")
    sock.sendall(request.encode(version=version, header=True, framed=True))
    size = struct.unpack(">i", _read(sock, 4))[0]
    return response_class.decode(_read(sock, size), version=version, header=True)


def _read(sock: socket.socket, count: int) -> bytes:
    chunks, left = [], count
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise OSError("connection closed during the login")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
