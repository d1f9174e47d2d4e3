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
from tipline.config import Settings
from tipline.embedded_redis import EmbeddedRedis
from tipline.instance import (
    AUDIT_KEY,
    BLIND_INDEX_KEY,
    SECRET_BOX_KEY,
    read_intake_passphrase,
    read_secret,
)


@dataclass(kw_only=True)
class Runtime:
    """Live connections for one process."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    redis: redis.Redis
    queue: JobQueue
    clock: Clock
    keyring: Keyring
    blind_index: BlindIndex
    audit_key: bytes
    secret_box: SecretBox
    password_hashing: PasswordHashing
    embedded_redis: EmbeddedRedis | None = field(default=None)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        password_hashing: PasswordHashing | None = None,
    ) -> Runtime:
        """Connect to the database and Redis named by ``settings``.

        With no Redis URL the home's embedded server is used, started if no process has.

        Raises:
            ConfigError: the home was not initialised (no intake passphrase).
        """
        # Nothing this keyring decrypts may be larger than a tip document: a compression bomb
        # stops there instead of filling the worker's memory (python-gnupg holds the output).
        keyring = Keyring(
            settings.gnupg_home,
            passphrase=read_intake_passphrase(settings),
            max_plaintext_bytes=MAX_DOCUMENT_BYTES,
        )
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
            engine=engine,
            session_factory=make_session_factory(engine),
            redis=connection,
            queue=JobQueue(connection),
            clock=clock or SystemClock(),
            keyring=keyring,
            blind_index=blind_index,
            audit_key=audit_key,
            secret_box=secret_box,
            password_hashing=password_hashing or PasswordHashing(),
            embedded_redis=embedded,
        )

    def audit(self, session: Session) -> AuditLog:
        """The audit log, writing in ``session``'s transaction."""
        return AuditLog(session, key=self.audit_key, clock=self.clock)

    def job_context(self) -> JobContext:
        return JobContext(
            engine=self.engine,
            session_factory=self.session_factory,
            clock=self.clock,
            queue=self.queue,
            keyring=self.keyring,
            blind_index=self.blind_index,
            audit_key=self.audit_key,
        )

    def close(self, *, stop_gpg_agent: bool = False) -> None:
        """Close connections; stop the embedded Redis if no other process uses it.

        Args:
            stop_gpg_agent: also stop the GnuPG home's agent (for commands that leave no
                other user behind, like ``init``; it restarts on demand if one remains).
        """
        if stop_gpg_agent:
            self.keyring.close()
        self.redis.close()
        self.engine.dispose()
        if self.embedded_redis is not None:
            self.embedded_redis.release()
