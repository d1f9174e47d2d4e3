"""Exporting a referral's package for another centre or agency, and what its recipient
answers.

A team lead exports (``OnwardPackages.export``): the referral's markings are checked for that
recipient first (``referrals.handling.check_leaving``); its tips are opened in memory, joined
into one ``tipline.tip/1`` document (``referrals.onward.package``), validated as the recipient
will validate it, signed with the intake key and encrypted to the recipient's key and to the
intake key; the export is audited and put on the referral's timeline. A recipient with an
endpoint (``Correspondent``) gets it delivered by a worker (``referrals.onward.delivery``);
another is given it by hand (the sealed file from the referral's page).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crypto import CryptoError, Keyring
from crypto.secretbox import SecretBox
from referrals.accounts.models import Role, User
from referrals.audit.services import AuditLog
from referrals.casework.lifecycle import PACKAGE_EXPORTED
from referrals.casework.models import Referral, ReferralEvent
from referrals.casework.services import ReferralNotFound, within_reach
from referrals.clock import Clock
from referrals.feedback.services import parse_feedback
from referrals.handling.models import RecipientKind
from referrals.handling.services import MarkingRefused, Recipient, check_leaving
from referrals.intake.document import InvalidTipDocument, parse_tip_document
from referrals.intake.models import Agency, IntakeKey, Tip, TipCiphertext, TipStatus
from referrals.jobs import JobQueue
from referrals.onward import tasks
from referrals.onward.models import (
    Correspondent,
    OnwardPackage,
    PackageStatus,
    ReceivedFeedback,
    token_context,
)
from referrals.onward.package import compose

MAX_SUMMARY_CHARS = 1000
SHOWN_FEEDBACK = 20  # the latest items per package on the referral's page
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class PackageRefused(ValueError):
    """Nothing was exported or registered; ``str()`` says why."""


@dataclass(frozen=True)
class PackageEntry:
    """A package as the referral's page shows it, with the feedback its recipient sent back
    (opened in memory: ``document`` None where this host cannot)."""

    package: OnwardPackage
    agency_name: str
    feedback: list[tuple[ReceivedFeedback, dict[str, Any] | None]]


def check_base_url(base_url: str) -> str:
    """A correspondent's address: https, or http to this host only (a test, a tunnel).

    Raises:
        PackageRefused: anything else (a token must never cross a network in clear).
    """
    url = base_url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        parts = urlsplit("")
    # Scheme, host and port only: no credentials (they would land in the audit log), no
    # path, query or fragment (the API is at /api/v1 of the origin).
    plain = (
        parts.hostname is not None
        and parts.username is None
        and parts.password is None
        and not parts.path
        and not parts.query
        and not parts.fragment
    )
    if plain and parts.scheme == "https":
        return url
    if plain and parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return url
    raise PackageRefused(
        "Give the other centre's address as https://host[:port], nothing more (plain http only "
        "to this host): its token must never cross a network in clear."
    )


class OnwardPackages:
    """Args:
    session: the caller's session (the service commits).
    audit: the audit log in that session.
    clock: the clock.
    keyring: a staff host's (opens the tips, seals the package).
    queue: where deliveries are queued.
    secret_box: seals a correspondent's token (only to register one).
    """

    def __init__(
        self,
        session: Session,
        *,
        audit: AuditLog,
        clock: Clock,
        keyring: Keyring | None = None,
        queue: JobQueue | None = None,
        secret_box: SecretBox | None = None,
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.keyring = keyring
        self.queue = queue
        self.secret_box = secret_box

    # -- correspondents (the CLI) -----------------------------------------------------------

    def connect(self, agency: Agency, base_url: str, token: str, *, actor: str) -> Correspondent:
        """Record (or replace) where another centre running this system takes this centre's
        tips and the token it issued; the token is sealed at rest. Committed, audited.

        Raises:
            PackageRefused: a bad address or an empty token.
        """
        url = check_base_url(base_url)
        token = token.strip()
        if not token or not re.fullmatch(r"[\x21-\x7e]{16,512}", token):
            raise PackageRefused("Give the token the other centre issued to this one.")
        if self.secret_box is None:
            raise RuntimeError("registering a correspondent needs the instance's secret box")
        sealed = self.secret_box.seal(token.encode("ascii"), context=token_context(agency.id))
        found = self.session.get(Correspondent, agency.id)
        if found is None:
            found = Correspondent(agency_id=agency.id, created_at=self.clock.now())
            self.session.add(found)
        found.base_url = url
        found.token_sealed = sealed
        found.fault = None
        self.session.flush()
        self.audit.record(
            "correspondent.connected",
            actor=actor,
            subject=f"agency:{agency.id}",
            details={"base_url": url},
        )
        self.session.commit()
        return found

    # -- the lead exports -------------------------------------------------------------------

    def recipients(self) -> list[tuple[int, str, bool]]:
        """Agencies a package can be sealed for (a current key): id, name, and whether it
        has an endpoint to deliver to; by name."""
        agencies = self.session.scalars(select(Agency).order_by(Agency.name)).all()
        linked = set(self.session.scalars(select(Correspondent.agency_id)))
        return [
            (agency.id, agency.name, agency.id in linked)
            for agency in agencies
            if agency.current_key is not None
        ]

    def export(
        self,
        person: User,
        referral_id: int,
        agency_id: int | None,
        summary: str,
        *,
        address: str | None,
    ) -> OnwardPackage:
        """Seal the referral's package for the agency; queue its delivery if it has an
        endpoint. Committed.

        Raises:
            ReferralNotFound: not within the person's reach.
            PackageRefused: not a lead; no such recipient or no key; no summary; no tip;
                a marking that forbids it (saying which and what would allow it); a package
                that would not be a valid tip document; sealing failed.
        """
        referral = self.session.get(Referral, referral_id)
        if referral is None or not within_reach(person, referral):
            raise ReferralNotFound(referral_id)
        if person.role_enum is not Role.LEAD:
            raise PackageRefused("Only a team lead may export a referral.")
        agency = self.session.get(Agency, agency_id) if agency_id is not None else None
        key = agency.current_key if agency is not None else None
        problems = []
        if agency is None or key is None:
            problems.append("Choose a registered recipient with a key to encrypt to.")
        summary = " ".join(summary.split())
        if not summary:
            problems.append("Write a summary for the recipient's analysts.")
        elif len(summary) > MAX_SUMMARY_CHARS:
            problems.append(f"Write a summary of at most {MAX_SUMMARY_CHARS:,} characters.")
        if problems:
            raise PackageRefused("Nothing was exported. " + " ".join(problems))
        assert agency is not None and key is not None  # noqa: S101 - checked above
        self.session.execute(
            select(Referral.id).where(Referral.id == referral.id).with_for_update()
        )
        try:
            check_leaving(
                self.session, referral.id, Recipient(RecipientKind.AGENCY, agency.id, agency.name)
            )
        except MarkingRefused as refused:
            raise PackageRefused(f"Nothing was exported: {refused}") from None
        documents = self._opened_tips(referral)
        number = 1 + int(
            self.session.scalar(
                select(func.count())
                .select_from(OnwardPackage)
                .where(OnwardPackage.referral_id == referral.id)
            )
            or 0
        )
        reference = f"{referral.reference}/{number}"
        now = self.clock.now()
        document = compose(
            documents,
            external_reference=reference,
            summary=summary,
            tlp=referral.tlp or "RED",
            handling_code=referral.handling_code,
            source_reliability=referral.source_reliability,
            information_accuracy=referral.information_accuracy,
            prefer_country=agency.country,
            now=now,
        )
        plaintext = json.dumps(document, ensure_ascii=False).encode("utf-8")
        try:
            parse_tip_document(plaintext)
        except InvalidTipDocument as exc:
            raise PackageRefused(
                "Nothing was exported: joined, the referral's tips would not make a valid tip "
                f"document ({exc.message} at {exc.path or '/'}). Close or split the referral "
                "so that fewer tips travel together."
            ) from None
        armored = self._seal(plaintext, key.fingerprint, key.public_key)
        connected = self.session.get(Correspondent, agency.id) is not None
        package = OnwardPackage(
            referral_id=referral.id,
            agency_id=agency.id,
            external_reference=reference,
            idempotency_key=secrets.token_hex(16),
            armored=armored,
            tip_count=len(documents),
            tlp=document["handling"]["tlp"],
            created_at=now,
            created_by_id=person.id,
            status=(PackageStatus.SENDING if connected else PackageStatus.SEALED).value,
        )
        self.session.add(package)
        self.session.flush()
        self.session.add(
            ReferralEvent(
                referral_id=referral.id,
                at=now,
                actor_id=person.id,
                transition=PACKAGE_EXPORTED,
                from_stage=referral.stage,
                to_stage=referral.stage,
                details={"package": reference, "agency": agency.name},
            )
        )
        self.audit.record(
            "package.exported",
            actor=f"user:{person.id}",
            subject=f"referral:{referral.id}",
            address=address,
            details={"package": package.id, "agency": agency.id, "tips": len(documents)},
        )
        self.session.commit()
        if connected and self.queue is not None:
            self.queue.enqueue(tasks.deliver_package, package.id)
        return package

    def for_referral(self, referral: Referral) -> list[PackageEntry]:
        """The referral's packages, oldest first, each with the feedback received about it."""
        rows = self.session.execute(
            select(OnwardPackage, Agency.name)
            .join(Agency, Agency.id == OnwardPackage.agency_id)
            .where(OnwardPackage.referral_id == referral.id)
            .order_by(OnwardPackage.id)
        ).all()
        entries = []
        for row in rows:
            received: Sequence[ReceivedFeedback] = self.session.scalars(
                select(ReceivedFeedback)
                .where(
                    ReceivedFeedback.package_id == row.OnwardPackage.id,
                    ReceivedFeedback.verified.is_(True),
                )
                .order_by(ReceivedFeedback.remote_id.desc())
                .limit(SHOWN_FEEDBACK)
            ).all()
            entries.append(
                PackageEntry(
                    row.OnwardPackage,
                    row.name,
                    [(feedback, self._open(feedback)) for feedback in received],
                )
            )
        return entries

    # -- helpers ----------------------------------------------------------------------------

    def _opened_tips(self, referral: Referral) -> list[dict[str, Any]]:
        rows = self.session.execute(
            select(Tip.id, TipCiphertext.armored)
            .join(TipCiphertext, TipCiphertext.tip_id == Tip.id)
            .where(Tip.referral_id == referral.id, Tip.status == TipStatus.ACCEPTED)
            .order_by(Tip.received_at, Tip.id)
        ).all()
        if not rows:
            raise PackageRefused("Nothing was exported: the referral holds no tip to send on.")
        opened = []
        for row in rows:
            try:
                plaintext = self._keyring().decrypt_and_verify(row.armored).plaintext
                opened.append(dict(parse_tip_document(plaintext).data))
            except (CryptoError, InvalidTipDocument) as exc:
                raise PackageRefused(
                    f"Nothing was exported: a tip of the referral cannot be opened on this "
                    f"server ({type(exc).__name__})."
                ) from None
        return opened

    def _seal(self, plaintext: bytes, fingerprint: str, public_key: str | None) -> bytes:
        keyring = self._keyring()
        intake = self.session.scalar(
            select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
        )
        if intake is None:
            raise PackageRefused("Nothing was exported: the centre has no intake key.")
        try:
            if not keyring.make_available(fingerprint, public_key):
                raise PackageRefused("Nothing was exported: the recipient's key is not usable.")
            armored = keyring.encrypt(plaintext, [fingerprint, intake], sign_with=intake)
        except CryptoError as exc:
            raise PackageRefused(f"Nothing was exported: it could not be sealed ({exc}).") from exc
        return armored.encode("ascii")

    def _open(self, feedback: ReceivedFeedback) -> dict[str, Any] | None:
        try:
            plaintext = self._keyring().decrypt_and_verify(feedback.armored).plaintext
        except CryptoError:
            return None
        return parse_feedback(plaintext)

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise RuntimeError("this process has no keyring to open tips or seal packages")
        return self.keyring
