"""Intake services."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto.keyring import Keyring
from referrals.clock import Clock
from referrals.intake.models import IntakeKey, WebFormKey

INTAKE_KEY_NAME = "Tipline intake"
INTAKE_KEY_EMAIL = "intake@tipline.invalid"
WEB_FORM_KEY_NAME = "Tipline web form"
WEB_FORM_KEY_EMAIL = "web-form@tipline.invalid"


class IntakeKeyMissing(LookupError):
    """There is no current intake key, or this host's keyring lacks its secret half."""


class WebFormKeyMissing(LookupError):
    """There is no current web-form key, or this host's keyring lacks its secret half."""


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

    def for_encrypting(self) -> str:
        """The fingerprint of the current intake key, to encrypt to: unlike :meth:`current`,
        it does not need the secret half (a partner-facing host has only the public one).

        Raises:
            IntakeKeyMissing: none was created.
        """
        fingerprint = self.session.scalar(
            select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
        )
        if fingerprint is None:
            raise IntakeKeyMissing("no intake key yet: run `tipline init`")
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


class WebFormKeyService:
    """Knows which key signs web-form tips, and creates it once.

    The web form encrypts an officer's tip to the intake key and signs it with this key on the
    officer's behalf; processing accepts it as the agency's signature only on a web-form tip.
    It is a key of its own so that a partner-facing host can sign without holding anything
    that decrypts tips.

    Args:
        session: the caller's database session.
        keyring: this host's keyring, unlocked with the web-form key's passphrase.
        clock: the clock.
    """

    def __init__(self, session: Session, *, keyring: Keyring, clock: Clock) -> None:
        self.session = session
        self.keyring = keyring
        self.clock = clock

    def current(self) -> str:
        """The fingerprint of the current web-form key.

        Raises:
            WebFormKeyMissing: none was created, or this host cannot sign with it.
        """
        fingerprint = self.session.scalar(
            select(WebFormKey.fingerprint).where(WebFormKey.retired_at.is_(None))
        )
        if fingerprint is None:
            raise WebFormKeyMissing("no web-form key yet: run `tipline init`")
        if not self.keyring.has_secret_key(fingerprint):
            raise WebFormKeyMissing(
                f"this host's GnuPG home lacks the secret web-form key {fingerprint}: "
                "copy the GnuPG home from the host that created it"
            )
        return fingerprint

    def ensure(self) -> tuple[str, bool]:
        """The current web-form key, generated and recorded (with its public key, for every
        host's workers) if there is none.

        Returns:
            The fingerprint, and whether this call created the key.

        Raises:
            WebFormKeyMissing: one is recorded but this host lacks it (never mint a second).
        """
        try:
            return self.current(), False
        except WebFormKeyMissing:
            if self.session.scalar(select(WebFormKey).where(WebFormKey.retired_at.is_(None))):
                raise
        fingerprint = self.keyring.generate_signing_key(
            name=WEB_FORM_KEY_NAME, email=WEB_FORM_KEY_EMAIL
        )
        self.session.add(
            WebFormKey(
                fingerprint=fingerprint,
                public_key=self.keyring.export_public_key(fingerprint),
                created_at=self.clock.now(),
            )
        )
        self.session.commit()
        return fingerprint, True
