"""Intake services."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto.keyring import Keyring
from referrals.clock import Clock
from referrals.intake.models import IntakeKey

INTAKE_KEY_NAME = "Tipline intake"
INTAKE_KEY_EMAIL = "intake@tipline.invalid"


class IntakeKeyMissing(LookupError):
    """There is no current intake key, or this host's keyring lacks its secret half."""


class IntakeKeyService:
    """Knows which key pair partners encrypt to, and creates it once.

    Args:
        session: the caller's database session.
        keyring: this host's keyring.
        clock: the clock.
    """

    def __init__(self, session: Session, *, keyring: Keyring, clock: Clock) -> None:
        self.session = session
        self.keyring = keyring
        self.clock = clock

    def current(self) -> str:
        """The fingerprint of the current intake key.

        Raises:
            IntakeKeyMissing: none was created, or this host cannot decrypt with it.
        """
        fingerprint = self.session.scalar(
            select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
        )
        if fingerprint is None:
            raise IntakeKeyMissing("no intake key yet: run `tipline init`")
        if not self.keyring.has_secret_key(fingerprint):
            raise IntakeKeyMissing(
                f"this host's GnuPG home lacks the secret intake key {fingerprint}: "
                "copy the GnuPG home from the host that created it"
            )
        return fingerprint

    def ensure(self) -> tuple[str, bool]:
        """The current intake key, generated and recorded if there is none.

        Returns:
            The fingerprint, and whether this call created the key.
        """
        try:
            return self.current(), False
        except IntakeKeyMissing:
            if self.session.scalar(select(IntakeKey).where(IntakeKey.retired_at.is_(None))):
                raise  # recorded, but this host lacks the secret: never mint a second one
        fingerprint = self.keyring.generate_intake_key(name=INTAKE_KEY_NAME, email=INTAKE_KEY_EMAIL)
        self.session.add(IntakeKey(fingerprint=fingerprint, created_at=self.clock.now()))
        self.session.commit()
        return fingerprint, True
