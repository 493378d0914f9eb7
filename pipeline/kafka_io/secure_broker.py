"""SASL_SSL, SCRAM-SHA-512 and ACLs for the local broker: the server side of Kafka security.

Why a module of its own: the plain broker (`broker.py`) stays what every existing use needs,
and everything that turns it into an authenticated, authorizing broker lives here, spelled once.

- Clients connect over TLS (a PEM keystore made by whoever starts the broker, e.g. a test's
  throwaway CA) and authenticate with SCRAM-SHA-512; the credentials are written into the KRaft
  metadata at format time (`StorageTool format --add-scram`), so they exist before the first
  connection.
- The `StandardAuthorizer` denies whatever no ACL allows (`allow.everyone.if.no.acl.found` is
  false). The only super user is the broker's own principal (`admin_user`), which it also uses
  to talk to itself over the SASL_SSL listener and to its controller.
- The controller listener stays on loopback without TLS, but it is SASL_PLAINTEXT with PLAIN and
  a single user, the broker itself: a PLAINTEXT controller listener would make `User:ANONYMOUS`
  the principal the broker registers with, which would have to be a super user, and then any
  local process could create ACLs through that port (admin clients may talk to controllers).
- Passwords reach the JVM through files readable only by their owner, never a command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.config.settings import Settings
from pipeline.errors import BrokerError

SCRAM_MECHANISM = "SCRAM-SHA-512"
CLIENT_LISTENER = "SASL_SSL"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# User names and passwords go inside JAAS strings and the storage tool's `[name=..,password=..]`.
_SAFE = re.compile(r"^[A-Za-z0-9_.@+-]+$")


@dataclass(frozen=True)
class BrokerSecurity:
    """What a secure LocalBroker needs: its TLS identity, the CA, and the SCRAM users to create.

    `keystore` is one PEM file holding the broker's unencrypted PKCS#8 private key and its
    certificate chain (`ssl.keystore.type=PEM`); its certificate must name the host clients dial
    (127.0.0.1 and localhost) because clients verify host names. `cafile` is the PEM CA that
    signed it: the broker trusts it when it connects to itself, clients get it as
    `--kafka-ssl-cafile`.
    """

    keystore: Path
    cafile: Path
    admin_password: str = field(repr=False)
    admin_user: str = "admin"
    users: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name, password in {self.admin_user: self.admin_password, **self.users}.items():
            if not (_SAFE.match(name) and _SAFE.match(password)):
                raise BrokerError(
                    f"SCRAM user {name!r}: names and passwords may only use letters, digits "
                    "and _.@+- (they are written into JAAS and storage-tool strings)"
                )

    def passwords(self) -> list[str]:
        return [self.admin_password, *self.users.values()]

    @property
    def principal(self) -> str:
        return f"User:{self.admin_user}"


def server_properties(security: BrokerSecurity, port: int, controller_port: int) -> list[str]:
    """The listener, TLS, SASL and authorizer lines of server.properties."""
    admin, password = security.admin_user, security.admin_password
    scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain_login = "org.apache.kafka.common.security.plain.PlainLoginModule"
    return [
        f"listeners={CLIENT_LISTENER}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners={CLIENT_LISTENER}://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        f"listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,{CLIENT_LISTENER}:SASL_SSL",
        f"inter.broker.listener.name={CLIENT_LISTENER}",
        f"listener.name.sasl_ssl.sasl.enabled.mechanisms={SCRAM_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
        f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={scram_login} "
        f'required username="{admin}" password="{password}";',
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.controller.protocol=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={plain_login} required "
        f'username="{admin}" password="{password}" user_{admin}="{password}";',
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={Path(security.keystore).resolve()}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={Path(security.cafile).resolve()}",
        "ssl.client.auth=none",
        "ssl.endpoint.identification.algorithm=https",
        f"authorizer.class.name={STANDARD_AUTHORIZER}",
        "allow.everyone.if.no.acl.found=false",
        f"super.users={security.principal}",
    ]


def scram_arguments(security: BrokerSecurity) -> list[str]:
    """`--add-scram` arguments for `StorageTool format`, one per user (the admin included)."""
    users = {security.admin_user: security.admin_password, **security.users}
    arguments: list[str] = []
    for name, password in users.items():
        arguments += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
    return arguments


def admin_client_config(security: BrokerSecurity) -> dict[str, Any]:
    """kafka-python arguments for the admin principal (the broker's own super user)."""
    return {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": SCRAM_MECHANISM,
        "sasl_plain_username": security.admin_user,
        "sasl_plain_password": security.admin_password,
        "ssl_cafile": str(security.cafile),
        "ssl_check_hostname": True,
    }


def write_private(path: Path, text: str) -> Path:
    """A file only its owner can read: server.properties and argument files hold passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return path


def java_argfile(path: Path, arguments: list[str]) -> str:
    """A `java @file` argument: the launcher reads the rest of the command line from the file,
    so passwords among the arguments never show in the process list."""
    quoted = ['"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in arguments]
    write_private(path, "\n".join(quoted) + "\n")
    return f"@{path}"


def client_settings(
    settings: Settings, cafile: Path, username: str, password: str, **overrides: Any
) -> Settings:
    """`settings` for one principal on a secure broker: SASL_SSL + SCRAM-SHA-512, CA pinned."""
    return replace(
        settings,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=SCRAM_MECHANISM,
        kafka_sasl_username=username,
        kafka_sasl_password=password,
        kafka_ssl_cafile=str(cafile),
        **overrides,
    )
