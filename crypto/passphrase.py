"""The intake key's passphrase file.

The passphrase is a random secret that no person types. It lives in a 0600 file outside the
GnuPG home, so a copy of the GnuPG home alone does not yield the intake key. ``tipline init``
creates it once with :func:`create_passphrase_file`; every process that decrypts (web, workers)
reads it with :func:`read_passphrase_file` and passes it to :class:`crypto.keyring.Keyring`.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from crypto.errors import CryptoError


def create_passphrase_file(path: Path) -> str:
    """Create ``path`` (mode 0600, must not exist) holding a new 256-bit random passphrase.

    Raises:
        FileExistsError: ``path`` exists; never overwrite the passphrase of an existing key.
    """
    # 32 bytes, 256 bits. None is token_urlsafe's default, also 32 bytes, and a larger count
    # is no weaker: no test could tell such a change from this line.
    passphrase = secrets.token_urlsafe(32)  # pragma: no mutate
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    # URL-safe base64 is ASCII: "ASCII", or the locale's codec (no encoding given), writes the
    # same bytes.
    with os.fdopen(fd, "w", encoding="ascii") as handle:  # pragma: no mutate
        handle.write(passphrase + "\n")
    return passphrase


def read_passphrase_file(path: Path) -> str:
    """Read the passphrase from ``path``.

    Raises:
        CryptoError: the file is readable by group or others, or empty.
        FileNotFoundError: the file is missing.
    """
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CryptoError(f"{path} must be readable by its owner only (chmod 600)")
    passphrase = path.read_text(encoding="ascii").strip()
    if not passphrase:
        raise CryptoError(f"{path} is empty")
    return passphrase
