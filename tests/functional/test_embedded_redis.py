"""One embedded Redis server per home, whatever processes start at once; no job lost."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Worker
from sqlalchemy import func, select

from referrals.database import make_engine, make_session_factory
from referrals.health.models import QueueProbe
from tests.support import PATIENCE, run_tipline
from tipline import embedded_redis
from tipline.embedded_redis import EmbeddedRedis, EmbeddedRedisError

PRODUCERS = 4
PROBES_EACH = 25

PRODUCER = textwrap.dedent(
    f"""
    import sys
    from tipline import create_app
    from tipline.database import runtime, session
    from referrals.health.services import QueueProbeService

    app = create_app()  # attaches this process to the home's Redis, starting it if need be
    print("attached", flush=True)
    sys.stdin.readline()  # the barrier: everyone is attached before anyone sends or leaves
    with app.app_context():
        rt = runtime()
        service = QueueProbeService(session(), queue=rt.queue, clock=rt.clock)
        for _ in range({PROBES_EACH}):
            service.send()
        print(rt.redis.info("server")["process_id"], flush=True)
    """
)


def wait_for_rq_worker(client: redis.Redis) -> None:
    """Wait until a job worker has registered with the server (it is then attached too)."""
    deadline = time.monotonic() + PATIENCE
    while Worker.count(connection=client) < 1:
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)


def redis_servers_of(home: Path) -> list[int]:
    """Pids of redis-server processes working in this home (a server chdirs to its data)."""
    folder = home / "redis"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"redis-server" not in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                continue
            if Path(os.readlink(entry / "cwd")) == folder:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_processes_starting_together_share_one_server_and_lose_no_job(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    home, env = home_env
    init = run_tipline("init", env=env)
    assert init.returncode == 0, init.stderr
    EmbeddedRedis(home / "redis").stop()  # init leaves none running; make sure of it
    assert redis_servers_of(home) == []

    # Producers and a worker all start at once on a home with no Redis running.
    worker = subprocess.Popen(
        [sys.executable, "-m", "tipline", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PRODUCERS)
    ]
    try:
        # Meet at a barrier once every process is attached: without it, a fast producer could
        # finish, and being the last user stop the server, before a slow one had attached, and
        # the test would measure the scheduler instead of the start-up lock.
        for producer in producers:
            assert producer.stdout is not None
            assert producer.stdout.readline().strip() == "attached"
        wait_for_rq_worker(EmbeddedRedis(home / "redis").client())
        servers = redis_servers_of(home)
        assert len(servers) == 1
        for producer in producers:
            assert producer.stdin is not None
            producer.stdin.write("go\n")
            producer.stdin.flush()
        redis_pids = {p.communicate(timeout=PATIENCE)[0].strip() for p in producers}
        assert all(p.returncode == 0 for p in producers)
        assert redis_pids == {str(servers[0])}
        assert redis_servers_of(home) == servers

        # A probe sent last is answered only after everything queued before it.
        probe = run_tipline("probe", "--timeout", str(PATIENCE), env=env)
        assert probe.returncode == 0, probe.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        for producer in producers:
            if producer.poll() is None:
                producer.kill()
        _, worker_log = worker.communicate(timeout=PATIENCE)
    assert worker.returncode == 0, worker_log

    engine = make_engine(f"sqlite:///{home / 'tipline.sqlite3'}")
    with make_session_factory(engine)() as session:
        total = session.scalar(select(func.count()).select_from(QueueProbe))
        unanswered = session.scalar(
            select(func.count()).select_from(QueueProbe).where(QueueProbe.answered_at.is_(None))
        )
    engine.dispose()
    assert total == PRODUCERS * PROBES_EACH + 1
    assert unanswered == 0

    # The last process to leave stopped the server.
    deadline = time.monotonic() + 10
    while redis_servers_of(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_servers_of(home) == []


def test_a_server_is_reused_and_only_the_last_user_stops_it(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "redis")
    second = EmbeddedRedis(tmp_path / "redis")
    url = first.start()
    assert second.start(attach=False) == url
    first.client().set("tip:1", "received")
    holder = subprocess.Popen(  # another process using the same server
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from tipline.embedded_redis import EmbeddedRedis;"
            f"EmbeddedRedis(Path({str(tmp_path / 'redis')!r})).start();"
            "print('up', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
        assert first.release() is False  # the other process still uses it
        assert first.is_running()
    finally:
        holder.communicate(timeout=30)  # closes its stdin: it exits cleanly, being last, stops it
    assert not first.is_running()
    # Restarted, it still has what was written: nothing queued is lost across restarts.
    first.start(attach=False)
    assert first.client().get("tip:1") == b"received"
    first.stop()


@pytest.fixture
def short_base() -> Iterator[Path]:
    """A short folder standing in for /run/user/UID (pytest's own folders are too deep)."""
    base = Path(tempfile.mkdtemp(prefix="tl-run-", dir="/tmp"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_a_deep_home_gets_a_short_socket_path_in_a_private_folder(
    tmp_path: Path, short_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_redis, "_socket_base", lambda: short_base)
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    server = EmbeddedRedis(deep)
    socket = server.socket_path
    assert len(str(socket)) < 100
    assert socket != EmbeddedRedis(tmp_path.joinpath(*["other-long-name"] * 8)).socket_path
    # Only this user can enter the folder, so nobody else can bind the socket's name first.
    assert socket.parent.parent == short_base
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700
    # The server really listens there.
    server.start(attach=False)
    try:
        assert server.client().ping()
    finally:
        server.stop()


def test_a_socket_folder_others_can_enter_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_redis, "_socket_base", lambda: tmp_path)
    planted = tmp_path / f"tipline-{os.getuid()}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # as if another local user had made it first, open to all
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)

    with pytest.raises(EmbeddedRedisError, match="not a private folder"):
        EmbeddedRedis(deep).start(attach=False)
    assert list(planted.iterdir()) == []


def test_a_symlink_in_place_of_the_socket_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_redis, "_socket_base", lambda: tmp_path / "run")
    (tmp_path / "run").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "run" / f"tipline-{os.getuid()}").symlink_to(elsewhere)

    with pytest.raises(EmbeddedRedisError, match="not a private folder"):
        _ = EmbeddedRedis(tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)).socket_path
