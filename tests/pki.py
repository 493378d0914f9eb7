"""A throwaway certificate authority and broker certificate for the tests (openssl).

The broker's certificate names 127.0.0.1 and localhost in its subjectAltName, so clients can
keep hostname verification on; the keystore is the PEM form Kafka 4 reads directly.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1"


@dataclass(frozen=True)
class TestPki:
    cafile: Path  # the CA certificate clients and the broker trust
    keystore: Path  # the broker's private key + certificate chain, PEM
    untrusted_cafile: Path  # another CA, which signed nothing the broker presents


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr}")


def _ca(folder: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def make_pki(folder: Path, san: str = SAN) -> TestPki:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    folder.mkdir(parents=True, exist_ok=True)
    _ca(folder, "test-ca")
    _ca(folder, "other-ca")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", "/CN=pipeline-test-broker",
        cwd=folder,
    )  # fmt: skip
    (folder / "broker.ext").write_text(
        f"{san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "test-ca.pem", "-CAkey", "test-ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "broker.ext", "-out", "broker.crt",
        cwd=folder,
    )  # fmt: skip
    keystore = folder / "broker-keystore.pem"
    keystore.write_text(
        (folder / "broker.key").read_text()
        + (folder / "broker.crt").read_text()
        + (folder / "test-ca.pem").read_text()
    )
    return TestPki(folder / "test-ca.pem", keystore, folder / "other-ca.pem")
