"""The composition root's parts list: one object wiring settings to real connections.

The web app and each CLI command build one ``Runtime`` from ``Settings``; nothing is found
through module globals. Services get what they need from it, passed explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crypto import BlindIndex, Keyring
from crypto.secretbox import SecretBox
from referrals.accounts.passwords import PasswordHashing
from referrals.audit.services import AuditLog
from referrals.clock import Clock, SystemClock
from referrals.database import make_engine, make_session_factory
from referrals.intake.document import MAX_DOCUMENT_BYTES
from referrals.jobs import JobContext, JobQueue
from tipline.config import Face, Settings
from tipline.embedded_redis import EmbeddedRedis
from tipline.instance import (
    AUDIT_KEY,
    BLIND_INDEX_KEY,
    SECRET_BOX_KEY,
    WEB_FORM_KEY_PASSPHRASE,
    read_intake_passphrase,
    read_passphrase,
    read_secret,
)


@dataclass(kw_only=True)
class Runtime:
    """Live connections for one process.

    Attributes:
        face: what it was built for; a partner face has no ``blind_index`` and a ``keyring``
            that cannot decrypt (no intake passphrase), a staff face no ``web_form_keyring``.
        keyring: this host's keyring, unlocked with the intake key's passphrase when the
            face needs to decrypt.
        web_form_keyring: the same GnuPG home unlocked with the web-form key's passphrase, to
            sign web-form tips.
    """

    settings: Settings
    face: Face = Face.ALL
    engine: Engine
    session_factory: sessionmaker[Session]
    redis: redis.Redis
    queue: JobQueue
    clock: Clock
    keyring: Keyring
    web_form_keyring: Keyring | None
    blind_index: BlindIndex | None
    audit_key: bytes
    secret_box: SecretBox
    password_hashing: PasswordHashing
    embedded_redis: EmbeddedRedis | None = field(default=None)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        face: Face = Face.ALL,
        clock: Clock | None = None,
        password_hashing: PasswordHashing | None = None,
    ) -> Runtime:
        """Connect to the database and Redis named by ``settings``, and read the secrets
        ``face`` needs: ``Face.ALL`` (commands, workers, the embedded default) reads them all;
        a partner face never reads the intake key's passphrase or the blind-index key, so a
        partner-facing host can run without them.

        With no Redis URL the home's embedded server is used, started if no process has.

        Raises:
            ConfigError: the home was not initialised (a secret is missing).
        """
        intake_passphrase = read_intake_passphrase(settings) if face.serves_staff else None
        # Nothing this keyring decrypts may be larger than a tip document: a compression bomb
        # stops there instead of filling the worker's memory (python-gnupg holds the output).
        keyring = Keyring(
            settings.gnupg_home,
            passphrase=intake_passphrase,
            max_plaintext_bytes=MAX_DOCUMENT_BYTES,
        )
        web_form_keyring = None
        if face.serves_partners:
            web_form_keyring = Keyring(
                settings.gnupg_home, passphrase=read_passphrase(settings, WEB_FORM_KEY_PASSPHRASE)
            )
        blind_index = None
        if face.serves_staff:
            blind_index = BlindIndex(read_secret(settings, BLIND_INDEX_KEY))
        audit_key = read_secret(settings, AUDIT_KEY)
        secret_box = SecretBox(read_secret(settings, SECRET_BOX_KEY))
        engine = make_engine(settings.database_url)
        embedded = None
        if settings.redis_url is None:
            embedded = EmbeddedRedis(settings.redis_dir)
            redis_url = embedded.start()
        else:
            redis_url = settings.redis_url
        connection = redis.Redis.from_url(redis_url)
        return cls(
            settings=settings,
            face=face,
            engine=engine,
            session_factory=make_session_factory(engine),
            redis=connection,
            queue=JobQueue(connection),
            clock=clock or SystemClock(),
            keyring=keyring,
            web_form_keyring=web_form_keyring,
            blind_index=blind_index,
            audit_key=audit_key,
            secret_box=secret_box,
            password_hashing=password_hashing or PasswordHashing(),
            embedded_redis=embedded,
        )

    def web_form_signer(self) -> Keyring:
        """The keyring that signs web-form tips (unlocked with the web-form key's passphrase).

        Raises:
            RuntimeError: this runtime was built for the staff face, which does not sign them.
        """
        if self.web_form_keyring is None:
            raise RuntimeError("a staff-face process does not sign web-form tips")
        return self.web_form_keyring

    def audit(self, session: Session) -> AuditLog:
        """The audit log, writing in ``session``'s transaction."""
        return AuditLog(session, key=self.audit_key, clock=self.clock)

    def job_context(self) -> JobContext:
        """What jobs get.

        Raises:
            RuntimeError: this runtime was built for the partner face, which runs no jobs.
        """
        if self.blind_index is None:
            raise RuntimeError("a partner-face process runs no jobs: it cannot decrypt tips")
        return JobContext(
            engine=self.engine,
            session_factory=self.session_factory,
            clock=self.clock,
            queue=self.queue,
            keyring=self.keyring,
            blind_index=self.blind_index,
            audit_key=self.audit_key,
            secret_box=self.secret_box,
        )

    def close(self, *, stop_gpg_agent: bool = False) -> None:
        """Close connections; stop the embedded Redis if no other process uses it.

        Args:
            stop_gpg_agent: also stop the GnuPG home's agent (for commands that leave no
                other user behind, like ``init``; it restarts on demand if one remains).
        """
        if stop_gpg_agent:
            self.keyring.close()  # the agent of the GnuPG home, web_form_keyring's too
        self.redis.close()
        self.engine.dispose()
        if self.embedded_redis is not None:
            self.embedded_redis.release()
