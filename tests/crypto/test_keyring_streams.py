"""Decrypting a large file as a stream: the plaintext comes out in chunks, never whole in memory
nor on disk; a damaged file, or one past the limit, ends the stream with an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crypto import DecryptError, Keyring, MalformedMessage, PlaintextTooLarge, TooManySessionKeys
from tests.crypto.conftest import Intake, Partners, gpg

MIB = 1024 * 1024


def sealed_file(folder: Path, partners: Partners, intake: Intake, payload: bytes) -> Path:
    """A file as a partner sends it: `gpg --encrypt` to the intake key, binary."""
    plain = folder / "evidence.bin"
    plain.write_bytes(payload)
    sealed = folder / "evidence.bin.pgp"
    gpg(
        partners.home,
        "--trust-model", "always", "--compress-algo", "none",
        "--encrypt", "--recipient", intake.fingerprint,
        "--output", str(sealed), str(plain),
    )  # fmt: skip
    plain.unlink()
    return sealed


def test_a_file_is_decrypted_in_chunks_to_the_same_bytes(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    payload = os.urandom(3 * MIB)
    sealed = sealed_file(tmp_path, partners, intake, payload)
    chunks = list(intake.keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB))
    assert b"".join(chunks) == payload
    assert len(chunks) > 10  # a stream, not one piece
    assert max(len(chunk) for chunk in chunks) <= 64 * 1024


def test_a_damaged_file_ends_the_stream_with_an_error(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    sealed = sealed_file(tmp_path, partners, intake, os.urandom(MIB))
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    sealed.write_bytes(bytes(data))
    with pytest.raises(DecryptError):
        for _ in intake.keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB):
            pass


def test_more_than_the_limit_ends_the_stream_with_an_error(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    sealed = sealed_file(tmp_path, partners, intake, os.urandom(2 * MIB))
    received = 0
    with pytest.raises(PlaintextTooLarge):
        for chunk in intake.keyring.decrypt_file_stream(sealed, max_bytes=MIB):
            received += len(chunk)
    assert received <= MIB


def test_a_file_not_for_us_is_refused(
    tmp_path: Path, partners: Partners, intake: Intake, empty_keyring: Keyring
) -> None:
    sealed = sealed_file(tmp_path, partners, intake, b"for the centre only")
    with pytest.raises(DecryptError):
        list(empty_keyring.decrypt_file_stream(sealed, max_bytes=MIB))


def test_a_reader_that_stops_early_leaves_the_keyring_usable(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    payload = os.urandom(4 * MIB)
    sealed = sealed_file(tmp_path, partners, intake, payload)
    stream = intake.keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB)
    assert len(next(stream)) > 0
    stream.close()  # the browser went away
    assert b"".join(intake.keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB)) == payload


def test_a_file_shaped_wrong_is_refused_before_any_byte_or_gpg(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    data = sealed.read_bytes()
    ctb = data[0]
    width = {0: 1, 1: 2, 2: 4}[ctb & 0x03]
    end = 1 + width + int.from_bytes(data[1 : 1 + width], "big")
    session_key, encrypted = data[:end], data[end:]
    many = tmp_path / "many.pgp"
    many.write_bytes(session_key * 9 + encrypted)
    with pytest.raises(TooManySessionKeys):
        next(intake.keyring.decrypt_file_stream(many, max_bytes=MIB))
    clear = tmp_path / "clear.pgp"
    clear.write_bytes(session_key + bytes([0xC0 | 11, 12]) + b"b\x00\x00\x00\x00\x00secret")
    with pytest.raises(MalformedMessage):
        next(intake.keyring.decrypt_file_stream(clear, max_bytes=MIB))
