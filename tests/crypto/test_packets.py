"""The packet-header reader that counts a message's session keys before gpg sees it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import packets
from crypto.errors import MalformedMessage, TooManySessionKeys
from crypto.packets import MAX_SESSION_KEY_PACKETS, dearmor, read_encrypted_message
from tests.crypto.conftest import _key_block, gpg, stop_agent
from tests.partners import armor, split_first_packet

RECIPIENTS = 10


@pytest.fixture(scope="module")
def recipients() -> Iterator[tuple[Path, list[str]]]:
    """A scratch GnuPG home with ten encryption keys to send messages to."""
    home = Path(tempfile.mkdtemp(prefix="tlk-", dir="/tmp"))
    gpg(
        home,
        "--gen-key",
        stdin="".join(_key_block(f"Recipient {n}") for n in range(RECIPIENTS)).encode(),
    )
    listing = gpg(home, "--with-colons", "--list-keys").decode().splitlines()
    fingerprints = [
        line.split(":")[9]
        for previous, line in zip(listing, listing[1:], strict=False)
        if previous.startswith("pub:") and line.startswith("fpr:")
    ]
    assert len(fingerprints) == RECIPIENTS
    yield home, fingerprints
    stop_agent(home)
    shutil.rmtree(home, ignore_errors=True)


def encrypt(home: Path, fingerprints: list[str], *extra: str, armored: bool = True) -> bytes:
    args = ["--trust-model", "always", *extra, "--encrypt"]
    for fingerprint in fingerprints:
        args += ["--recipient", fingerprint]
    if armored:
        args.insert(0, "--armor")
    return gpg(home, *args, stdin=b"a tip")


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    count=st.integers(min_value=1, max_value=RECIPIENTS),
    armored=st.booleans(),
    hidden=st.booleans(),
    crlf=st.booleans(),
)
def test_real_messages_to_n_recipients_count_n(
    recipients: tuple[Path, list[str]], count: int, armored: bool, hidden: bool, crlf: bool
) -> None:
    home, fingerprints = recipients
    message = encrypt(
        home, fingerprints[:count], *(["--throw-keyids"] if hidden else []), armored=armored
    )
    if armored and crlf:
        message = message.replace(b"\n", b"\r\n")
    if count > MAX_SESSION_KEY_PACKETS:
        with pytest.raises(TooManySessionKeys):
            read_encrypted_message(message)
        return
    shape = read_encrypted_message(message)
    assert (shape.public_key_session_keys, shape.symmetric_session_keys) == (count, 0)


def test_a_message_to_keys_and_a_password_counts_both(
    recipients: tuple[Path, list[str]],
) -> None:
    home, fingerprints = recipients
    message = encrypt(
        home,
        fingerprints[:2],
        "--symmetric",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "pw",
        "--no-symkey-cache",
    )
    shape = read_encrypted_message(message)
    assert (shape.public_key_session_keys, shape.symmetric_session_keys) == (2, 1)


def test_the_armor_is_read_exactly_as_gpg_reads_it(recipients: tuple[Path, list[str]]) -> None:
    home, fingerprints = recipients
    message = encrypt(home, fingerprints[:1])
    binary = gpg(home, "--dearmor", stdin=message)
    assert dearmor(message) == binary
    # Headers as gpg takes them: "Key: value" (colons after the first one's space are
    # the value's), "Key:" alone; and the base64 may follow them without a blank line.
    for headers in [b"Version: Example 1.0\nComment: tip: 4417\nComment:\n\n", b""]:
        assert dearmor(message.replace(b"-----\n\n", b"-----\n" + headers, 1)) == binary
    assert dearmor(armor(binary, checksum=False)) == binary
    # gpg calls these invalid armor headers: refused, never read past.
    for header in [b"Comment:tip: 4417", b": tip 4417"]:
        with pytest.raises(MalformedMessage, match="not valid base64"):
            dearmor(message.replace(b"-----\n\n", b"-----\n" + header + b"\n\n", 1))


def test_the_armor_checksum_is_rfc_4880s_crc_24(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table is built when the module is imported, before mutmut switches a mutant in:
    built again here, so that a mistake in building it is seen."""
    monkeypatch.setattr(packets, "_CRC24_TABLE", packets._crc24_table())

    # The check value of CRC-24/OPENPGP (the catalogue's, for the bytes "123456789").
    assert packets.crc24(b"123456789") == 0x21CF02


def test_damaged_armor_is_refused_with_a_reason(recipients: tuple[Path, list[str]]) -> None:
    home, fingerprints = recipients
    binary = encrypt(home, fingerprints[:1], armored=False)
    message = armor(binary)
    lines = message.split(b"\n")
    crc = next(i for i, line in enumerate(lines) if line.startswith(b"="))
    lines[crc] = b"=AAAA" if lines[crc] != b"=AAAA" else b"=AAAB"
    with pytest.raises(MalformedMessage, match="checksum does not match"):
        read_encrypted_message(b"\n".join(lines))
    with pytest.raises(MalformedMessage, match="base64"):
        read_encrypted_message(message.replace(lines[2][:4], lines[2][:3] + b"!", 1))
    with pytest.raises(MalformedMessage, match="more than one"):
        read_encrypted_message(message + message)


@pytest.mark.parametrize(
    ("wrap", "reason"),
    [
        # gpg opens a compressed packet and goes on to a second message: both would carry
        # session keys past a reader that stopped at the first other packet.
        (lambda m: bytes([0xC8, len(m) + 1, 0]) + m, "not encrypted to a key"),
        (lambda m: m + m, "data follows the encrypted message"),
        (lambda m: m[:-1], "cut short"),
        (lambda m: split_first_packet(m)[0], "ends before its encrypted data"),
    ],
    ids=["compressed around it", "two messages", "cut short", "no encrypted data"],
)
def test_a_message_of_another_shape_is_refused(
    recipients: tuple[Path, list[str]], wrap: object, reason: str
) -> None:
    home, fingerprints = recipients
    binary = encrypt(home, fingerprints[:1], armored=False)
    assert callable(wrap)
    with pytest.raises(MalformedMessage, match=reason):
        read_encrypted_message(wrap(binary))


# -- packets made by hand, in every header format RFC 4880 allows -----------------------------


def _old_header(tag: int, length: int, width: int) -> bytes:
    kind = {1: 0, 2: 1, 4: 2}[width]
    return bytes([0x80 | (tag << 2) | kind]) + length.to_bytes(width, "big")


def _new_length(length: int, form: int) -> bytes:
    if form == 1 and length < 192:
        return bytes([length])
    if form == 2 and 192 <= length < 8384:
        length -= 192
        return bytes([(length >> 8) + 192, length & 0xFF])
    return b"\xff" + length.to_bytes(4, "big")


@st.composite
def packet(draw: st.DrawFn, tag: int) -> bytes:
    body = draw(st.binary(max_size=300))
    if tag < 16 and draw(st.booleans()):
        width = draw(st.sampled_from([w for w in (1, 2, 4) if len(body) < 256**w]))
        return _old_header(tag, len(body), width) + body
    return bytes([0xC0 | tag]) + _new_length(len(body), draw(st.sampled_from([1, 2, 5]))) + body


@st.composite
def data_packet(draw: st.DrawFn) -> bytes:
    tag = draw(st.sampled_from([9, 18, 20]))
    body = draw(st.binary(max_size=3000))
    form = draw(st.sampled_from(["fixed", "partial", "indeterminate"]))
    if form == "indeterminate" and tag == 9:
        return bytes([0x80 | (9 << 2) | 3]) + body
    if form == "partial":
        out = bytearray([0xC0 | tag])
        rest = body
        while True:
            power = draw(st.integers(min_value=0, max_value=10))
            if len(rest) <= 1 << power:
                return bytes(out) + _new_length(len(rest), 5) + rest
            out += bytes([224 + power]) + rest[: 1 << power]
            rest = rest[1 << power :]
    return bytes([0xC0 | tag]) + _new_length(len(body), 5) + body


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, int]:
    tags = draw(st.lists(st.sampled_from([1, 3, 10]), max_size=14))
    packets = b"".join(draw(packet(tag)) for tag in tags)
    return packets + draw(data_packet()), sum(tag != 10 for tag in tags)


@settings(max_examples=300)
@given(messages(), st.booleans())
def test_handmade_messages_count_their_session_keys(
    drawn: tuple[bytes, int], armored: bool
) -> None:
    message, session_keys = drawn
    if armored:
        message = armor(message)
    if session_keys == 0:
        with pytest.raises(MalformedMessage, match="no session key"):
            read_encrypted_message(message)
    elif session_keys > MAX_SESSION_KEY_PACKETS:
        with pytest.raises(TooManySessionKeys):
            read_encrypted_message(message)
    else:
        assert read_encrypted_message(message).session_keys == session_keys


def _read_or_refuse(message: bytes) -> None:
    try:
        read_encrypted_message(message)
    except (MalformedMessage, TooManySessionKeys) as refused:
        assert str(refused)


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_read_or_refused_never_anything_else(raw: bytes) -> None:
    _read_or_refuse(raw)
    _read_or_refuse(armor(raw))
    _read_or_refuse(b"-----BEGIN PGP MESSAGE-----\n" + raw + b"\n-----END PGP MESSAGE-----\n")


@settings(max_examples=300)
@given(messages(), st.data())
def test_mutated_messages_are_read_or_refused_never_anything_else(
    drawn: tuple[bytes, int], data: st.DataObject
) -> None:
    message = bytearray(drawn[0])
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(message)))
        match data.draw(st.sampled_from(["flip", "insert", "delete"])):
            case "flip" if at < len(message):
                message[at] ^= data.draw(st.integers(min_value=1, max_value=255))
            case "insert":
                message[at:at] = data.draw(st.binary(min_size=1, max_size=8))
            case _:
                del message[at : at + data.draw(st.integers(min_value=1, max_value=8))]
    _read_or_refuse(bytes(message))
    _read_or_refuse(armor(bytes(message)))
