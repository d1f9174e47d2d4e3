"""The portal key: created once, found on each host that needs it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto import Keyring
from referrals.clock import Clock
from referrals.messages.models import PortalKey

PORTAL_KEY_NAME = "Tipline partner portal"
PORTAL_KEY_EMAIL = "portal@tipline.invalid"


class PortalKeyMissing(LookupError):
    """There is no current portal key, or this host's keyring lacks its secret half."""


class PortalKeyService:
    """Knows which key the centre's messages are also encrypted to for the portal, and
    creates it once.

    Args:
        session: the caller's database session.
        keyring: this host's keyring, unlocked with the partner face's passphrase (the
            web-form key's), which also protects the portal key.
        clock: the clock.
    """

    def __init__(self, session: Session, *, keyring: Keyring, clock: Clock) -> None:
        self.session = session
        self.keyring = keyring
        self.clock = clock

    def recorded(self) -> PortalKey | None:
        """The current portal key's record (its public key: enough to encrypt to it)."""
        return self.session.scalar(select(PortalKey).where(PortalKey.retired_at.is_(None)))

    def current(self) -> str:
        """The fingerprint of the current portal key, whose secret half this host holds.

        Raises:
            PortalKeyMissing: none was created, or this host cannot decrypt with it.
        """
        key = self.recorded()
        if key is None:
            raise PortalKeyMissing("no portal key yet: run `tipline init`")
        if not self.keyring.has_secret_key(key.fingerprint):
            raise PortalKeyMissing(
                f"this host's GnuPG home lacks the secret portal key {key.fingerprint}: "
                "copy the GnuPG home from the host that created it"
            )
        return key.fingerprint

    def ensure(self) -> tuple[str, bool]:
        """The current portal key, generated and recorded (with its public key, for every
        staff host) if there is none.

        Returns:
            The fingerprint, and whether this call created the key.

        Raises:
            PortalKeyMissing: one is recorded but this host lacks it (never mint a second).
        """
        try:
            return self.current(), False
        except PortalKeyMissing:
            if self.recorded() is not None:
                raise
        fingerprint = self.keyring.generate_encryption_key(
            name=PORTAL_KEY_NAME, email=PORTAL_KEY_EMAIL
        )
        self.session.add(
            PortalKey(
                fingerprint=fingerprint,
                public_key=self.keyring.export_public_key(fingerprint),
                created_at=self.clock.now(),
            )
        )
        self.session.commit()
        return fingerprint, True
