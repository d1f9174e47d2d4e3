"""Two centres side by side, each with its own home, database, Redis, server and worker, and
nothing between them but the documented CLI and HTTP: the sending centre registers the other
as an agency and connects to its API with the token it issued; a referral's package is
exported, delivered by the sender's worker, taken in by the receiver as an ordinary tip from
the sending centre; the receiver's lead releases feedback, and the sender's poll brings it
back onto the referral. Each side opens what it received with the `gpg` command line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from referrals.accounts.models import User
from referrals.casework.models import Referral
from referrals.feedback.services import FeedbackDesk
from referrals.intake.models import Agency, Tip, TipCiphertext
from referrals.onward.models import OnwardPackage, ReceivedFeedback
from referrals.onward.services import OnwardPackages
from referrals.triage.desk import TriageDesk
from tests.conftest import REDIS_URL, DatabaseFactory
from tests.functional.test_two_hosts import send, status, wait_until_up
from tests.partners import PartnerKeys, valid_tip
from tests.support import add_agency, free_port, run_tipline
from tipline.config import Settings
from tipline.instance import INTAKE_KEY_PASSPHRASE
from tipline.runtime import Runtime

FEEDBACK = "Received from your centre: an operation in Chiang Mai safeguarded two children."


@dataclass
class Centre:
    name: str
    env: dict[str, str]
    gnupg: Path
    port: int = 0
    server: subprocess.Popen[str] | None = None

    def tipline(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = run_tipline(*args, env=self.env)
        assert done.returncode == 0, f"{self.name}: tipline {' '.join(args)}: {done.stderr}"
        return done

    def runtime(self) -> Runtime:
        return Runtime.build(Settings.from_environment(self.env))

    def intake_fingerprint(self, armored: str) -> str:
        listing = subprocess.run(
            ["gpg", "--with-colons", "--import-options", "show-only", "--import"],  # noqa: S607
            input=armored,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")

    def gpg_decrypt(self, armored: bytes) -> tuple[bytes, str]:
        """This centre's own gpg, with its intake key's passphrase: not the project's code."""
        passphrase = Path(self.env["TIPLINE_HOME"]) / "secrets" / INTAKE_KEY_PASSPHRASE
        done = subprocess.run(
            [
                "gpg",
                "--homedir",
                str(self.gnupg),
                "--batch",
                "--pinentry-mode",
                "loopback",  # noqa: S607
                "--passphrase-file",
                str(passphrase),
                "--status-fd",
                "2",
                "--decrypt",
            ],
            input=armored,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return done.stdout, done.stderr.decode()


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Short paths for both centres' GnuPG homes (gpg-agent's socket)."""
    parent = Path(tempfile.mkdtemp(prefix="tl-2c-", dir="/tmp"))
    yield parent
    for home in parent.glob("gnupg-*"):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],  # noqa: S607
            check=False,
            capture_output=True,
        )
    shutil.rmtree(parent, ignore_errors=True)


def centre(
    name: str, tmp_path: Path, scratch: Path, databases: DatabaseFactory, redis_db: int
) -> Centre:
    home = tmp_path / name
    gnupg = scratch / f"gnupg-{name}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env = dict(
        base,
        TIPLINE_HOME=str(home),
        TIPLINE_GNUPG_HOME=str(gnupg),
        TIPLINE_DATABASE_URL=databases.new_url(),
    )
    if REDIS_URL:
        # The suite's Redis server, a database of each centre's own: their queues never mix.
        env["TIPLINE_REDIS_URL"] = f"{REDIS_URL.rsplit('/', 1)[0]}/{redis_db}"
    found = Centre(name, env, gnupg)
    found.tipline("init")
    return found


def start(found: Centre) -> None:
    found.port = free_port()
    found.env["TIPLINE_BASE_URL"] = f"http://127.0.0.1:{found.port}"
    found.server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tipline",
            "serve",
            "--bind",
            f"127.0.0.1:{found.port}",
            "--workers",
            "0",
        ],
        env=found.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_until_up(found.port)


def staff(found: Centre, country: str) -> tuple[int, int]:
    """A team covering ``country`` with an analyst and a lead (their ids), made by the CLI."""
    found.tipline("team", "add", "--name", f"{found.name} team", "--country", country)
    ids = []
    for role in ("analyst", "lead"):
        added = found.tipline(
            "user",
            "add",
            "--email",
            f"{role}@{found.name}.example",
            "--role",
            role,
            "--team",
            f"{found.name} team",
            "--json",
        )
        ids.append(int(json.loads(added.stdout)["id"]))
    return ids[0], ids[1]


@pytest.mark.slow
def test_a_package_crosses_to_another_centre_and_its_feedback_comes_back(
    tmp_path: Path, scratch: Path, databases: DatabaseFactory
) -> None:
    sender = centre("manila", tmp_path, scratch, databases, redis_db=13)
    receiver = centre("bangkok", tmp_path, scratch, databases, redis_db=14)
    partner = PartnerKeys()
    try:
        start(sender)
        start(receiver)
        sender_key = sender.tipline("intake-key").stdout
        receiver_key = receiver.tipline("intake-key").stdout
        (tmp_path / "manila.asc").write_text(sender_key)
        (tmp_path / "bangkok.asc").write_text(receiver_key)
        # Each centre registers the other as an agency, pinned to its intake key.
        at_receiver = add_agency(
            receiver.env, tmp_path / "manila.asc", name="Manila centre", country="PH"
        )
        add_agency(sender.env, tmp_path / "bangkok.asc", name="Bangkok centre", country="TH")
        token_file = tmp_path / "token"
        token_file.write_text(str(at_receiver["token"]))
        connected = sender.tipline(
            "agency",
            "connect",
            "Bangkok centre",
            "--url",
            receiver.env["TIPLINE_BASE_URL"],
            "--token-file",
            str(token_file),
        )
        assert "packages go to http://127.0.0.1:" in connected.stdout
        token_file.unlink()

        # A partner of the sender reports a tip about Thailand: no team of the sender covers
        # it (the unrouted, onward-referral list), and its lead takes it on to send it on.
        partner.trust_recipient(sender_key.encode())
        partner.generate("agency")
        (tmp_path / "partner.asc").write_bytes(partner.public_key("agency"))
        partner_at_sender = add_agency(
            sender.env, tmp_path / "partner.asc", name="NCA", country="GB"
        )
        _analyst, lead = staff(sender, "PH")
        receiver_analyst, receiver_lead = staff(receiver, "TH")
        sealed = partner.seal(
            valid_tip(
                handling={"tlp": "AMBER"}, location={"country": "TH", "region": "Chiang Mai"}
            ),
            recipient=sender.intake_fingerprint(sender_key),
            signer="agency",
        )
        send(sender.port, str(partner_at_sender["token"]), sealed)
        sender.tipline("worker", "--burst")

        runtime = sender.runtime()
        try:
            with runtime.session_factory() as session:
                tip_id = session.scalars(select(Tip.id)).one()
                person = session.get(User, lead)
                referral = TriageDesk(
                    session, audit=runtime.audit(session), clock=runtime.clock
                ).accept(person, tip_id, address=None)
                referral_id, reference = referral.id, referral.reference
                bangkok = session.scalars(
                    select(Agency.id).where(Agency.name == "Bangkok centre")
                ).one()
                OnwardPackages(
                    session,
                    audit=runtime.audit(session),
                    clock=runtime.clock,
                    keyring=runtime.keyring,
                    queue=runtime.queue,
                ).export(
                    session.get(User, lead),
                    referral_id,
                    bangkok,
                    "A facilitator streams abuse from Chiang Mai.",
                    address=None,
                )
        finally:
            runtime.close()

        # The sender's worker delivers it; the receiver's worker takes it in as a tip.
        sender.tipline("worker", "--burst")
        receiver.tipline("worker", "--burst")
        runtime = sender.runtime()
        try:
            with runtime.session_factory() as session:
                package = session.scalars(select(OnwardPackage)).one()
                assert package.status == "delivered", package.fault
                remote_tip_id = str(package.remote_tip_id)
        finally:
            runtime.close()
        runtime = receiver.runtime()
        try:
            with runtime.session_factory() as session:
                tip = session.get(Tip, remote_tip_id)
                assert tip is not None and tip.status == "in_triage", tip and tip.reason
                manila = session.scalars(
                    select(Agency.id).where(Agency.name == "Manila centre")
                ).one()
                assert tip.agency_id == manila
                armored = session.scalars(
                    select(TipCiphertext.armored).where(TipCiphertext.tip_id == tip.id)
                ).one()
                # The receiver's own gpg opens it and finds the sending centre's signature.
                plaintext, lines = receiver.gpg_decrypt(armored)
                assert f"[GNUPG:] VALIDSIG {sender.intake_fingerprint(sender_key)}" in lines
                document = json.loads(plaintext)
                assert document["external_reference"] == f"{reference}/1"
                assert document["handling"]["tlp"] == "AMBER"
                # Its team takes it on and its lead releases feedback to the sending centre.
                taken = TriageDesk(
                    session, audit=runtime.audit(session), clock=runtime.clock
                ).accept(session.get(User, receiver_analyst), tip.id, address=None)
                desk = FeedbackDesk(
                    session,
                    audit=runtime.audit(session),
                    clock=runtime.clock,
                    keyring=runtime.keyring,
                )
                person = session.get(User, receiver_lead)
                shown = desk.draft(person, taken.id, manila, FEEDBACK, include_outcome=False)
                desk.release(
                    person,
                    taken.id,
                    manila,
                    FEEDBACK,
                    include_outcome=False,
                    version=shown.version,
                    address=None,
                )
        finally:
            runtime.close()

        # The sender fetches it (as its workers do every minute) onto the referral.
        polled = sender.tipline("agency", "poll")
        assert polled.stdout.strip() == "1 new feedback, 1 statuses changed"
        runtime = sender.runtime()
        try:
            with runtime.session_factory() as session:
                [entry] = OnwardPackages(
                    session,
                    audit=runtime.audit(session),
                    clock=runtime.clock,
                    keyring=runtime.keyring,
                ).for_referral(session.get(Referral, referral_id))
                assert entry.package.remote_status == "accepted"
                [(received, opened)] = entry.feedback
                assert opened is not None and opened["text"] == FEEDBACK
                stored = session.scalars(select(ReceivedFeedback.armored)).one()
        finally:
            runtime.close()
        plaintext, lines = sender.gpg_decrypt(stored)
        assert f"[GNUPG:] VALIDSIG {sender.intake_fingerprint(receiver_key)}" in lines
        assert json.loads(plaintext)["text"] == FEEDBACK
        # The partner that sent the tip still sees its own tip, accepted, at the sender.
        assert status(sender.port, str(partner_at_sender["token"]), tip_id)["status"] == "accepted"
    finally:
        partner.close()
        for found in (sender, receiver):
            if found.server is not None:
                found.server.send_signal(signal.SIGTERM)
                output, _ = found.server.communicate(timeout=60)
                assert "Traceback" not in output, output
        if REDIS_URL:
            for db in (13, 14):
                redis.Redis.from_url(f"{REDIS_URL.rsplit('/', 1)[0]}/{db}").flushdb()
