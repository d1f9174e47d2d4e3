"""Tips sent over HTTP, processed by a real `tipline worker` process, followed over HTTP."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from referrals.database import Base
from referrals.intake.models import Tip, TipSelector
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import (
    NARRATIVE_MARK,
    SELECTOR_MARKS,
    PartnerKeys,
    armor,
    split_first_packet,
    valid_tip,
)
from tests.support import run_tipline, tipline_env
from tipline.config import Settings
from tipline.runtime import Runtime

PGP = "application/pgp-encrypted"


def send(client: FlaskClient, agency: RegisteredAgency, body: bytes) -> str:
    response = client.post("/api/v1/tips", data=body, content_type=PGP, headers=agency.headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return str(response.get_json()["id"])


def status_of(client: FlaskClient, agency: RegisteredAgency, tip_id: str) -> dict[str, str]:
    response = client.get(f"/api/v1/tips/{tip_id}", headers=agency.headers)
    assert response.status_code == 200
    return dict(response.get_json())


@pytest.mark.slow
def test_a_worker_process_accepts_good_tips_and_rejects_each_bad_one_with_a_reason(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    settings: Settings,
    runtime: Runtime,
) -> None:
    intake = intake_keyring.fingerprint
    stranger = partners.fingerprints["stranger"]
    a, b = agencies["agency-a"], agencies["agency-b"]
    no_narrative = valid_tip()
    del no_narrative["narrative"]
    with_names = valid_tip(victims=[{"approx_age": 7, "sex": "female", "name": "Maria"}])
    packets = partners.seal(valid_tip(), recipient=intake, signer="agency-a", armored=False)
    damaged = bytearray(packets)
    damaged[len(damaged) // 2] ^= 0x5A
    session_key, rest = split_first_packet(packets)
    bogus = bytearray(session_key)
    bogus[20] ^= 0xFF
    cases = {
        "valid": (partners.seal(valid_tip(), recipient=intake, signer="agency-a"), "in_triage", ""),
        "unsigned": (
            partners.seal(valid_tip(), recipient=intake, signer=None),
            "rejected",
            "not signed",
        ),
        "signed by an unknown key": (
            partners.seal(valid_tip(), recipient=intake, signer="stranger"),
            "rejected",
            "not pinned to your agency",
        ),
        "signed by another agency's key": (
            partners.seal(valid_tip(), recipient=intake, signer="agency-b"),
            "rejected",
            "not pinned to your agency",
        ),
        "encrypted to another key": (
            partners.seal(valid_tip(), recipient=stranger, signer="agency-a"),
            "rejected",
            f"not encrypted to the intake key {intake}",
        ),
        "armored garbage": (
            b"-----BEGIN PGP MESSAGE-----\n\nbm90IHJlYWxseQ==\n=abcd\n-----END PGP MESSAGE-----\n",
            "rejected",
            "not an OpenPGP message",
        ),
        "not JSON inside": (
            partners.seal(b"Dear colleagues, please find", recipient=intake, signer="agency-a"),
            "rejected",
            "schema error at /",
        ),
        "wrong schema: no narrative": (
            partners.seal(no_narrative, recipient=intake, signer="agency-a"),
            "rejected",
            "schema error at /narrative",
        ),
        "wrong schema: a victim's name": (
            partners.seal(with_names, recipient=intake, signer="agency-a"),
            "rejected",
            "schema error at /victims/0/name",
        ),
        # Poison tips that once stayed `processing` for ever, retried and swept again.
        "damaged ciphertext": (armor(bytes(damaged)), "rejected", "could not be decrypted"),
        "reported in year 1 east of UTC": (
            partners.seal(
                valid_tip(reported_at="0001-01-01T00:30:00+01:00"),
                recipient=intake,
                signer="agency-a",
            ),
            "rejected",
            "schema error at /reported_at",
        ),
        "thousands of offence types": (
            partners.seal(
                valid_tip(offence_types=[{"n": n} for n in range(20_000)]),
                recipient=intake,
                signer="agency-a",
            ),
            "rejected",
            "schema error at /offence_types: must list at most 10 items",
        ),
        "thousands of session keys": (
            armor(bytes(bogus) * 2000 + packets),
            "rejected",
            "more than 8 session-key packets",
        ),
    }
    sent = {name: send(client, a, body) for name, (body, _, _) in cases.items()}
    b_tip = send(client, b, partners.seal(valid_tip(), recipient=intake, signer="agency-b"))

    worker = run_tipline("worker", "--burst", env=tipline_env(settings))
    assert worker.returncode == 0, worker.stderr

    for name, (_, expected_status, reason) in cases.items():
        status = status_of(client, a, sent[name])
        assert status["status"] == expected_status, (name, status)
        if reason:
            assert reason in status["reason"], (name, status["reason"])
        else:
            assert status["reason"] is None
        assert "Maria" not in (status["reason"] or "")
    assert status_of(client, b, b_tip)["status"] == "in_triage"
    # Agency B's tip is not A's to see, even processed.
    assert client.get(f"/api/v1/tips/{b_tip}", headers=a.headers).status_code == 404

    with runtime.session_factory() as session:
        tip = session.get(Tip, sent["valid"])
        assert tip is not None
        assert (tip.imminent_danger, tip.ongoing_abuse, tip.live_streaming) == (True, True, True)
        assert (tip.country, tip.region) == ("PH", "Central Luzon")
        assert tip.offence_types == ["live_streaming_abuse", "csam_production", "trafficking"]
        assert (tip.victim_count, tip.youngest_victim_age) == (4, 2)
        assert (tip.tlp, tip.handling_code) == ("AMBER+STRICT", "H2")
        assert tip.signed_by == partners.fingerprints["agency-a"]
        selectors = session.scalars(select(TipSelector).where(TipSelector.tip_id == tip.id))
        assert {s.selector_type for s in selectors} == {
            "username",
            "phone",
            "email",
            "payment_account",
            "ip",
            "device_id",
            "url",
        }


@pytest.mark.slow
def test_nothing_of_a_tip_is_in_clear_in_the_database_redis_files_or_logs(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    settings: Settings,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    a = agencies["agency-a"]
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip_id = send(client, a, body)
    attachment = partners.gpg(
        "--encrypt",
        "--recipient",
        intake_keyring.fingerprint,
        stdin=f"photo of {NARRATIVE_MARK} {SELECTOR_MARKS[0]}".encode(),
    )
    attached = client.post(
        f"/api/v1/tips/{tip_id}/attachments", data=attachment, content_type=PGP, headers=a.headers
    )
    assert attached.status_code == 201
    redis_before_work = _redis_dump(runtime)
    worker = run_tipline("worker", "--burst", env=tipline_env(settings, TIPLINE_LOG_LEVEL="DEBUG"))
    assert worker.returncode == 0, worker.stderr
    assert status_of(client, a, tip_id)["status"] == "in_triage"

    haystacks = {
        "database": _database_dump(runtime),
        "redis before the worker ran": redis_before_work,
        "redis after": _redis_dump(runtime),
        "files in the home and storage": _files_dump(settings.home),
        "logs of this process": caplog.text.encode(),
        "logs of the worker": (worker.stdout + worker.stderr).encode(),
    }
    needles = [NARRATIVE_MARK, *SELECTOR_MARKS, "sunnyday88".upper()]
    for where, haystack in haystacks.items():
        assert haystack, where  # each place was really looked at
        lowered = haystack.lower()
        for needle in needles:
            assert needle.lower().encode() not in lowered, f"{needle!r} in clear in the {where}"


def _database_dump(runtime: Runtime) -> bytes:
    parts = []
    with runtime.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(text(f"SELECT * FROM {table.name}")):  # noqa: S608
                parts.append(repr(tuple(row)).encode())
    return b"\n".join(parts)


def _redis_dump(runtime: Runtime) -> bytes:
    parts = []
    for key in runtime.redis.scan_iter():
        parts.append(key)
        kind = runtime.redis.type(key)
        if kind == b"string":
            parts.append(runtime.redis.get(key) or b"")
        elif kind == b"hash":
            for field, value in runtime.redis.hgetall(key).items():
                parts.extend((field, _maybe_unzip(value)))
        elif kind == b"list":
            parts.extend(runtime.redis.lrange(key, 0, -1))
        elif kind == b"set":
            parts.extend(runtime.redis.smembers(key))
        elif kind == b"zset":
            parts.extend(member for member, _ in runtime.redis.zrange(key, 0, -1, withscores=True))
    return b"\n".join(parts)


def _maybe_unzip(value: bytes) -> bytes:
    import zlib

    try:
        return zlib.decompress(value)
    except zlib.error:
        return value


def _files_dump(folder: Path) -> bytes:
    return b"\n".join(
        p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_socket()
    )


@pytest.mark.slow
def test_a_worker_sweeps_up_a_tip_whose_job_redis_lost(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    settings: Settings,
    runtime: Runtime,
) -> None:
    a = agencies["agency-a"]
    tip_id = send(
        client,
        a,
        partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"),
    )
    runtime.redis.flushdb()  # Redis restarted with nothing: the receipt stands, the job is gone

    worker = run_tipline("worker", "--burst", "--sweep-grace", "0", env=tipline_env(settings))

    assert worker.returncode == 0, worker.stderr
    assert status_of(client, a, tip_id)["status"] == "in_triage"


# Processes one tip in a process of its own, built as a worker builds itself, and reports how
# far processing raised the process's peak memory (the imports alone take ~150 MiB).
PROCESS_ONE_TIP = """
import json, resource, sys
from referrals.intake.processing import TipProcessor
from tipline.config import Settings
from tipline.runtime import Runtime
rt = Runtime.build(Settings.from_environment())
processor = TipProcessor(
    rt.session_factory, keyring=rt.keyring, blind_index=rt.blind_index,
    audit_key=rt.audit_key, clock=rt.clock,
)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
status = processor.process(sys.argv[1])
grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
rt.close()
print(json.dumps({"status": status, "peak_grew_mib": grown_mib}))
"""


@pytest.mark.slow
def test_a_compression_bomb_is_rejected_without_filling_the_workers_memory(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    settings: Settings,
) -> None:
    a = agencies["agency-a"]
    bomb = partners.seal(
        bytes(200 * 1024 * 1024),
        recipient=intake_keyring.fingerprint,
        signer="agency-a",
        options=("--compress-level", "9"),
    )
    assert len(bomb) < 1024 * 1024  # 200 MiB of zeros in a few hundred KB
    tip_id = send(client, a, bomb)

    ran = subprocess.run(
        [sys.executable, "-c", PROCESS_ONE_TIP, tip_id],
        env=tipline_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    outcome = json.loads(ran.stdout)
    assert outcome["status"] == "rejected"
    assert outcome["peak_grew_mib"] < 64, outcome  # 200 MiB decompressed, were it read
    assert "larger than 5 MiB" in status_of(client, a, tip_id)["reason"]
