"""The instance home on disk: its folders and the secrets kept in it.

Secrets are random bytes in files of their own, mode 0600 in a 0700 folder, created once by
``tipline init`` and never rewritten: a new blind-index key would orphan every index already
stored, and a new Flask key would end every session.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from crypto import CryptoError, Keyring, create_passphrase_file, read_passphrase_file
from tipline.config import ConfigError, Settings

# The intake key's passphrase: random, typed by nobody, kept outside the GnuPG home so a copy
# of that home alone does not yield the key (see bench/README.md for why and what it costs).
INTAKE_KEY_PASSPHRASE = "intake_key_passphrase"  # noqa: S105 - a file name, not a secret
# The web-form signing key's passphrase, the one passphrase a partner-facing host holds.
WEB_FORM_KEY_PASSPHRASE = "web_form_key_passphrase"  # noqa: S105 - a file name, not a secret
FLASK_SECRET_KEY = "flask_secret_key"  # noqa: S105 - a file name, not a secret
BLIND_INDEX_KEY = "blind_index_key"
AUDIT_KEY = "audit_key"  # keys the audit log's hash chain
SECRET_BOX_KEY = "secret_box_key"  # noqa: S105 - a file name; seals TOTP seeds at rest
SECRET_SIZES = {FLASK_SECRET_KEY: 64, BLIND_INDEX_KEY: 32, AUDIT_KEY: 32, SECRET_BOX_KEY: 32}


def private_folder(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def ensure_secret(settings: Settings, name: str) -> bool:
    """Create the secret ``name`` if it does not exist yet.

    Returns:
        True if it was created, False if it was already there (and left untouched).
    """
    folder = private_folder(settings.secrets_dir)
    path = folder / name
    try:
        # O_EXCL: two processes initialising at once cannot both write the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(SECRET_SIZES[name]))
        out.flush()
        os.fsync(out.fileno())
    return True


def read_secret(settings: Settings, name: str) -> bytes:
    """Read the secret ``name``.

    Raises:
        ConfigError: it does not exist (the home was not initialised), is unreadable,
            truncated, or readable by others.
    """
    path = settings.secrets_dir / name
    try:
        value = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing: run `tipline init` to initialise {settings.home}"
        ) from None
    except PermissionError:
        raise ConfigError(f"{path} is not readable by this user") from None
    except OSError as exc:  # a folder in its place, an I/O error: say so in one line
        raise ConfigError(f"{path} cannot be read ({exc.strerror}): restore it") from None
    if len(value) < SECRET_SIZES[name]:
        raise ConfigError(f"{path} is truncated: restore it from a backup")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others: chmod 600 it")
    return value


def ensure_passphrase(settings: Settings, name: str) -> bool:
    """Create the passphrase file ``name`` (``WEB_FORM_KEY_PASSPHRASE``, say) if missing.

    Returns:
        True if it was created, False if it was already there (and left untouched).
    """
    private_folder(settings.secrets_dir)
    try:
        create_passphrase_file(settings.secrets_dir / name)
    except FileExistsError:
        return False
    return True


def ensure_intake_passphrase(settings: Settings) -> bool:
    """Create the intake key's passphrase file if it does not exist yet."""
    return ensure_passphrase(settings, INTAKE_KEY_PASSPHRASE)


def read_intake_passphrase(settings: Settings) -> str:
    """Read the intake key's passphrase.

    Raises:
        ConfigError: it is missing (the home was not initialised), unreadable, empty or
            readable by others.
    """
    return read_passphrase(settings, INTAKE_KEY_PASSPHRASE)


def read_passphrase(settings: Settings, name: str) -> str:
    """Read the passphrase file ``name`` (``WEB_FORM_KEY_PASSPHRASE``, say).

    Raises:
        ConfigError: it is missing (the home was not initialised) or readable by others.
    """
    path = settings.secrets_dir / name
    try:
        return read_passphrase_file(path)
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing: run `tipline init` to initialise {settings.home}"
        ) from None
    except CryptoError as exc:
        raise ConfigError(str(exc)) from None
    except PermissionError:
        raise ConfigError(f"{path} is not readable by this user") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror}): restore it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a passphrase this service made: restore it") from None


# What a partner-facing host needs besides its GnuPG home: what signs in partners (TOTP seeds),
# what chains the audit log, and what unlocks the web-form and portal keys. Not the intake key's
# passphrase
# nor the blind-index key: nothing there decrypts a tip or computes a selector's index.
PARTNER_FACE_SECRETS = (AUDIT_KEY, SECRET_BOX_KEY, WEB_FORM_KEY_PASSPHRASE)


def export_partner_home(
    settings: Settings,
    target: Path,
    *,
    keyring: Keyring,
    web_form_keyring: Keyring,
    intake_fingerprint: str,
    web_form_fingerprint: str,
    portal_fingerprint: str,
) -> None:
    """Write in ``target`` (missing or empty) the home of a partner-facing web host.

    ``target/gnupg`` holds the intake public key (to encrypt web-form tips to), the web-form
    key pair (to sign them) and the portal key pair (to read the centre's messages to
    partners, encrypted to it as well); ``target/secrets`` holds ``PARTNER_FACE_SECRETS``
    copied from this home and a Flask key of its own (cookies signed on the internet-facing
    host are worth nothing on the staff's).

    Args:
        settings: this (full) host's settings.
        target: the folder to write.
        keyring: this host's keyring.
        web_form_keyring: this host's keyring unlocked with the web-form key's passphrase.
        intake_fingerprint: the current intake key.
        web_form_fingerprint: the current web-form key.
        portal_fingerprint: the current portal key (under the web-form key's passphrase).

    Raises:
        FileExistsError: ``target`` is not empty.
        ConfigError: a secret of this home is missing.
        CryptoError: a key could not be copied.
    """
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty")
    private_folder(target)
    try:
        folder = private_folder(target / "secrets")
        for name in PARTNER_FACE_SECRETS:
            path = settings.secrets_dir / name
            if not path.exists():
                raise ConfigError(f"{path} is missing: run `tipline init`")
            _write_secret_file(folder / name, path.read_bytes())
        flask_key = secrets.token_bytes(SECRET_SIZES[FLASK_SECRET_KEY])
        _write_secret_file(folder / FLASK_SECRET_KEY, flask_key)
        passphrase = read_passphrase(settings, WEB_FORM_KEY_PASSPHRASE)
        with Keyring(target / "gnupg", passphrase=passphrase) as partner_keyring:
            partner_keyring.import_pinned_key(
                keyring.export_public_key(intake_fingerprint), fingerprint=intake_fingerprint
            )
            for fingerprint in (web_form_fingerprint, portal_fingerprint):
                partner_keyring.import_secret_key(
                    web_form_keyring.export_secret_key(fingerprint), fingerprint=fingerprint
                )
    except BaseException:
        # Half a home must not pass for a whole one, nor leave copies of secrets about.
        for part in ("secrets", "gnupg"):
            shutil.rmtree(target / part, ignore_errors=True)
        raise


def _write_secret_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
