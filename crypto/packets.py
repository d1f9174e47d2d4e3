"""The outside of an OpenPGP message, read before GnuPG sees it: its shape and its session keys.

gpg tries every session-key packet a message carries, and each one naming a key we hold costs
gpg-agent a private-key operation (~2.3 ms): a message with thousands of them ties a worker up
for longer than a job may run, on every retry. So a message is read here first, header by
header (never its contents), and refused unless it has the shape of a tip: a few session-key
packets, then one encrypted data packet, then nothing. The shape is strict on purpose: gpg
also opens a compressed packet wrapped around the session keys, and goes on to a second
message concatenated to the first, so stopping at "the first packet that is not a session
key" would let either carry thousands more.

The reader allocates nothing beyond the decoded message and runs in time linear in its size;
every failure is a :class:`~crypto.errors.MalformedMessage` or
:class:`~crypto.errors.TooManySessionKeys`, whose messages are meant for the sender.
"""

from __future__ import annotations

import base64
import binascii
import mmap
import re
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import MalformedMessage, TooManySessionKeys

#: A tip is encrypted to the intake key, perhaps also to the sender's own key and a colleague's.
MAX_SESSION_KEY_PACKETS = 8

ARMOR_BEGIN = b"-----BEGIN PGP MESSAGE-----"
ARMOR_END = b"-----END PGP MESSAGE-----"

PKESK, SKESK, MARKER = 1, 3, 10  # public-key and symmetric-key session keys; a marker (ignored)
ENCRYPTED_DATA = {9, 18, 20}  # symmetrically encrypted, with MDC, AEAD
# Partial body lengths are allowed on data packets only (RFC 4880 section 4.2.2.4).
_PARTIAL_ALLOWED = {8, 9, 11, 18, 20}
# gpg writes chunks of 8 KiB and more; thousands of one-byte chunks are not a real message.
_MAX_CHUNKS = 65_536

_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_WHITESPACE = re.compile(rb"[ \t\r]+")


@dataclass(frozen=True, slots=True)
class MessageShape:
    """What the packet headers of an encrypted message say."""

    public_key_session_keys: int
    symmetric_session_keys: int

    @property
    def session_keys(self) -> int:
        return self.public_key_session_keys + self.symmetric_session_keys


def read_encrypted_message(
    message: bytes, *, max_session_keys: int = MAX_SESSION_KEY_PACKETS
) -> MessageShape:
    """Check that ``message`` (armored or binary) has the shape of an encrypted message.

    Raises:
        MalformedMessage: damaged armor, a packet cut short, or packets other than a few
            session keys followed by one encrypted data packet.
        TooManySessionKeys: more than ``max_session_keys`` session-key packets.
    """
    stripped = message.lstrip()
    packets = dearmor(message) if stripped.startswith(b"-----") else message
    return read_packets(packets, max_session_keys=max_session_keys)


def read_encrypted_file(
    path: Path, *, max_session_keys: int = MAX_SESSION_KEY_PACKETS
) -> MessageShape:
    """:func:`read_encrypted_message` for a file, which may be large: a binary one is walked
    through a memory map (headers only, nothing read into memory but them); an armored one
    must be decoded whole (the caller bounds its size).

    Raises:
        MalformedMessage, TooManySessionKeys: see :func:`read_encrypted_message`.
    """
    with path.open("rb") as source:
        head = source.read(64)
        if not head:
            raise MalformedMessage("the file is empty")
        if head.lstrip().startswith(b"-----"):
            source.seek(0)
            return read_encrypted_message(source.read(), max_session_keys=max_session_keys)
        with mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            # A memory map indexes and slices like bytes: the same walk, without the copy.
            return read_packets(mapped, max_session_keys=max_session_keys)  # type: ignore[arg-type]


def dearmor(armored: bytes) -> bytes:
    """The packets inside one ASCII-armored message (RFC 4880 section 6), its CRC24 checked
    when it has one.

    Lenient where GnuPG is (CRLF line ends, spaces, armor headers, no blank line after them,
    no checksum), strict where leniency would let the two of us read different packets: a
    character outside base64 is refused, where gpg would skip it.

    Raises:
        MalformedMessage: not exactly one armored message, or damaged armor.
    """
    lines = armored.strip().split(b"\n")
    if lines[0].rstrip() != ARMOR_BEGIN:
        raise MalformedMessage("the body is not an armored OpenPGP message")
    try:
        end = next(i for i, line in enumerate(lines) if line.rstrip() == ARMOR_END)
    except StopIteration:
        raise MalformedMessage("the armored message has no end line") from None
    if end != len(lines) - 1:
        raise MalformedMessage("the body holds more than one armored message")
    body = lines[1:end]
    # Armor headers ("Version: ...") run to a blank line; like gpg, a line that is not a
    # header ("Key: value", or "Key:" alone) starts the base64 at once.
    start = 0
    for index, line in enumerate(body):
        text = line.strip()
        if not text:
            start = index + 1
            break
        if not _is_armor_header(text):
            start = index
            break
    else:
        start = len(body)
    encoded = [_WHITESPACE.sub(b"", line) for line in body[start:]]
    encoded = [line for line in encoded if line]
    checksum = None
    if encoded and encoded[-1].startswith(b"=") and len(encoded[-1]) == 5:
        checksum = encoded.pop()[1:]
    joined = b"".join(encoded)
    if not joined:
        raise MalformedMessage("the armored message is empty")
    if not _BASE64.fullmatch(joined) or len(joined) % 4:
        raise MalformedMessage("the armored message is not valid base64")
    try:
        packets = base64.b64decode(joined, validate=True)
    except binascii.Error:
        raise MalformedMessage("the armored message is not valid base64") from None
    if checksum is not None:
        try:
            expected = int.from_bytes(base64.b64decode(checksum, validate=True), "big")
        except binascii.Error:
            raise MalformedMessage("the armor's checksum line is not valid base64") from None
        if crc24(packets) != expected:
            raise MalformedMessage(
                "the armor's checksum does not match: the message was damaged on the way"
            )
    return packets


def _is_armor_header(line: bytes) -> bool:
    # GnuPG's rule: a colon, followed by a space or by the end of the line.
    key, colon, rest = line.partition(b":")
    return bool(key and colon) and (not rest or rest.startswith(b" "))


def read_packets(
    packets: bytes, *, max_session_keys: int = MAX_SESSION_KEY_PACKETS
) -> MessageShape:
    """Walk the top-level packet headers of a binary message.

    Raises:
        MalformedMessage, TooManySessionKeys: see :func:`read_encrypted_message`.
    """
    counts = {PKESK: 0, SKESK: 0}
    position = 0
    while True:
        if position >= len(packets):
            raise MalformedMessage("the message ends before its encrypted data")
        tag, position = _skip_packet(packets, position)
        if tag in counts:
            counts[tag] += 1
            if counts[PKESK] + counts[SKESK] > max_session_keys:
                raise TooManySessionKeys(max_session_keys)
        elif tag == MARKER:
            continue
        elif tag in ENCRYPTED_DATA:
            break
        else:
            raise MalformedMessage(
                "the message is not encrypted to a key: it must be session keys followed by "
                "encrypted data (gpg --sign --encrypt)"
            )
    if position != len(packets):
        raise MalformedMessage("data follows the encrypted message: send one message only")
    if counts[PKESK] + counts[SKESK] == 0:
        raise MalformedMessage("the message has no session key: encrypt it to the intake key")
    return MessageShape(public_key_session_keys=counts[PKESK], symmetric_session_keys=counts[SKESK])


def _skip_packet(packets: bytes, position: int) -> tuple[int, int]:
    """The tag of the packet at ``position`` and where the next one starts."""
    header = packets[position]
    if not header & 0x80:
        raise MalformedMessage("the body is not OpenPGP data (no packet header)")
    position += 1
    if header & 0x40:  # new format: tag in the low six bits, lengths that may come in parts
        tag = header & 0x3F
        chunks = 0
        while True:
            length, partial, position = _new_format_length(packets, position)
            position = _advance(packets, position, length)
            if not partial:
                break
            chunks += 1
            if tag not in _PARTIAL_ALLOWED or chunks > _MAX_CHUNKS:
                raise MalformedMessage("a packet of the message is not well formed")
    else:  # old format: tag in bits 5-2, the length's width in bits 1-0
        tag = (header >> 2) & 0x0F
        kind = header & 0x03
        if kind == 3:  # indeterminate: to the end of the message
            length = len(packets) - position
        else:
            width = (1, 2, 4)[kind]
            length = int.from_bytes(_take(packets, position, width), "big")
            position += width
        position = _advance(packets, position, length)
    if tag == 0:
        raise MalformedMessage("a packet of the message has the reserved tag 0")
    return tag, position


def _new_format_length(packets: bytes, position: int) -> tuple[int, bool, int]:
    first = _take(packets, position, 1)[0]
    if first < 192:
        return first, False, position + 1
    if first < 224:
        second = _take(packets, position + 1, 1)[0]
        return ((first - 192) << 8) + second + 192, False, position + 2
    if first < 255:
        return 1 << (first & 0x1F), True, position + 1
    return int.from_bytes(_take(packets, position + 1, 4), "big"), False, position + 5


def _take(packets: bytes, position: int, count: int) -> bytes:
    if position + count > len(packets):
        raise MalformedMessage("the message is cut short")
    return packets[position : position + count]


def _advance(packets: bytes, position: int, length: int) -> int:
    if position + length > len(packets):
        raise MalformedMessage("the message is cut short")
    return position + length


def _crc24_table() -> tuple[int, ...]:
    table = []
    # A 257th entry would never be read (crc24 indexes with two bytes XORed).
    for byte in range(256):  # pragma: no mutate
        crc = byte << 16
        for _ in range(8):
            crc = (crc << 1) ^ 0x1864CFB if crc & 0x800000 else crc << 1
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()


def crc24(data: bytes) -> int:
    """The armor checksum (RFC 4880 section 6.1); ~0.4 s for the largest tip on one core."""
    crc = 0xB704CE
    table = _CRC24_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[(crc >> 16) ^ byte]
    return crc
