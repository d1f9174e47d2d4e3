"""The centre's OpenPGP keyring: intake key, pinned partner keys, encrypt/sign/decrypt.

Every python-gnupg call is made here and every result is checked here; callers get plain
values or a :class:`~crypto.errors.CryptoError` subclass, never a python-gnupg result object.

Cost stays flat as the keyring grows: keys are always named by full fingerprint (an indexed
lookup), the web of trust is never consulted (``--trust-model always``: partners are pinned by
fingerprint in our database instead) and the trust database is never rebuilt on a call
(``--no-auto-check-trustdb``). Nothing here lists the keyring on a hot path.

Intake key protection at rest (measured in ``bench/README.md``): the key is protected by a
random, high-entropy passphrase kept in a 0600 file *outside* the GnuPG home (see
:mod:`crypto.passphrase`), so a copy of the GnuPG home alone (backup, stolen disk image of
that directory) does not yield the key. GnuPG 2.2's agent re-runs the passphrase KDF on every
use even when the passphrase is cached (0.2-0.35 s per decrypt on a 2-core host with the default
calibrated count), so caching does not help; instead the agent protects keys with the minimum
S2K count (65536), which costs ~nothing and loses nothing because stretching a 256-bit random
secret adds no strength. Every process (web, workers) passes the passphrase on each call, and
the agent's passphrase cache is disabled, so a process that cannot read the secrets file
cannot use the key through a shared agent either.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import gnupg  # type: ignore[import-untyped,unused-ignore]

from crypto.errors import (
    DecryptError,
    EncryptError,
    FingerprintMismatch,
    GnuPGError,
    KeyExpired,
    KeyGenerationError,
    KeyNotFound,
    KeyNotUsable,
    KeyRevoked,
    MalformedKey,
    MalformedMessage,
    NotEncryptedToUs,
    PlaintextTooLarge,
    SecretKeyLocked,
    SecretKeyRefused,
    SignError,
)
from crypto.packets import MAX_SESSION_KEY_PACKETS, read_encrypted_file, read_encrypted_message

# python-gnupg logs key data, stderr lines and user ids at DEBUG. It is a library logger, so
# pinning its level here is acceptable and protects every application that imports crypto/,
# whatever root level it configures. Its WARNING lines carry status codes only.
logging.getLogger("gnupg").setLevel(logging.WARNING)

_FINGERPRINT = re.compile(r"[0-9A-F]{40}")
_EMAIL = re.compile(r"[^@\s<>()\"]+@[^@\s<>()\"]+")
_STATUS_PREFIX = "[GNUPG:] "

# Options on every gpg call. See the module docstring for why.
_GPG_OPTIONS = (
    "--trust-model",
    "always",
    "--no-auto-check-trustdb",
    "--no-auto-key-retrieve",
    # Never ask a pinentry: with no passphrase given a locked key fails at once.
    "--pinentry-mode",
    "loopback",
    # A symmetric message must not leave a passphrase in the agent's cache.
    "--no-symkey-cache",
)

_AGENT_CONF = """\
# Written by crypto.keyring.Keyring; rewritten if changed. See that module's docstring.
# Minimum S2K count: the intake passphrase is a 256-bit random secret, stretching adds nothing
# and would cost ~0.3 s on every decrypt (the agent re-derives even with a cached passphrase).
s2k-count 65536
# Every caller passes the passphrase; never keep it in the agent: an entry lives until the
# agent's clock next ticks a second.
default-cache-ttl 0
# Only the agent's own nonce entries outlive that: while generating a key, gpg signs it with
# the passphrase the agent keeps under an unguessable nonce for 120 s. With 0 here that entry
# expired whenever generation straddled a second, and `tipline init` failed ("can't get
# input") on a loaded machine: 3 generations in 36 did, 12 at a time.
max-cache-ttl 120
allow-loopback-pinentry
"""

# RSA, RSA-E, RSA-S, Elgamal, DSA: weak below this many bits.
_FINITE_FIELD_ALGOS = {"1", "2", "3", "16", "17", "20"}
_MIN_FINITE_FIELD_BITS = 2048
_MAX_KEY_BYTES = 1024 * 1024


class SignatureStatus(enum.StrEnum):
    """Outcome of checking the signature on a message."""

    VALID = "valid"
    UNSIGNED = "unsigned"
    UNKNOWN_SIGNER = "unknown signer"
    BAD = "bad signature"
    SIGNER_KEY_EXPIRED = "signer key expired"
    SIGNER_KEY_REVOKED = "signer key revoked"
    SIGNATURE_EXPIRED = "signature expired"
    MULTIPLE_SIGNATURES = "more than one signature"
    ERROR = "signature could not be checked"


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """A partner's public key as pinned: what was checked, and ``armored``, the copy of the
    key (one armored public key, no third-party signatures) that hosts import from."""

    fingerprint: str
    user_ids: tuple[str, ...]
    created: datetime
    expires: datetime | None
    armored: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Verification:
    """Result of a signature check.

    ``signer_fingerprint`` is the *primary* key fingerprint of the signer (also when a signing
    subkey made the signature) and is set only when ``signature_valid`` is true. Deciding
    whether that signer is acceptable is the caller's job: compare it to the fingerprint
    pinned for the sending agency.
    """

    signer_fingerprint: str | None
    signature_valid: bool
    signature_status: SignatureStatus


@dataclass(frozen=True, slots=True)
class DecryptedMessage:
    """A decrypted message and what is known about its signature and recipients.

    ``plaintext`` is excluded from ``repr`` so it cannot slip into a log line.
    ``encrypted_to`` holds the long key ids (of encryption subkeys) the message *claims* as
    recipients; ``decrypted_with`` is the primary fingerprint of the key that really
    decrypted it (GnuPG's ``DECRYPTION_KEY``): judge the message by that one.
    """

    plaintext: bytes = field(repr=False)
    signer_fingerprint: str | None
    signature_valid: bool
    signature_status: SignatureStatus
    encrypted_to: tuple[str, ...]
    decrypted_with: str


def normalise_fingerprint(fingerprint: str) -> str:
    """Return ``fingerprint`` as 40 upper-case hex digits, spaces removed.

    Raises:
        ValueError: if it is not a full v4 fingerprint (short ids are refused: ambiguous).
    """
    candidate = fingerprint.replace(" ", "").upper()
    if not _FINGERPRINT.fullmatch(candidate):
        raise ValueError("expected a full 40-hex-digit OpenPGP fingerprint")
    return candidate


def _statuses(stderr: str) -> list[tuple[str, str]]:
    """The ``[GNUPG:]`` status lines of a gpg run, as (keyword, value) pairs."""
    pairs = []
    for line in stderr.splitlines():
        if line.startswith(_STATUS_PREFIX):
            keyword, _, value = line[len(_STATUS_PREFIX) :].partition(" ")
            pairs.append((keyword, value.strip()))
    return pairs


def _signature_outcome(statuses: list[tuple[str, str]]) -> Verification:
    keywords = [keyword for keyword, _ in statuses]
    signatures = keywords.count("NEWSIG")
    if signatures == 0 and not {"GOODSIG", "BADSIG", "ERRSIG"} & set(keywords):
        return Verification(None, False, SignatureStatus.UNSIGNED)
    if signatures > 1:
        return Verification(None, False, SignatureStatus.MULTIPLE_SIGNATURES)
    found = dict(statuses)
    if "REVKEYSIG" in found:
        status = SignatureStatus.SIGNER_KEY_REVOKED
    elif "EXPKEYSIG" in found:
        status = SignatureStatus.SIGNER_KEY_EXPIRED
    elif "EXPSIG" in found:
        status = SignatureStatus.SIGNATURE_EXPIRED
    elif "BADSIG" in found:
        status = SignatureStatus.BAD
    elif "NO_PUBKEY" in found or ("ERRSIG" in found and found["ERRSIG"].split()[5:6] == ["9"]):
        status = SignatureStatus.UNKNOWN_SIGNER
    elif "GOODSIG" in found and "VALIDSIG" in found:
        parts = found["VALIDSIG"].split()
        # Field 10 is the primary key's fingerprint; field 1 that of the (sub)key that signed.
        primary = parts[9] if len(parts) >= 10 else parts[0]
        return Verification(primary, True, SignatureStatus.VALID)
    else:
        status = SignatureStatus.ERROR
    return Verification(None, False, status)


def _to_datetime(timestamp: str) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), tz=UTC) if timestamp.isdigit() else None


def _partner_key_pin(keys: Sequence[dict[str, Any]]) -> PartnerKey:
    """Check what ``scan_keys`` found: exactly one usable public key. ``armored`` is left
    empty for the caller to fill in."""
    if any(key.get("type") == "sec" for key in keys):
        raise SecretKeyRefused(
            "this is a secret (private) key; send the public key only, and consider this "
            "secret key compromised"
        )
    if len(keys) == 0:
        raise MalformedKey("no OpenPGP public key found in the data")
    if len(keys) > 1:
        raise MalformedKey(f"the data holds {len(keys)} keys; send exactly one")
    key = keys[0]
    fingerprint = str(key.get("fingerprint") or "").upper()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise MalformedKey("only OpenPGP v4 keys with a full fingerprint are accepted")
    validity = key.get("trust", "")
    if validity == "r":
        raise KeyRevoked(f"key {fingerprint} has been revoked by its owner")
    if validity == "e":
        raise KeyExpired(f"key {fingerprint} has expired")
    if validity in {"i", "n", "d"}:
        raise KeyNotUsable(f"key {fingerprint} is invalid or disabled")
    capabilities = str(key.get("cap", ""))
    # Upper-case letters on the primary record are the key's *usable* capabilities, taking
    # expired and revoked subkeys into account.
    if "E" not in capabilities:
        raise KeyNotUsable(
            f"key {fingerprint} has no usable encryption subkey (needed to send feedback)"
        )
    if "S" not in capabilities:
        raise KeyNotUsable(f"key {fingerprint} has no usable signing key (needed to sign tips)")
    parts = [key, *key.get("subkey_info", {}).values()]
    for part in parts:
        if part.get("algo") in _FINITE_FIELD_ALGOS and int(part.get("length") or 0) < (
            _MIN_FINITE_FIELD_BITS
        ):
            raise KeyNotUsable(
                f"key {fingerprint} uses RSA/DSA/Elgamal below {_MIN_FINITE_FIELD_BITS} bits"
            )
    user_ids = tuple(str(uid) for uid in key.get("uids", []))
    if not user_ids:
        raise MalformedKey(f"key {fingerprint} has no user id")
    created = _to_datetime(str(key.get("date", "")))
    if created is None:
        raise MalformedKey(f"key {fingerprint} has no creation date")
    return PartnerKey(
        fingerprint=fingerprint,
        user_ids=user_ids,
        created=created,
        expires=_to_datetime(str(key.get("expires", ""))),
        armored="",
    )


def _gpgconf_binary(gpg_binary: str) -> str:
    sibling = Path(gpg_binary).with_name("gpgconf")
    if os.sep in gpg_binary and sibling.exists():
        return str(sibling)
    return shutil.which("gpgconf") or "gpgconf"


# The gpg processes started by the calls running in each thread (see _StoppableGPG).
_STARTED = threading.local()


class _StoppableGPG(gnupg.GPG):  # type: ignore[misc,unused-ignore]
    """python-gnupg's GPG, whose calls can stop the gpg processes they started when they are
    interrupted: a worker's job past its time limit is stopped by an exception raised in it,
    and python-gnupg would leave its gpg running on (for hours, given a hostile message)."""

    def _open_subprocess(self, *args: Any, **kwargs: Any) -> Any:
        process = super()._open_subprocess(*args, **kwargs)
        started = getattr(_STARTED, "processes", None)
        if started is not None:
            started.append(process)
        return process


@contextlib.contextmanager
def _stopping_gpg_if_interrupted() -> Iterator[None]:
    """Kill the gpg processes the block started if it ends by an exception: what they would
    produce is then read by no one."""
    outer = getattr(_STARTED, "processes", None)
    started: list[subprocess.Popen[bytes]] = []
    _STARTED.processes = started
    try:
        yield
    except BaseException:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait()
            _close_pipes(process)
        raise
    finally:
        _STARTED.processes = outer


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    """Close a killed gpg's pipes as python-gnupg would have, once its reader threads (which
    read them to their end, now that gpg is gone) have stopped reading."""
    pipes = [pipe for pipe in (process.stdout, process.stderr) if pipe is not None]
    for thread in threading.enumerate():
        # python-gnupg's readers take the pipe (stderr wrapped in a codecs reader) first.
        stream = next(iter(getattr(thread, "_args", ()) or ()), None)
        if any(stream is pipe or getattr(stream, "stream", None) is pipe for pipe in pipes):
            thread.join(PATIENT_SECONDS)
    for pipe in (process.stdin, *pipes):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


class Keyring:
    """OpenPGP operations over one GnuPG home (the centre's keyring).

    Several processes (web, workers) may open the same home at once; they share one
    gpg-agent, which GnuPG starts on demand. Keep the home path short: the agent's socket path
    is limited to ~100 characters (GnuPG moves it under ``/run/user`` when that exists).

    Args:
        gnupg_home: the GnuPG home; created with mode 0700 if missing.
        gpg_binary: the ``gpg`` executable (``gpgconf`` is looked up next to it).
        passphrase: the intake key's passphrase (read it with
            :func:`crypto.passphrase.read_passphrase_file`); ``None`` for an unprotected key or
            a keyring that only encrypts and verifies.
        max_plaintext_bytes: decrypted content above this size is refused, which bounds memory
            use against compression bombs (python-gnupg holds the whole output in memory).
        max_session_keys: a message with more session-key packets than this is refused
            before GnuPG sees it (see :mod:`crypto.packets`).
    """

    def __init__(
        self,
        gnupg_home: Path,
        *,
        gpg_binary: str = "gpg",
        passphrase: str | None = None,
        max_plaintext_bytes: int = 256 * 1024 * 1024,
        max_session_keys: int = MAX_SESSION_KEY_PACKETS,
    ) -> None:
        if passphrase is not None and (
            not passphrase
            or passphrase != passphrase.strip()
            or any(c in passphrase for c in "\r\n\0")
        ):
            raise ValueError("passphrase must be non-empty, one line, without outer whitespace")
        if max_plaintext_bytes <= 0:
            raise ValueError("max_plaintext_bytes must be positive")
        if max_session_keys <= 0:
            raise ValueError("max_session_keys must be positive")
        self._max_session_keys = max_session_keys
        self.home = Path(gnupg_home)
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask and ignored for an existing directory.
        os.chmod(self.home, 0o700)
        self._gpgconf = _gpgconf_binary(gpg_binary)
        self._write_agent_conf()
        self._passphrase = passphrase
        self._max_plaintext_bytes = max_plaintext_bytes
        self._gpg = self._open(self.home, gpg_binary)
        self._gpg_binary = gpg_binary
        self._recipient_ids: dict[str, frozenset[str]] = {}
        # Public keys known to be in this keyring (see make_available).
        self._present: set[str] = set()

    @staticmethod
    def _open(home: Path, gpg_binary: str, options: Sequence[str] = _GPG_OPTIONS) -> Any:
        # Messages in English whatever the host locale: PlaintextTooLarge is detected from one.
        env = dict(os.environ, LANGUAGE="C", LC_ALL="C")
        gpg = _StoppableGPG(
            gpgbinary=gpg_binary,
            gnupghome=str(home),
            options=list(options),
            env=env,
        )
        gpg.encoding = "utf-8"
        return gpg

    def _write_agent_conf(self) -> None:
        conf = self.home / "gpg-agent.conf"
        if conf.exists() and conf.read_text(encoding="utf-8") == _AGENT_CONF:
            return
        conf.write_text(_AGENT_CONF, encoding="utf-8")
        # A running agent keeps its old settings; it restarts on demand with the new ones.
        self._kill_agent(self.home)

    def _kill_agent(self, home: Path) -> None:
        subprocess.run(  # noqa: S603 - fixed argv, no shell; gpgconf path from config or PATH
            [self._gpgconf, "--homedir", str(home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )

    def close(self) -> None:
        """Stop this home's gpg-agent. Safe while others use the home: it restarts on demand."""
        self._kill_agent(self.home)

    def __enter__(self) -> Keyring:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Keyring(home={str(self.home)!r})"

    # -- intake key ---------------------------------------------------------------------------

    def generate_intake_key(self, *, name: str, email: str) -> str:
        """Create the centre's intake key and return its full fingerprint.

        An ed25519 primary key (sign, certify) with a cv25519 encryption subkey, no expiry,
        user id ``name <email>`` exactly as given (never the machine's host name). Protected
        by this keyring's passphrase, or unprotected when it has none.

        Raises:
            ValueError: ``name`` or ``email`` is empty or could break the parameter block.
            KeyGenerationError: GnuPG did not create the key.
        """
        return self._generate_key(name=name, email=email, encryption_subkey=True)

    def generate_encryption_key(self, *, name: str, email: str) -> str:
        """Create another key of the centre that messages are encrypted to (the portal's, say),
        made as the intake key is, and return its full fingerprint.

        Raises:
            ValueError: ``name`` or ``email`` is empty or could break the parameter block.
            KeyGenerationError: GnuPG did not create the key.
        """
        return self._generate_key(name=name, email=email, encryption_subkey=True)

    def generate_signing_key(self, *, name: str, email: str) -> str:
        """Create a sign-only key of the centre (ed25519, no subkey, no expiry) and return its
        full fingerprint: nothing can be encrypted to it, so it unlocks no content.

        Protected by this keyring's passphrase, or unprotected when it has none; the user id
        is ``name <email>`` exactly as given.

        Raises:
            ValueError: ``name`` or ``email`` is empty or could break the parameter block.
            KeyGenerationError: GnuPG did not create the key.
        """
        return self._generate_key(
            name=name,
            email=email,
            # None for False is the same to _generate_key, which only tests it.
            encryption_subkey=False,  # pragma: no mutate
        )

    def _generate_key(self, *, name: str, email: str, encryption_subkey: bool) -> str:
        name, email = name.strip(), email.strip()
        if not (0 < len(name) <= 200 and name.isprintable()) or any(c in name for c in '<>()"'):
            raise ValueError('name must be 1-200 printable characters without <>()"')
        if len(email) > 254 or not _EMAIL.fullmatch(email):
            raise ValueError("email must be a single address like intake@example.org")
        protection = (
            f"Passphrase: {self._passphrase}"
            if self._passphrase
            else "%no-protection"  # pragma: no mutate (gpg reads it in any case)
        )
        # Written by hand rather than with gen_key_input(), which fills Name-Email with
        # user@hostname when it is missing and only knows RSA defaults. gpg reads these
        # parameters in any case: marked no-mutate, as a change of case is no change.
        parameters = "\n".join(
            [
                "Key-Type: EDDSA",  # pragma: no mutate
                "Key-Curve: ed25519",  # pragma: no mutate
                "Key-Usage: sign,cert",  # pragma: no mutate
                *(
                    [
                        "Subkey-Type: ECDH",  # pragma: no mutate
                        "Subkey-Curve: cv25519",  # pragma: no mutate
                        "Subkey-Usage: encrypt",  # pragma: no mutate
                    ]
                    if encryption_subkey
                    else []
                ),
                f"Name-Real: {name}",
                f"Name-Email: {email}",
                "Expire-Date: 0",  # pragma: no mutate
                protection,
                "%commit",  # pragma: no mutate
                "",
            ]
        )
        result = self._gpg.gen_key(parameters)
        fingerprint = str(result.fingerprint or "").upper()
        if result.status != "ok" or not _FINGERPRINT.fullmatch(fingerprint):
            raise KeyGenerationError("GnuPG did not create the key")
        return fingerprint

    def has_secret_key(self, fingerprint: str) -> bool:
        """Whether the secret key ``fingerprint`` is in this keyring (one indexed lookup)."""
        fingerprint = normalise_fingerprint(fingerprint)
        # keys=None lists every key, then filtered to the same one: slower, not different.
        keys = self._gpg.list_keys(secret=True, keys=[fingerprint])  # pragma: no mutate
        return any(key.get("fingerprint") == fingerprint for key in keys)

    def encryption_key_ids(self, fingerprint: str) -> frozenset[str]:
        """The long key ids a message encrypted to ``fingerprint`` names as its recipients
        (the primary key's and its subkeys'), to compare with ``DecryptedMessage.encrypted_to``.

        Raises:
            KeyNotFound: no such key in this keyring.
        """
        fingerprint = normalise_fingerprint(fingerprint)
        if fingerprint in self._recipient_ids:
            return self._recipient_ids[fingerprint]
        keys = [
            k
            # keys=None lists every key, then filtered to the same one: slower, not different.
            for k in self._gpg.list_keys(keys=[fingerprint])  # pragma: no mutate
            if k.get("fingerprint") == fingerprint
        ]
        if not keys:
            raise KeyNotFound(f"no public key {fingerprint} in the keyring")
        [key] = keys
        ids = {str(key["keyid"]).upper()}
        ids.update(str(subkey[0]).upper() for subkey in key["subkeys"])
        # Asked once per tip; a key's ids do not change, so one lookup per process is enough.
        self._recipient_ids[fingerprint] = frozenset(ids)
        return self._recipient_ids[fingerprint]

    def export_public_key(self, fingerprint: str) -> str:
        """The ASCII-armored public key ``fingerprint``.

        Raises:
            KeyNotFound: no such key in this keyring.
        """
        fingerprint = normalise_fingerprint(fingerprint)
        armored = self._gpg.export_keys(
            [fingerprint],
            armor=True,  # pragma: no mutate (python-gnupg's default)
            minimal=True,
        )
        # gpg exports nothing for a key it lacks: "and" for "or" would change nothing seen.
        if not armored or "BEGIN PGP PUBLIC KEY BLOCK" not in armored:  # pragma: no mutate
            raise KeyNotFound(f"no public key {fingerprint} in the keyring")
        return str(armored)

    def has_public_key(self, fingerprint: str) -> bool:
        """Whether the public key ``fingerprint`` is in this keyring (one indexed lookup)."""
        fingerprint = normalise_fingerprint(fingerprint)
        keys = self._gpg.list_keys(keys=[fingerprint])
        return any(key.get("fingerprint") == fingerprint for key in keys)

    def export_secret_key(self, fingerprint: str) -> str:
        """The ASCII-armored secret key ``fingerprint``, still protected by this keyring's
        passphrase: for building another host's GnuPG home, never for anything else.

        Raises:
            KeyNotFound: no such secret key in this keyring.
            SecretKeyLocked: the key could not be unlocked with this keyring's passphrase.
        """
        fingerprint = normalise_fingerprint(fingerprint)
        if not self.has_secret_key(fingerprint):
            raise KeyNotFound(f"no secret key {fingerprint} in the keyring")
        armored = self._gpg.export_keys(
            [fingerprint],
            secret=True,
            armor=True,  # pragma: no mutate (python-gnupg's default)
            passphrase=self._passphrase,
            # python-gnupg only tests it (None is False) and only when no passphrase is given.
            expect_passphrase=self._passphrase is not None,  # pragma: no mutate
        )
        # gpg exports nothing when it cannot unlock the key: "and" for "or" changes nothing.
        if not armored or "BEGIN PGP PRIVATE KEY BLOCK" not in armored:  # pragma: no mutate
            raise SecretKeyLocked(f"the secret key {fingerprint} could not be exported")
        return str(armored)

    def import_secret_key(self, armored: str, *, fingerprint: str) -> None:
        """Add the secret key ``fingerprint`` exported by :meth:`export_secret_key` on another
        host (it keeps its passphrase: give this keyring the same one to use it).

        Raises:
            MalformedKey: the data is not that one secret key.
        """
        fingerprint = normalise_fingerprint(fingerprint)
        # GnuPG 2.2 imports a protected secret key as it is: no passphrase needed (or sent).
        # Armor is ASCII: a codec name in capitals encodes it the same.
        result = self._gpg.import_keys(armored.encode("ascii"))  # pragma: no mutate
        imported = {str(fpr).upper() for fpr in result.fingerprints}
        if result.returncode != 0 or imported != {fingerprint} or not result.sec_read:
            raise MalformedKey(f"GnuPG did not import the secret key {fingerprint}")

    # -- partner keys -------------------------------------------------------------------------

    def inspect_partner_key(
        self, key_data: str | bytes, *, expected_fingerprint: str | None = None
    ) -> PartnerKey:
        """Check a partner's public key and return its pin, leaving this keyring unchanged.

        The key is examined in a throwaway GnuPG home. Store the returned pin with the agency
        (its fingerprint is what tips' signers are compared to, its ``armored`` copy what each
        host imports with :meth:`import_pinned_key` before verifying a tip).

        Args:
            key_data: exactly one OpenPGP public key (armored or binary).
            expected_fingerprint: the fingerprint confirmed with the partner out of band; the
                key is refused unless it matches.

        Raises:
            MalformedKey: empty, not key data, or not exactly one key.
            SecretKeyRefused: the data holds secret key material.
            KeyExpired, KeyRevoked: the key cannot be used any more.
            KeyNotUsable: no usable signing or encryption capability, or a weak key.
            FingerprintMismatch: not the key confirmed out of band.
        """
        data = key_data.encode("utf-8") if isinstance(key_data, str) else bytes(key_data)
        if not data.strip():
            raise MalformedKey("the key file is empty")
        if len(data) > _MAX_KEY_BYTES:
            raise MalformedKey("the key file is larger than 1 MiB")
        expected = normalise_fingerprint(expected_fingerprint) if expected_fingerprint else None
        return self._inspect_partner_key(data, expected)

    def import_pinned_key(self, armored: str, *, fingerprint: str) -> None:
        """Add a partner key already inspected and pinned (its ``PartnerKey.armored``).

        Raises:
            MalformedKey: GnuPG did not import exactly that one public key.
        """
        fingerprint = normalise_fingerprint(fingerprint)
        data = armored.encode("utf-8")  # pragma: no mutate (codec names ignore case)
        if not data.strip() or len(data) > _MAX_KEY_BYTES:
            raise MalformedKey(f"the stored copy of key {fingerprint} is empty or too large")
        # import-minimal: third-party signatures are of no use without the web of trust.
        result = self._gpg.import_keys(
            data,
            extra_args=[
                "--import-options",
                "import-minimal",  # pragma: no mutate (gpg reads it in any case)
            ],
        )
        imported = {str(fpr).upper() for fpr in result.fingerprints}
        if result.returncode != 0 or imported != {fingerprint} or result.sec_read:
            raise MalformedKey(f"GnuPG did not import the pinned key {fingerprint}")
        self._present.add(fingerprint)

    def make_available(self, fingerprint: str, armored: str | None) -> bool:
        """Make sure the public key ``fingerprint`` is in this keyring, importing ``armored``
        (a copy made by :meth:`inspect_partner_key`) when it is not.

        Called before every signature check, so it is cheap after the first call: keys known
        present are remembered for the life of this object (GnuPG never loses a key, and
        Tipline never deletes one).

        Returns:
            Whether the key is in the keyring now (False: missing and no copy to import).

        Raises:
            MalformedKey: the copy could not be imported.
        """
        fingerprint = normalise_fingerprint(fingerprint)
        if fingerprint in self._present:
            return True
        if self.has_public_key(fingerprint):
            self._present.add(fingerprint)
            return True
        if armored is None:
            return False
        self.import_pinned_key(armored, fingerprint=fingerprint)
        return True

    def import_partner_key(
        self, key_data: str | bytes, *, expected_fingerprint: str | None = None
    ) -> PartnerKey:
        """:meth:`inspect_partner_key`, then :meth:`import_pinned_key`: check a key and add it
        at once (for tools on a single keyring; Tipline pins in the database first).

        Raises:
            KeyImportError: see :meth:`inspect_partner_key`; nothing was added.
        """
        pin = self.inspect_partner_key(key_data, expected_fingerprint=expected_fingerprint)
        self.import_pinned_key(pin.armored, fingerprint=pin.fingerprint)
        return pin

    def _inspect_partner_key(self, data: bytes, expected: str | None) -> PartnerKey:
        scratch = Path(tempfile.mkdtemp(prefix="tl-keycheck-"))
        try:
            # --no-autostart: inspecting must not start an agent in the scratch home. The
            # default trust model: with "always", gpg refuses to run without a trustdb.
            gpg = self._open(scratch, self._gpg_binary, ["--no-autostart", "--batch"])
            keys = gpg.scan_keys_mem(data)
            pin = _partner_key_pin(keys)
            if expected is not None and expected != pin.fingerprint:
                raise FingerprintMismatch(
                    f"the key's fingerprint {pin.fingerprint} is not the one confirmed with "
                    "the partner"
                )
            # The copy every host imports: what GnuPG exports after a minimal import, one
            # armored key without third-party signatures, whatever form the partner sent.
            result = gpg.import_keys(
                data,
                extra_args=[
                    "--import-options",
                    "import-minimal",  # pragma: no mutate (gpg reads it in any case)
                ],
            )
            imported = {str(fpr).upper() for fpr in result.fingerprints}
            if result.returncode != 0 or imported != {pin.fingerprint} or result.sec_read:
                raise MalformedKey("GnuPG did not import the key")
            exported = gpg.export_keys(
                [pin.fingerprint],
                armor=True,  # pragma: no mutate (python-gnupg's default)
                minimal=True,
            )
            armored = str(exported or "")
        finally:
            self._kill_agent(scratch)
            shutil.rmtree(scratch, ignore_errors=True)
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise MalformedKey("GnuPG did not export the key")
        return replace(pin, armored=armored)

    # -- messages -----------------------------------------------------------------------------

    def encrypt(
        self, plaintext: bytes, recipients: Sequence[str], *, sign_with: str | None = None
    ) -> str:
        """Encrypt ``plaintext`` to every recipient fingerprint, optionally signing it too.

        Args:
            plaintext: the content.
            recipients: full fingerprints of the recipients' primary keys.
            sign_with: full fingerprint of one of our secret keys to sign with.

        Returns:
            The ASCII-armored OpenPGP message.

        Raises:
            EncryptError: no recipients, or a recipient key is missing, expired or revoked.
            SignError: the signing key is missing or unusable.
            SecretKeyLocked: the signing key could not be unlocked.
        """
        if isinstance(recipients, str) or not recipients:
            raise EncryptError("give a non-empty list of recipient fingerprints")
        targets = [normalise_fingerprint(fpr) for fpr in recipients]
        signer = normalise_fingerprint(sign_with) if sign_with else None
        with _stopping_gpg_if_interrupted():
            result = self._gpg.encrypt(
                bytes(plaintext),
                targets,
                sign=signer,
                # gpg uses a passphrase only to sign: sent always, it would change nothing seen.
                passphrase=self._passphrase if signer else None,  # pragma: no mutate
                armor=True,  # pragma: no mutate (python-gnupg's default)
                # python-gnupg names the signer with --default-key, which gpg ignores when it
                # holds no usable secret key for it: it then signs with another secret key of
                # this home (the intake key, say) and succeeds. --local-user fails instead.
                extra_args=["--local-user", signer] if signer else None,
            )
        statuses = _statuses(result.stderr)
        if result.ok and result.returncode == 0 and result.data:
            return bytes(result.data).decode("ascii")  # pragma: no mutate (armor is ASCII)
        self._raise_for_signing(statuses)
        for keyword, value in statuses:
            if keyword == "INV_RECP":
                # "<code> <fingerprint>": rpartition would split it the same.
                code, _, who = value.partition(" ")  # pragma: no mutate
                raise EncryptError(f"recipient key {who} cannot be used: {_reason(code)}")
        raise EncryptError("encryption failed")

    def decrypt_and_verify(self, message: str | bytes) -> DecryptedMessage:
        """Decrypt ``message`` with our secret key and check its signature, if any.

        The caller decides whether the signer is acceptable: require ``signature_valid`` and
        ``signer_fingerprint`` equal to the sending agency's pinned fingerprint; and whether
        ``decrypted_with`` is a key it expects tips to be encrypted to.

        Raises:
            MalformedMessage: not an OpenPGP message encrypted to a public key.
            TooManySessionKeys: more session-key packets than a tip needs (not given to gpg).
            NotEncryptedToUs: encrypted, but not to any secret key we hold.
            PlaintextTooLarge: the content exceeds ``max_plaintext_bytes``.
            DecryptError: corrupt or tampered ciphertext, or another GnuPG failure.
            SecretKeyLocked: our secret key could not be unlocked (server configuration).
            GnuPGError: gpg gave no usable answer (a fault of the server, not the message).
        """
        raw = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        if not raw.strip():
            raise MalformedMessage("the message is empty")
        read_encrypted_message(raw, max_session_keys=self._max_session_keys)
        with _stopping_gpg_if_interrupted():
            result = self._gpg.decrypt(
                raw,
                passphrase=self._passphrase,
                extra_args=["--max-output", str(self._max_plaintext_bytes)],
            )
        statuses = _statuses(result.stderr)
        if not statuses or result.returncode is None or result.returncode < 0:
            # gpg always reports on a well-formed message; silence means it did not run.
            raise GnuPGError(f"gpg gave no answer (exit status {result.returncode})")
        keywords = {keyword for keyword, _ in statuses}
        recipients = tuple(value.split()[0] for keyword, value in statuses if keyword == "ENC_TO")
        if "DECRYPTION_OKAY" not in keywords:
            if _key_locked(statuses):
                raise SecretKeyLocked("the intake key could not be unlocked (check its passphrase)")
            if "NEED_PASSPHRASE_SYM" in keywords:
                raise MalformedMessage(
                    "the message is encrypted with a password; encrypt it to the intake key"
                )
            if not recipients:
                raise MalformedMessage("the input is not an OpenPGP message encrypted to a key")
            missing = {value.split()[0] for keyword, value in statuses if keyword == "NO_SECKEY"}
            if missing >= set(recipients):
                raise NotEncryptedToUs(recipients)
            raise DecryptError("the message could not be decrypted (corrupt or tampered)")
        outcome = _signature_outcome(statuses)
        if result.returncode != 0:
            if "exceeded --max-output limit" in result.stderr:
                raise PlaintextTooLarge(
                    f"the decrypted content exceeds {self._max_plaintext_bytes} bytes"
                )
            # gpg also exits non-zero for a bad or unverifiable signature; that is reported in
            # the outcome. Any other failure means the output cannot be trusted to be complete.
            if outcome.signature_status in {SignatureStatus.VALID, SignatureStatus.UNSIGNED}:
                raise DecryptError("GnuPG reported an error while decrypting the message")
        # DECRYPTION_KEY <subkey fingerprint> <primary fingerprint> <owner trust>: the key that
        # really decrypted, which ENC_TO (what the message claims) need not be.
        decrypted_with = [
            value.split()[1]
            for keyword, value in statuses
            if keyword == "DECRYPTION_KEY" and len(value.split()) >= 2
        ]
        if len(decrypted_with) != 1 or not _FINGERPRINT.fullmatch(decrypted_with[0]):
            raise GnuPGError("GnuPG did not say which key decrypted the message (2.2+ needed)")
        return DecryptedMessage(
            plaintext=bytes(result.data),
            signer_fingerprint=outcome.signer_fingerprint,
            signature_valid=outcome.signature_valid,
            signature_status=outcome.signature_status,
            encrypted_to=recipients,
            decrypted_with=decrypted_with[0],
        )

    def decrypt_file_stream(
        self, path: Path, *, max_bytes: int, chunk_bytes: int = 64 * 1024
    ) -> Iterator[bytes]:
        """Decrypt the message in ``path`` with our secret key, yielding the plaintext as gpg
        produces it: nothing of it is written to disk, and at most a few chunks are held in
        memory whatever the file's size (for attachments, which may be large).

        The plaintext's integrity is known only once gpg has read the whole message: if it
        fails, or the output passes ``max_bytes``, the generator raises after what it has
        already yielded, so a caller streaming it must abandon what it sent (an HTTP answer
        cut short). Closing the generator early stops gpg.

        Raises:
            DecryptError: corrupt or tampered ciphertext, or not to any key we hold.
            PlaintextTooLarge: more than ``max_bytes`` of plaintext.
            SecretKeyLocked: our secret key could not be unlocked.
            GnuPGError: gpg gave no usable answer.
        """
        # Its shape first, as for a tip: a few session keys, then one encrypted data packet
        # (thousands of session keys would keep gpg-agent busy for hours; a literal packet
        # would be plaintext streamed as if decrypted). Nothing is yielded before this.
        read_encrypted_file(path, max_session_keys=self._max_session_keys)
        # A GPG object of its own: python-gnupg's data callback is an attribute of the object,
        # and other requests share this keyring's. Making one runs gpg (its version).
        try:
            gpg = self._open(self.home, self._gpg_binary)
        except OSError as exc:
            raise GnuPGError("gpg could not be run") from exc
        # The gpg process, to stop it when the reader goes away or gives up (python-gnupg
        # would otherwise let it run to its end, however long).
        processes: list[subprocess.Popen[bytes]] = []
        spawn = gpg._open_subprocess

        def spawn_and_keep(*args: Any, **kwargs: Any) -> Any:
            process = spawn(
                *args,
                # python-gnupg passes none: dropping them would change nothing.
                **kwargs,  # pragma: no mutate
            )
            processes.append(process)
            return process

        gpg._open_subprocess = spawn_and_keep
        gpg.buffer_size = chunk_bytes
        # A few chunks ahead of the reader: 8 or 9 makes no difference anyone could see.
        chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)  # pragma: no mutate
        abandoned = threading.Event()

        def on_data(data: bytes) -> bool:
            # Not kept by python-gnupg (False): handed to the reader, who may have gone.
            while not abandoned.is_set():
                try:
                    chunks.put(data or None, timeout=_ROOM_CHECK_SECONDS)
                    break
                except queue.Full:
                    continue
            return False

        gpg.on_data = on_data
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                with path.open("rb") as source:
                    outcome["result"] = gpg.decrypt_file(
                        source,
                        passphrase=self._passphrase,
                        extra_args=["--max-output", str(max_bytes)],
                    )
            except Exception as exc:  # noqa: BLE001 - re-raised by the reader below
                outcome["error"] = exc
                abandoned.set()
            finally:
                # The end, also when gpg could not start (on_data then never saw b"").
                with contextlib.suppress(queue.Full):
                    chunks.put(None, timeout=PATIENT_SECONDS)

        worker = threading.Thread(
            target=run,
            name="gpg-decrypt-stream",  # pragma: no mutate (for debuggers only)
            daemon=True,
        )
        worker.start()
        try:
            while True:
                try:
                    chunk = chunks.get(timeout=PATIENT_SECONDS)
                except queue.Empty:
                    raise GnuPGError("gpg stopped producing output") from None
                if chunk is None:
                    break
                yield chunk
            worker.join(PATIENT_SECONDS)
        finally:
            abandoned.set()
            for process in processes:
                if process.poll() is None:
                    process.kill()
        if "error" in outcome:
            raise GnuPGError("gpg could not be run") from outcome["error"]
        result = outcome.get("result")
        if result is None:
            raise GnuPGError("gpg gave no answer")
        statuses = _statuses(result.stderr)
        keywords = {keyword for keyword, _ in statuses}
        if not statuses:
            raise GnuPGError("gpg gave no answer")
        if "DECRYPTION_OKAY" not in keywords:
            if _key_locked(statuses):
                raise SecretKeyLocked("the intake key could not be unlocked (check its passphrase)")
            raise DecryptError("the file could not be decrypted (corrupt, tampered, or not ours)")
        if result.returncode != 0 and "exceeded --max-output limit" in result.stderr:
            raise PlaintextTooLarge(f"the decrypted file exceeds {max_bytes} bytes")
        if result.returncode != 0 and "DECRYPTION_FAILED" in keywords:
            raise DecryptError("the file could not be decrypted (corrupt or tampered)")

    def _raise_for_signing(self, statuses: list[tuple[str, str]]) -> None:
        if _key_locked(statuses):
            raise SecretKeyLocked("the signing key could not be unlocked (check its passphrase)")
        for keyword, value in statuses:
            if keyword == "INV_SGNR":
                # "<code> <fingerprint>": rpartition would split it the same.
                code, _, who = value.partition(" ")  # pragma: no mutate
                raise SignError(f"signing key {who} cannot be used: {_reason(code)}")


# How long a streaming decryption waits on gpg before giving up on it (a stalled gpg-agent).
PATIENT_SECONDS = 120

# How often a streaming decryption waiting for room for a chunk looks whether the reader has
# gone. Any short interval will do (it is not mutated: mutmut leaves module constants alone).
_ROOM_CHECK_SECONDS = 0.5

# libgpg-error codes (low 16 bits of an ERROR status) meaning "the secret key is locked".
# BAD_PASSPHRASE, INV_PASSPHRASE, NO_PIN_ENTRY, BAD_PIN, CANCELED, NO_PASSPHRASE, NO_PIN.
_LOCKED_ERRORS = {11, 31, 85, 87, 99, 177, 178}


def _key_locked(statuses: list[tuple[str, str]]) -> bool:
    """Whether gpg failed because our secret key could not be unlocked."""
    keywords = {keyword for keyword, _ in statuses}
    # GnuPG 2.2 in loopback mode sends neither (a wrong passphrase comes as an ERROR code
    # below, a missing one as NEED_PASSPHRASE): no test here can judge these lines. Kept for
    # versions and pinentry modes that do send them.
    if keywords & {"BAD_PASSPHRASE", "MISSING_PASSPHRASE"}:  # pragma: no mutate
        return True  # pragma: no mutate
    # Loopback mode without a passphrase: gpg asks for one and gives up. (GnuPG 2.2 sends
    # NEED_PASSPHRASE only then, never beside these two: tests cannot judge them. They keep
    # a key that was unlocked from counting as locked with versions that do.)
    if "NEED_PASSPHRASE" in keywords and not keywords & {
        "BEGIN_DECRYPTION",  # pragma: no mutate
        "SIG_CREATED",  # pragma: no mutate
    }:
        return True
    for keyword, value in statuses:
        # "ERROR <where> <code>": the last field is also the second, as [+1:] would take.
        code = value.split()[-1:]  # pragma: no mutate
        if (
            keyword in {"ERROR", "FAILURE"}
            and code
            and code[0].isdigit()
            and int(code[0]) & 0xFFFF in _LOCKED_ERRORS
        ):
            return True
    return False


def _reason(code: str) -> str:
    # GnuPG 2.2 reports a revoked, expired or sign-only recipient as 0 ("unusable"; see
    # test_encrypting_to_a_key_gpg_will_not_use_fails) and ignores a disabled key under
    # --trust-model always: no test here can make it send 3, 4, 5 or 13. Kept for GnuPG
    # versions that do.
    return {
        "1": "not found",
        "3": "wrong key usage",  # pragma: no mutate
        "4": "key revoked",  # pragma: no mutate
        "5": "key expired",  # pragma: no mutate
        "9": "no secret key",
        "13": "key disabled",  # pragma: no mutate
    }.get(code, "unusable")
