"""Helpers for tests that run real processes: the `tipline` command, a wrapped `gpg`; and a
guard that fails a test rather than let it hang."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tipline.config import Settings

# How long a test waits for something that normally takes a second or two (a server to come
# up, a worker to pick a job) before failing instead of hanging. Generous on purpose: it only
# matters when something is wrong, and a loaded two-core machine can be slow.
PATIENCE = 300


def tipline_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `tipline` subprocess needs to use the same home and services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(
        TIPLINE_HOME=str(settings.home),
        TIPLINE_DATABASE_URL=settings.database_url,
        TIPLINE_GNUPG_HOME=str(settings.gnupg_home),
        **extra,
    )
    if settings.redis_url:
        env["TIPLINE_REDIS_URL"] = settings.redis_url
    return env


def run_tipline(
    *args: str, env: dict[str, str], timeout: float = PATIENCE
) -> subprocess.CompletedProcess[str]:
    """Run the real `tipline` command in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "tipline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A loopback port nothing listens on (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_worker(
    port: int, *, timeout: float = PATIENCE, certificate: Path | None = None
) -> dict[str, object]:
    """Wait until the server on ``port`` answers /healthz with a live job worker (over TLS,
    trusting ``certificate``, when one is given)."""
    deadline = time.monotonic() + timeout
    context = ssl.create_default_context(cafile=certificate) if certificate else None
    scheme = "https" if certificate else "http"
    while time.monotonic() < deadline:
        try:
            url = f"{scheme}://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=5, context=context) as answer:  # noqa: S310
                health: dict[str, object] = json.load(answer)
            workers = health.get("workers", 0)
            if isinstance(workers, int) and workers >= 1:
                return health
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not come up with a worker within {timeout:g} s")


def add_agency(
    env: dict[str, str], key_file: Path, *, name: str = "Example Crime Agency", country: str = "GB"
) -> dict[str, object]:
    """`tipline agency add --json`: the new agency's id and token."""
    added = run_tipline(
        "agency", "add", "--name", name, "--country", country, "--key-file", str(key_file),
        "--json", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    answer: dict[str, object] = json.loads(added.stdout)
    return answer


def self_signed_certificate(folder: Path, *, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway TLS certificate for ``address`` and its key, as PEM files: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(address))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "tls.crt", folder / "tls.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


class HangGuardTripped(AssertionError):
    """The guarded code ran past its allowance: a hang, reported as a failure."""


@contextlib.contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    """Fail (rather than hang the suite) if the block runs longer than ``seconds``. A generous
    bound against runaway work, not a timing assertion."""

    def trip(_signum: int, _frame: object) -> None:
        raise HangGuardTripped(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, trip)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def gpg_wrapper(
    folder: Path, *, exit_after_decrypt: int | None = None, exit_after_encrypt: int | None = None
) -> tuple[str, Path]:
    """A `gpg` that runs the real one, logging each call's arguments, and (for a decryption,
    an encryption) exits with ``exit_after_decrypt`` (``exit_after_encrypt``) instead of
    gpg's own status: to use as ``gpg_binary``.

    Returns:
        The wrapper's path and the log file's.
    """
    real = shutil.which("gpg")
    assert real is not None
    log = folder / "gpg-calls.log"
    wrapper = folder / "gpg"
    override = "".join(
        f'case " $* " in *" {option} "*) exit {status};; esac\n'
        for option, status in [("--decrypt", exit_after_decrypt), ("--encrypt", exit_after_encrypt)]
        if status is not None
    )
    wrapper.write_text(
        f'#!/bin/sh\necho "$*" >> "{log}"\n"{real}" "$@"\nstatus=$?\n{override}exit $status\n'
    )
    wrapper.chmod(0o700)
    return str(wrapper), log
