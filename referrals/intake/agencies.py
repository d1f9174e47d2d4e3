"""Partner agencies: registering them, pinning their keys, minting their API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pycountry
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from crypto import CryptoError, KeyNotFound, Keyring, PartnerKey
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.intake.models import Agency, AgencyKey, ApiToken, IntakeKey, WebFormKey

# Scanners for leaked credentials can recognise a token by its prefix.
TOKEN_PREFIX = "tl_"  # noqa: S105 - a prefix, not a secret
MAX_NAME_LENGTH = 200  # agencies.name


class AgencyError(ValueError):
    """A request about an agency that cannot be carried out; the message says why."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def country_code(value: str) -> str:
    """The ISO 3166-1 alpha-2 code, upper-cased, or AgencyError."""
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise AgencyError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


class AgencyService:
    """Registers partner agencies and keeps their keys and tokens.

    A pinned key is stored in the database, never imported here: each host imports it into
    its own keyring when it first verifies a tip (see ``TipProcessor``), so an agency added on
    one host is known on every host, and a refused key never reaches any keyring.

    Args:
        session: the caller's database session.
        keyring: this host's keyring: keys are inspected with it (in a scratch home, leaving
            it unchanged), and keys pinned before keys were stored are copied from it.
        clock: the clock.
        audit: the audit log; needed for every change (agencies, tokens and keys are
            audited in the same transaction), not for reading.
    """

    def __init__(
        self, session: Session, *, keyring: Keyring, clock: Clock, audit: AuditLog | None = None
    ) -> None:
        self.session = session
        self.keyring = keyring
        self.clock = clock
        self._audit = audit

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            raise RuntimeError("changes to agencies must be audited: pass audit=")
        return self._audit

    def add(self, *, name: str, country: str, key_data: bytes, actor: str) -> tuple[Agency, str]:
        """Register an agency with its OpenPGP public key.

        Returns:
            The agency and its first API token (shown once: only its hash is kept).

        Raises:
            AgencyError: bad country, a name already registered, or an unusable key.
        """
        name = name.strip()
        if not name:
            raise AgencyError("an agency needs a name")
        if len(name) > MAX_NAME_LENGTH or not name.isprintable():
            raise AgencyError(f"an agency's name is at most {MAX_NAME_LENGTH} printable characters")
        code = country_code(country)
        if self.session.scalar(select(Agency.id).where(Agency.name == name)) is not None:
            raise AgencyError(f"an agency named {name!r} is already registered")
        partner_key = self._inspect_key(key_data)
        agency = Agency(name=name, country=code, created_at=self.clock.now())
        self.session.add(agency)
        self.session.flush()
        self._pin(agency, partner_key)
        token = self._new_token(agency)
        self.audit.record(
            "agency.created",
            actor=actor,
            subject=f"agency:{agency.id}",
            details={"country": code, "key": partner_key.fingerprint},
        )
        self._commit()
        return agency, token

    def mint_token(self, agency: Agency, *, actor: str) -> str:
        """A new API token for the agency; every earlier one stops working at once."""
        self.session.execute(
            update(ApiToken)
            .where(ApiToken.agency_id == agency.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )
        token = self._new_token(agency)
        self.audit.record("agency.token_minted", actor=actor, subject=f"agency:{agency.id}")
        self._commit()
        return token

    def rotate_key(self, agency: Agency, key_data: bytes, *, actor: str) -> AgencyKey:
        """Pin a new key; the old one is retired but stays on record for the tips it signed."""
        partner_key = self._inspect_key(key_data)
        current = agency.current_key
        if current is not None and current.fingerprint == partner_key.fingerprint:
            raise AgencyError("that key is already the agency's current key")
        now = self.clock.now()
        for key in agency.keys:
            if key.retired_at is None:
                key.retired_at = now
        pinned = self._pin(agency, partner_key)
        self.audit.record(
            "agency.key_rotated",
            actor=actor,
            subject=f"agency:{agency.id}",
            details={
                "key": partner_key.fingerprint,
                "retired": current.fingerprint if current else None,
            },
        )
        self._commit()
        return pinned

    def find(self, reference: str) -> Agency:
        """The agency with this id or exact name.

        Raises:
            AgencyError: there is none.
        """
        query = select(Agency).options(selectinload(Agency.keys))
        if reference.isdigit():
            agency = self.session.scalar(query.where(Agency.id == int(reference)))
        else:
            agency = self.session.scalar(query.where(Agency.name == reference))
        if agency is None:
            raise AgencyError(f"no agency {reference!r}")
        return agency

    def all(self) -> list[Agency]:
        """Every agency, with its keys, by name."""
        query = select(Agency).options(selectinload(Agency.keys)).order_by(Agency.name)
        return list(self.session.scalars(query))

    def authenticate(self, token: str) -> int | None:
        """The id of the agency whose live token this is, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = hash_token(token)
        row = self.session.execute(
            select(ApiToken.agency_id, ApiToken.token_hash).where(
                ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None)
            )
        ).first()
        # The lookup is by hash already; the comparison guards against a collation surprise.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return int(row.agency_id)

    def store_missing_public_keys(self) -> tuple[list[str], list[str]]:
        """Copy into the database, from this host's keyring, every pinned key that was pinned
        before keys were stored there (``tipline init`` does this after upgrading).

        Returns:
            The fingerprints stored, and those this host's keyring lacks (store them by
            running this on the host where they were added).
        """
        stored, missing = [], []
        keys = self.session.scalars(
            select(AgencyKey).where(AgencyKey.public_key.is_(None)).order_by(AgencyKey.pinned_at)
        )
        for key in keys:
            try:
                key.public_key = self.keyring.export_public_key(key.fingerprint)
            except KeyNotFound:
                missing.append(key.fingerprint)
            else:
                stored.append(key.fingerprint)
        self._commit()
        return stored, missing

    def _inspect_key(self, key_data: bytes) -> PartnerKey:
        try:
            partner_key = self.keyring.inspect_partner_key(key_data)
        except CryptoError as exc:
            raise AgencyError(f"key refused: {exc}") from None
        fingerprint = partner_key.fingerprint
        owner = self.session.scalar(
            select(AgencyKey.agency_id).where(AgencyKey.fingerprint == fingerprint)
        )
        if owner is not None:
            raise AgencyError(f"key {fingerprint} is already pinned to agency {owner}")
        # Pinned to an agency, the centre's own key would let whoever holds it (any host that
        # signs web-form tips, say) send tips in that agency's name.
        if self.session.get(IntakeKey, fingerprint) or self.session.get(WebFormKey, fingerprint):
            raise AgencyError(f"key {fingerprint} is one of this centre's own keys")
        return partner_key

    def _pin(self, agency: Agency, partner_key: PartnerKey) -> AgencyKey:
        key = AgencyKey(
            fingerprint=partner_key.fingerprint,
            agency=agency,
            public_key=partner_key.armored,
            pinned_at=self.clock.now(),
            expires_at=partner_key.expires,
        )
        self.session.add(key)
        return key

    def _new_token(self, agency: Agency) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.session.add(
            ApiToken(agency_id=agency.id, token_hash=hash_token(token), created_at=self.clock.now())
        )
        return token

    def _commit(self) -> None:
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            raise AgencyError("a concurrent change got there first; try again") from None
