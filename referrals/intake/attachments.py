"""Storage of attachments: encrypted files, written to disk as they arrive, never decrypted.

A file is streamed into a temporary name, hashed and counted on the way, flushed to disk, then
renamed into place: a half-received file is never visible under its final name, and a body
over the limit is abandoned without being read to its end.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import MalformedMessage, TooManySessionKeys
from crypto.packets import read_encrypted_file

ARMOR_HEADER = b"-----BEGIN PGP MESSAGE-----"


class AttachmentRefused(ValueError):
    """The body is not an OpenPGP message."""


class AttachmentTooLarge(ValueError):
    """The body is over the size limit."""


class AttachmentToRejectedTip(ValueError):
    """The tip was rejected: files go with the corrected tip the partner sends instead."""


class AttachmentQuotaExceeded(ValueError):
    """The tip's attachments would go past its quota; ``files`` says which of the two limits
    (the number of files, else their total size)."""

    def __init__(self, message: str, *, files: bool) -> None:
        super().__init__(message)
        self.files = files


@dataclass(frozen=True)
class AttachmentQuota:
    """How much may be attached to one tip: a bound on what one partner can make us store."""

    max_files: int
    max_bytes: int


def looks_like_openpgp_message(head: bytes) -> bool:
    """Whether ``head`` (the first bytes) starts an OpenPGP message, armored or binary.

    A binary message starts with a public-key or symmetric-key encrypted session key packet
    (tags 1 and 3), in the old or the new packet format.
    """
    stripped = head.lstrip()
    if stripped.startswith(ARMOR_HEADER[: len(stripped)]) and stripped:
        return True
    if not head:
        return False
    first = head[0]
    if first & 0xC0 == 0xC0:  # new format: tag in the low six bits
        return first & 0x3F in (1, 3)
    if first & 0x80:  # old format: tag in bits 5-2
        return (first >> 2) & 0x0F in (1, 3)
    return False


@dataclass(frozen=True)
class StoredFile:
    storage_name: str
    sha256: str
    size_bytes: int


class AttachmentStore:
    """Encrypted attachment files under one folder.

    Args:
        root: the folder (created 0700 if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, storage_name: str) -> Path:
        return self.root / storage_name[:2] / storage_name

    def write(self, chunks: Iterable[bytes], *, max_bytes: int) -> StoredFile:
        """Stream ``chunks`` into a new file.

        Raises:
            AttachmentRefused: the body does not start like an OpenPGP message (or is empty).
            AttachmentTooLarge: it goes past ``max_bytes``; nothing is kept.
        """
        storage_name = f"{uuid.uuid4().hex}.pgp"
        incoming = self.root / "incoming"
        incoming.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = incoming / f"{storage_name}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            with partial.open("xb") as out:
                os.chmod(partial, 0o600)
                for chunk in chunks:
                    if size == 0 and not looks_like_openpgp_message(chunk[:64]):
                        raise AttachmentRefused("the body is not an OpenPGP message")
                    size += len(chunk)
                    if size > max_bytes:
                        raise AttachmentTooLarge(f"the attachment is over {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                if size == 0:
                    raise AttachmentRefused("the body is empty")
                out.flush()
                os.fsync(out.fileno())
            try:
                # The shape of an encrypted message, as for a tip: a few session keys, then
                # one encrypted data packet (else it could hold thousands of session keys
                # for gpg-agent to try, or a file in clear).
                read_encrypted_file(partial)
            except (MalformedMessage, TooManySessionKeys) as exc:
                raise AttachmentRefused(str(exc)) from None
            final = self.path(storage_name)
            final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(partial, final)
            _fsync_folder(final.parent)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredFile(storage_name=storage_name, sha256=digest.hexdigest(), size_bytes=size)

    def remove(self, storage_name: str) -> None:
        self.path(storage_name).unlink(missing_ok=True)

    def partial_files(self) -> Iterator[os.DirEntry[str]]:
        """Uploads still being written, or left half-written by a killed process."""
        yield from _entries(self.root / "incoming", suffix=".part")

    def stored_files(self) -> Iterator[os.DirEntry[str]]:
        """Every finished file, one folder at a time (never the whole listing at once)."""
        for folder in _entries(self.root):
            if folder.is_dir(follow_symlinks=False) and folder.name != "incoming":
                yield from _entries(Path(folder.path), suffix=".pgp")


def _entries(folder: Path, *, suffix: str = "") -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(suffix):
                    yield entry
    except FileNotFoundError:
        return


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
