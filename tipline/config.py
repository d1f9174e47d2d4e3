"""Settings, read once from the environment, typed and validated at start.

A bad value stops the program with one line naming the variable and what is wrong with it,
rather than a traceback from deep inside a library minutes later.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DATABASES = ("sqlite", "postgresql")
SUPPORTED_REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ENROLMENT_APPROVAL_RULES = ("auto", "on", "off")
# gpg-agent puts its sockets in the GnuPG home when /run/user/UID does not exist, and a Unix
# socket path is limited to 108 bytes: "S.gpg-agent.browser" must still fit.
MAX_GNUPG_HOME_LENGTH = 80
MIB = 1024 * 1024
GIB = 1024 * MIB
MAX_TRUSTED_PROXIES = 5  # more hops than any sane deployment: a typo, not a topology


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line meant for an operator."""


class Face(enum.StrEnum):
    """What a web process serves (``TIPLINE_WEB_FACE``), so the part that faces partners
    abroad can run apart from the staff's pages, on hosts holding nothing that decrypts tips.
    """

    PARTNER = "partner"  # the partner API and partner pages (reached from the internet)
    STAFF = "staff"  # admin, audit log, analysts' pages (an internal network)
    ALL = "all"  # both: the embedded default, one host

    @property
    def serves_partners(self) -> bool:
        return self is not Face.STAFF

    @property
    def serves_staff(self) -> bool:
        return self is not Face.PARTNER


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the process needs to know about where things live.

    Attributes:
        home: the folder that holds everything local (database file, secrets, keys, files).
        database_url: SQLAlchemy URL; SQLite in the home unless set.
        redis_url: URL of a Redis server, or None for the embedded one in the home.
        gnupg_home: the GnuPG home holding the intake key pair and partner keys.
        log_level: level of the application's own loggers.
        base_url: the address people reach the web app at (for links printed by the CLI).
        web_face: what a web process serves; commands and workers ignore it.
        enrolment_approval: when an enrolment link needs a second administrator's approval:
            ``auto`` (when two or more enrolled administrators exist), ``on`` or ``off``.
        trusted_proxies: how many reverse proxies stand in front of the web app; their
            X-Forwarded-For/-Proto/-Host headers are believed (0: clients connect directly).
    """

    home: Path
    database_url: str
    redis_url: str | None
    gnupg_home: Path
    log_level: str = "INFO"
    storage_dir: Path | None = None
    max_tip_bytes: int = 10 * MIB
    max_attachment_bytes: int = 100 * MIB
    max_attachments_per_tip: int = 50
    max_attachment_bytes_per_tip: int = 2 * GIB
    api_rate_limit: str = "100/second"
    base_url: str = "http://127.0.0.1:5000"
    web_face: Face = Face.ALL
    enrolment_approval: str = "auto"
    trusted_proxies: int = 0

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def attachments_dir(self) -> Path:
        return self.storage_dir or self.home / "storage"

    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the ``TIPLINE_*`` variables.

        Raises:
            ConfigError: a value is malformed.
        """
        env = os.environ if environ is None else environ
        home = Path(env.get("TIPLINE_HOME") or "instance").expanduser().absolute()
        database_url = env.get("TIPLINE_DATABASE_URL") or f"sqlite:///{home / 'tipline.sqlite3'}"
        redis_url = env.get("TIPLINE_REDIS_URL") or None
        gnupg_home = Path(env.get("TIPLINE_GNUPG_HOME") or home / "gnupg").expanduser().absolute()
        log_level = (env.get("TIPLINE_LOG_LEVEL") or "INFO").upper()
        storage = env.get("TIPLINE_STORAGE_DIR")
        settings = cls(
            home=home,
            database_url=database_url,
            redis_url=redis_url,
            gnupg_home=gnupg_home,
            log_level=log_level,
            storage_dir=Path(storage).expanduser().absolute() if storage else None,
            max_tip_bytes=_size(env, "TIPLINE_MAX_TIP_BYTES", cls.max_tip_bytes),
            max_attachment_bytes=_size(
                env, "TIPLINE_MAX_ATTACHMENT_BYTES", cls.max_attachment_bytes
            ),
            max_attachments_per_tip=_size(
                env, "TIPLINE_MAX_ATTACHMENTS_PER_TIP", cls.max_attachments_per_tip, unit="files"
            ),
            max_attachment_bytes_per_tip=_size(
                env, "TIPLINE_MAX_ATTACHMENT_BYTES_PER_TIP", cls.max_attachment_bytes_per_tip
            ),
            api_rate_limit=env.get("TIPLINE_API_RATE_LIMIT") or cls.api_rate_limit,
            base_url=(env.get("TIPLINE_BASE_URL") or cls.base_url).rstrip("/"),
            web_face=_face(env.get("TIPLINE_WEB_FACE") or Face.ALL),
            enrolment_approval=(
                env.get("TIPLINE_ENROLMENT_APPROVAL") or cls.enrolment_approval
            ).lower(),
            trusted_proxies=_count(env, "TIPLINE_TRUSTED_PROXIES", cls.trusted_proxies),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every value; raise ConfigError naming the first bad one."""
        if self.home.exists() and not self.home.is_dir():
            raise ConfigError(f"TIPLINE_HOME: {self.home} exists and is not a folder")
        try:
            url = make_url(self.database_url)
        except ArgumentError:
            raise ConfigError(
                "TIPLINE_DATABASE_URL: not a database URL "
                "(expected e.g. postgresql+psycopg://user@host/db or sqlite:///path)"
            ) from None
        if url.get_backend_name() not in SUPPORTED_DATABASES:
            raise ConfigError(
                f"TIPLINE_DATABASE_URL: unsupported database {url.get_backend_name()!r} "
                f"(supported: {', '.join(SUPPORTED_DATABASES)})"
            )
        if url.get_backend_name() == "sqlite" and not url.database:
            raise ConfigError("TIPLINE_DATABASE_URL: an in-memory SQLite database loses tips")
        if self.redis_url is not None:
            scheme = urlsplit(self.redis_url).scheme
            if scheme not in SUPPORTED_REDIS_SCHEMES:
                raise ConfigError(
                    "TIPLINE_REDIS_URL: expected a redis://, rediss:// or unix:// URL, "
                    "or leave it unset for the embedded Redis"
                )
        if gnupg_home_too_long(self.gnupg_home):
            raise ConfigError(
                f"TIPLINE_GNUPG_HOME: {self.gnupg_home} is too long for gpg-agent's sockets "
                f"(at most {MAX_GNUPG_HOME_LENGTH} bytes): set a shorter TIPLINE_GNUPG_HOME"
            )
        try:
            parse_many(self.api_rate_limit)
        except ValueError:
            raise ConfigError(
                "TIPLINE_API_RATE_LIMIT: expected limits like '100/second' or "
                "'6000 per minute; 100 per second'"
            ) from None
        base = urlsplit(self.base_url)
        if base.scheme not in ("http", "https") or not base.netloc or base.query:
            raise ConfigError(
                "TIPLINE_BASE_URL: expected the address people reach Tipline at, "
                "e.g. https://tipline.centre.example"
            )
        if self.enrolment_approval not in ENROLMENT_APPROVAL_RULES:
            raise ConfigError(
                "TIPLINE_ENROLMENT_APPROVAL: expected auto (a second administrator approves "
                "enrolments once there are two), on or off"
            )
        if not 0 <= self.trusted_proxies <= MAX_TRUSTED_PROXIES:
            raise ConfigError(
                f"TIPLINE_TRUSTED_PROXIES: expected the number of reverse proxies in front of "
                f"the web app, 0 to {MAX_TRUSTED_PROXIES} (0 when clients connect directly)"
            )
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"TIPLINE_LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}")


def gnupg_home_too_long(path: Path) -> bool:
    """Whether gpg-agent's sockets would not fit under ``path`` on this machine."""
    return (
        len(os.fsencode(path)) > MAX_GNUPG_HOME_LENGTH
        and not Path(f"/run/user/{os.getuid()}").is_dir()
    )


def _face(value: str) -> Face:
    try:
        return Face(value.strip().lower())
    except ValueError:
        raise ConfigError(
            "TIPLINE_WEB_FACE: expected partner, staff or all (the default)"
        ) from None


def _size(env: Mapping[str, str], name: str, default: int, *, unit: str = "bytes") -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        size = int(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of {unit}") from None
    if size <= 0:
        raise ConfigError(f"{name}: must be positive")
    return size


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(f"{name}: expected a whole number, e.g. 1")
    return int(value)
