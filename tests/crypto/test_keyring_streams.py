"""Decrypting a large file as a stream: the plaintext comes out in chunks, never whole in memory
nor on disk; a damaged file, or one past the limit, ends the stream with an error."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crypto import (
    DecryptError,
    GnuPGError,
    Keyring,
    MalformedMessage,
    PlaintextTooLarge,
    SecretKeyLocked,
    TooManySessionKeys,
)
from tests.crypto.conftest import Intake, Partners, gpg
from tests.support import PATIENCE, gpg_wrapper, hang_guard

MIB = 1024 * 1024
CHUNK = 64 * 1024
NOT_DECRYPTED = r"^the file could not be decrypted \(corrupt, tampered, or not ours\)$"


def sealed_file(
    folder: Path, partners: Partners, intake: Intake, payload: bytes, *, signer: str | None = None
) -> Path:
    """A file as a partner sends it: `gpg --encrypt` to the intake key, binary (signed by
    ``signer`` too, when given)."""
    plain = folder / "evidence.bin"
    plain.write_bytes(payload)
    sealed = folder / "evidence.bin.pgp"
    signing = ["--sign", "--local-user", signer] if signer else []
    gpg(
        partners.home,
        "--trust-model", "always", "--compress-algo", "none", *signing,
        "--encrypt", "--recipient", intake.fingerprint,
        "--output", str(sealed), str(plain),
    )  # fmt: skip
    plain.unlink()
    return sealed


def fake_gpg(folder: Path, decrypt: str) -> tuple[str, Path]:
    """A `gpg` that runs the real one, except that a decryption runs the shell lines
    ``decrypt`` instead, in the process started for it: to use as ``gpg_binary``.

    Returns:
        The script's path and the file the decrypting process writes its PID to.
    """
    real = shutil.which("gpg")
    assert real is not None
    pid_file = folder / "decrypting-gpg.pid"
    script = folder / "gpg"
    script.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" --decrypt "*)\n echo $$ > "{pid_file}"\n{decrypt}\n exit;;\nesac\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o700)
    return str(script), pid_file


def real_gpg_recording_its_pid(folder: Path) -> tuple[str, Path]:
    """The real `gpg`, whose decrypting process writes its PID to a file first."""
    real = shutil.which("gpg")
    assert real is not None
    return fake_gpg(folder, f'exec "{real}" "$@"')


def eventually(condition: Callable[[], bool], *, seconds: float = PATIENCE) -> bool:
    """Whether ``condition`` comes true within ``seconds``, a generous bound (a hang guard,
    not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def running(pid: int) -> bool:
    """Whether process ``pid`` exists (a finished process not yet reaped is a zombie, which
    still does)."""
    return Path(f"/proc/{pid}").exists()


def written_by(pid: int) -> int:
    """How many bytes process ``pid`` has written so far."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar line in /proc/<pid>/io")


def written_once_blocked(pid: int, *, limit: int) -> int:
    """What process ``pid`` has written once it stops writing (blocked on a full pipe: its
    output unchanged for 2 s, four times the stream's retry interval), or as soon as that
    passes ``limit``."""
    last, since = -1, time.monotonic()
    with hang_guard(PATIENCE):
        while True:
            written = written_by(pid)
            if written > limit:
                return written
            if written != last:
                last, since = written, time.monotonic()
            elif time.monotonic() - since >= 2:
                return written
            time.sleep(0.1)


@pytest.fixture
def stop_strays() -> Iterator[Callable[[Path, str], None]]:
    """Register (PID file, command name) pairs: a process still running at the end of the test
    is killed, so that a failing test leaves nothing behind."""
    registered: list[tuple[Path, str]] = []
    yield lambda pid_file, name: registered.append((pid_file, name))
    for pid_file, name in registered:
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                os.kill(pid, signal.SIGKILL)


def session_key_and_rest(sealed: Path) -> tuple[bytes, bytes]:
    """A sealed file's first packet (its one session key) and the packets after it."""
    data = sealed.read_bytes()
    ctb = data[0]
    width = {0: 1, 1: 2, 2: 4}[ctb & 0x03]
    end = 1 + width + int.from_bytes(data[1 : 1 + width], "big")
    return data[:end], data[end:]


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
    with pytest.raises(DecryptError, match=NOT_DECRYPTED):
        for _ in intake.keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB):
            pass


@pytest.mark.parametrize("exit_status", [None, 1], ids=["gpg's own status", "status 1"])
def test_more_than_the_limit_ends_the_stream_with_an_error(
    tmp_path: Path, partners: Partners, intake: Intake, exit_status: int | None
) -> None:
    """Whatever failing status gpg exits with (2 for GnuPG 2.2; 1 is its "bad signature")."""
    sealed = sealed_file(tmp_path, partners, intake, os.urandom(2 * MIB))
    wrapper, _ = gpg_wrapper(tmp_path, exit_after_decrypt=exit_status)
    keyring = Keyring(intake.home, gpg_binary=wrapper, passphrase=intake.passphrase)
    received = 0
    with pytest.raises(PlaintextTooLarge, match=r"^the decrypted file exceeds 1048576 bytes$"):
        for chunk in keyring.decrypt_file_stream(sealed, max_bytes=MIB):
            received += len(chunk)
    assert received <= MIB


def test_a_file_not_for_us_is_refused(
    tmp_path: Path, partners: Partners, intake: Intake, empty_keyring: Keyring
) -> None:
    sealed = sealed_file(tmp_path, partners, intake, b"for the centre only")
    with pytest.raises(DecryptError, match=NOT_DECRYPTED):
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
    session_key, encrypted = session_key_and_rest(sealed)
    many = tmp_path / "many.pgp"
    many.write_bytes(session_key * 9 + encrypted)
    with pytest.raises(TooManySessionKeys):
        next(intake.keyring.decrypt_file_stream(many, max_bytes=MIB))
    clear = tmp_path / "clear.pgp"
    clear.write_bytes(session_key + bytes([0xC0 | 11, 12]) + b"b\x00\x00\x00\x00\x00secret")
    with pytest.raises(MalformedMessage):
        next(intake.keyring.decrypt_file_stream(clear, max_bytes=MIB))


def test_a_keyrings_own_limit_on_session_keys_applies_to_files(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    """A keyring made with a lower limit than the default refuses a file past it, before gpg
    runs and before any byte is given out."""
    session_key, encrypted = session_key_and_rest(
        sealed_file(tmp_path, partners, intake, b"evidence")
    )
    three = tmp_path / "three.pgp"
    three.write_bytes(session_key * 3 + encrypted)
    wrapper, calls = gpg_wrapper(tmp_path)
    keyring = Keyring(
        intake.home, gpg_binary=wrapper, passphrase=intake.passphrase, max_session_keys=2
    )

    with pytest.raises(TooManySessionKeys) as caught:
        next(keyring.decrypt_file_stream(three, max_bytes=MIB))

    assert str(caught.value) == (
        "the message carries more than 2 session-key packets (one per recipient): "
        "encrypt it to the intake key and at most a few other keys"
    )
    assert "--decrypt" not in calls.read_text()


def test_a_wrong_passphrase_is_reported_as_a_locked_key(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    """A server configuration fault, told apart from a bad file: nothing is given out."""
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    keyring = Keyring(intake.home, passphrase="not the intake passphrase")

    with pytest.raises(
        SecretKeyLocked, match=r"^the intake key could not be unlocked \(check its passphrase\)$"
    ):
        next(keyring.decrypt_file_stream(sealed, max_bytes=MIB))


def test_a_file_signed_by_a_key_we_do_not_hold_is_decrypted_whole(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    """gpg exits with an error when it cannot check a signature, but the file decrypted
    intact: a file's signature is not what the stream vouches for."""
    payload = os.urandom(MIB)
    sealed = sealed_file(tmp_path, partners, intake, payload, signer=partners.stranger_fingerprint)

    assert b"".join(intake.keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB)) == payload


@pytest.mark.parametrize("exit_status", [None, 1], ids=["gpg's own status", "status 1"])
def test_a_file_hiding_a_tampered_message_ends_the_stream_with_an_error(
    tmp_path: Path, partners: Partners, intake: Intake, exit_status: int | None
) -> None:
    """The outer layer decrypts intact, the message inside it does not: gpg reports both, and
    what was streamed must be abandoned (whatever failing status gpg exits with)."""
    inner = sealed_file(tmp_path, partners, intake, os.urandom(MIB))
    damaged = bytearray(inner.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    inner.write_bytes(bytes(damaged))
    outer = tmp_path / "outer.pgp"
    # --no-literal: the damaged message goes in as it is, packets and all, not as file data.
    gpg(
        partners.home,
        "--trust-model", "always", "--compress-algo", "none", "--no-literal",
        "--encrypt", "--recipient", intake.fingerprint, "--output", str(outer), str(inner),
    )  # fmt: skip
    wrapper, _ = gpg_wrapper(tmp_path, exit_after_decrypt=exit_status)
    keyring = Keyring(intake.home, gpg_binary=wrapper, passphrase=intake.passphrase)

    with pytest.raises(
        DecryptError, match=r"^the file could not be decrypted \(corrupt or tampered\)$"
    ):
        for _ in keyring.decrypt_file_stream(outer, max_bytes=10 * MIB):
            pass


@pytest.mark.parametrize("when", ["before the call", "as the call starts"])
def test_gpg_that_cannot_be_run_is_a_gnupg_error(
    tmp_path: Path, partners: Partners, intake: Intake, when: str
) -> None:
    """gpg removed (an upgrade, say) before a download, or between the version check a
    download starts with and the decryption: a fault of the server, with the reason kept."""
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    real = shutil.which("gpg")
    removing = tmp_path / "remove-gpg"
    script = tmp_path / "gpg"
    script.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" --list-config "*) [ -e "{removing}" ] && rm "$0";; esac\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o700)
    keyring = Keyring(intake.home, gpg_binary=str(script), passphrase=intake.passphrase)
    if when == "before the call":
        script.unlink()
    else:
        removing.touch()

    with pytest.raises(GnuPGError, match=r"^gpg could not be run$") as caught:
        next(keyring.decrypt_file_stream(sealed, max_bytes=MIB))

    assert isinstance(caught.value.__cause__, OSError)
    assert not script.exists()


def test_gpg_that_says_nothing_is_a_gnupg_error(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    """A gpg that reads the file and exits without a word has vouched for nothing."""
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    script, _ = fake_gpg(tmp_path, " cat > /dev/null")
    keyring = Keyring(intake.home, gpg_binary=script, passphrase=intake.passphrase)

    with pytest.raises(GnuPGError, match=r"^gpg gave no answer$"):
        next(keyring.decrypt_file_stream(sealed, max_bytes=MIB))


def test_gpg_that_stalls_ends_the_stream_with_an_error_and_is_stopped(
    tmp_path: Path,
    partners: Partners,
    intake: Intake,
    monkeypatch: pytest.MonkeyPatch,
    stop_strays: Callable[[Path, str], None],
) -> None:
    """A gpg (or its agent) that stops producing output mid-file: the reader gives up after
    the stream's patience (shortened here) instead of waiting for ever, and gpg is stopped."""
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    script, pid_file = fake_gpg(tmp_path, " printf x\n exec sleep 600")
    stop_strays(pid_file, "sleep")
    keyring = Keyring(intake.home, gpg_binary=script, passphrase=intake.passphrase)
    stream = keyring.decrypt_file_stream(sealed, max_bytes=MIB, chunk_bytes=1)
    assert next(stream) == b"x"
    monkeypatch.setattr("crypto.keyring.PATIENT_SECONDS", 1)

    with hang_guard(60), pytest.raises(GnuPGError, match=r"^gpg stopped producing output$"):
        next(stream)

    stalled = int(pid_file.read_text())
    assert eventually(lambda: not running(stalled))


def test_gpg_that_never_finishes_its_report_is_a_gnupg_error(
    tmp_path: Path,
    partners: Partners,
    intake: Intake,
    monkeypatch: pytest.MonkeyPatch,
    stop_strays: Callable[[Path, str], None],
) -> None:
    """gpg's output ends but its report never does (a process it started keeps the report
    open): the reader gives up after the stream's patience (shortened here) rather than
    waiting for ever for a verdict."""
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    holder = tmp_path / "holder.pid"
    script, _ = fake_gpg(
        tmp_path, f' printf x\n exec >&-\n sleep 600 < /dev/null &\n echo $! > "{holder}"'
    )
    stop_strays(holder, "sleep")
    keyring = Keyring(intake.home, gpg_binary=script, passphrase=intake.passphrase)
    stream = keyring.decrypt_file_stream(sealed, max_bytes=MIB, chunk_bytes=1)
    assert next(stream) == b"x"
    monkeypatch.setattr("crypto.keyring.PATIENT_SECONDS", 5)

    with hang_guard(60), pytest.raises(GnuPGError, match=r"^gpg gave no answer$"):
        next(stream)


def test_a_slow_reader_gets_every_byte_while_the_stream_holds_only_a_few_chunks(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    """A reader that pauses (a slow download): gpg waits for it, having written only a few
    chunks ahead, and nothing is lost however long the pause."""
    payload = os.urandom(16 * MIB)
    sealed = sealed_file(tmp_path, partners, intake, payload)
    script, pid_file = real_gpg_recording_its_pid(tmp_path)
    keyring = Keyring(intake.home, gpg_binary=script, passphrase=intake.passphrase)
    stream = keyring.decrypt_file_stream(sealed, max_bytes=32 * MIB)
    received = [next(stream)]

    assert written_once_blocked(int(pid_file.read_text()), limit=32 * CHUNK) <= 32 * CHUNK

    received.extend(stream)
    assert b"".join(received) == payload


def test_memory_use_stays_a_few_chunks_whatever_the_files_size(
    tmp_path: Path, partners: Partners, intake: Intake
) -> None:
    """The plaintext passes through: a 32 MiB file is streamed with a small fraction of that
    in memory at any time."""
    payload = os.urandom(32 * MIB)
    expected = hashlib.sha256(payload).digest()
    sealed = sealed_file(tmp_path, partners, intake, payload)
    del payload
    received = hashlib.sha256()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        for chunk in intake.keyring.decrypt_file_stream(sealed, max_bytes=64 * MIB):
            received.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not tracing:
            tracemalloc.stop()

    assert received.digest() == expected
    assert peak < 4 * MIB


def test_closing_the_stream_early_stops_gpg_and_leaves_nothing_running(
    tmp_path: Path,
    partners: Partners,
    intake: Intake,
    monkeypatch: pytest.MonkeyPatch,
    stop_strays: Callable[[Path, str], None],
) -> None:
    """The browser goes away while gpg waits for the reader (here a gpg whose output never
    ends, like a compression bomb's): gpg is stopped at once, and once the stream's patience
    (shortened here) has run out its threads are gone too, without an error."""
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    script, pid_file = fake_gpg(tmp_path, " exec cat /dev/zero")
    stop_strays(pid_file, "cat")
    keyring = Keyring(intake.home, gpg_binary=script, passphrase=intake.passphrase)
    before = set(threading.enumerate())
    stream = keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB)
    assert len(next(stream)) == CHUNK
    started = set(threading.enumerate()) - before
    endless = int(pid_file.read_text())
    assert written_once_blocked(endless, limit=32 * CHUNK) <= 32 * CHUNK
    monkeypatch.setattr("crypto.keyring.PATIENT_SECONDS", 1)
    failures: list[threading.ExceptHookArgs] = []
    previous_hook = threading.excepthook
    threading.excepthook = failures.append
    try:
        stream.close()

        assert eventually(lambda: not running(endless), seconds=60)
        assert eventually(lambda: not any(thread.is_alive() for thread in started), seconds=60)
    finally:
        threading.excepthook = previous_hook
    assert failures == []


def test_a_stream_does_not_hold_up_the_exit_of_its_process(
    tmp_path: Path,
    partners: Partners,
    intake: Intake,
    stop_strays: Callable[[Path, str], None],
) -> None:
    """A process may exit in the middle of a download (a web worker restarting): Python waits
    at exit for every thread that is not a daemon, and gpg here waits for the reader."""
    sealed = sealed_file(tmp_path, partners, intake, b"evidence")
    script, pid_file = fake_gpg(tmp_path, " exec cat /dev/zero")
    stop_strays(pid_file, "cat")
    keyring = Keyring(intake.home, gpg_binary=script, passphrase=intake.passphrase)
    before = set(threading.enumerate())
    stream = keyring.decrypt_file_stream(sealed, max_bytes=10 * MIB)
    try:
        next(stream)
        started = set(threading.enumerate()) - before

        assert started
        assert all(thread.daemon for thread in started)
    finally:
        # Whatever happens: left open, a stream whose thread is no daemon holds up the exit.
        stream.close()
