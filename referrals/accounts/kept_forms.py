"""Forms kept across a sign-in: what an officer wrote survives their session timing out.

When a form is sent after the session ended by timing out, its fields are sealed
(AES-256-GCM) with a fresh random key and stored here, bound to the account; the key goes back
to the browser only (in a cookie). After signing in again as the same account, the browser's
key opens the fields once, and the row is deleted. Without the browser's key the row is
noise: a database dump or backup reveals nothing of what was written.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from crypto.secretbox import SealedValueInvalid, SecretBox
from referrals.accounts.models import KeptForm
from referrals.clock import Clock

KEPT_FORM_LIFETIME = timedelta(minutes=30)
# Bigger forms are not kept (the partner tip form's own limits are far below this).
MAX_KEPT_BYTES = 1024 * 1024
KEY_BYTES = 32

Fields = list[tuple[str, str]]


@dataclass(frozen=True)
class KeptFormTicket:
    """What the browser keeps: the row's id and the only key that opens it."""

    form_id: str
    key: bytes


@dataclass(frozen=True)
class ReturnedForm:
    path: str  # the form's page
    fields: Fields  # (name, value) pairs, in the order they were sent


class KeptForms:
    """Seals forms sent after a session timed out, and hands them back once.

    Args:
        session: the caller's database session (the service commits).
        clock: the clock.
    """

    def __init__(self, session: Session, *, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def keep(self, *, user_id: int, path: str, fields: Fields) -> KeptFormTicket | None:
        """Seal ``fields`` for ``user_id`` with a new key; None if they are too big to keep.

        Returns:
            The ticket for the browser: nothing on the server can open the row without it.
        """
        # ensure_ascii None reads as False, and codec names ignore case: no other output.
        plaintext = json.dumps(fields, ensure_ascii=False).encode("utf-8")  # pragma: no mutate
        if len(plaintext) > MAX_KEPT_BYTES:
            return None
        now = self.clock.now()
        self.sweep()
        form_id = secrets.token_hex(16)
        # KEY_BYTES is also the secrets module's default: None would give as many.
        key = secrets.token_bytes(KEY_BYTES)  # pragma: no mutate
        self.session.add(
            KeptForm(
                id=form_id,
                user_id=user_id,
                path=path,
                created_at=now,
                expires_at=now + KEPT_FORM_LIFETIME,
                sealed_fields=SecretBox(key).seal(plaintext, context=_context(form_id, user_id)),
            )
        )
        self.session.commit()
        return KeptFormTicket(form_id=form_id, key=key)

    def take(self, ticket: KeptFormTicket, *, user_id: int, path: str) -> ReturnedForm | None:
        """The fields kept under this ticket for this account and page, once: the row is
        deleted in the same statement, so two requests cannot both have them.

        None when there is nothing (used, expired, swept, another account's or page's, or the
        key does not open it); another account's form is left for its owner.
        """
        now = self.clock.now()
        row = self.session.execute(
            delete(KeptForm)
            .where(
                KeptForm.id == ticket.form_id,
                KeptForm.user_id == user_id,
                KeptForm.path == path,
                KeptForm.expires_at > now,
            )
            .returning(KeptForm.path, KeptForm.sealed_fields)
        ).one_or_none()
        self.sweep()
        self.session.commit()
        if row is None:
            return None
        path, sealed = row
        try:
            plaintext = SecretBox(ticket.key).open(
                sealed, context=_context(ticket.form_id, user_id)
            )
        except (SealedValueInvalid, ValueError):
            return None
        fields = json.loads(plaintext)
        return ReturnedForm(path=path, fields=[(str(name), str(value)) for name, value in fields])

    def sweep(self) -> int:
        """Delete expired forms (their keys are gone with the browsers' cookies anyway).

        Returns:
            How many were deleted. Not committed.
        """
        swept = self.session.execute(
            delete(KeptForm).where(KeptForm.expires_at <= self.clock.now())
        )
        return int(swept.rowcount)  # type: ignore[attr-defined]


def _context(form_id: str, user_id: int) -> bytes:
    return f"kept-form:{form_id}:user:{user_id}".encode()
