"""One embedded Redis server per home, whatever processes start at once; no job lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from referrals.database import make_engine, make_session_factory
from referrals.health.models import QueueProbe
from tests.support import run_tipline
from tipline.embedded_redis import EmbeddedRedis

PRODUCERS = 4
PROBES_EACH = 25

PRODUCER = textwrap.dedent(
    f"""
    from tipline import create_app
    from tipline.database import runtime, session
    from referrals.health.services import QueueProbeService

    app = create_app()
    with app.app_context():
        rt = runtime()
        service = QueueProbeService(session(), queue=rt.queue, clock=rt.clock)
        for _ in range({PROBES_EACH}):
            service.send()
        print(rt.redis.info("server")["process_id"])
    """
)


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
            [sys.executable, "-c", PRODUCER], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(PRODUCERS)
    ]
    try:
        redis_pids = {p.communicate(timeout=120)[0].strip() for p in producers}
        assert all(p.returncode == 0 for p in producers)
        servers = redis_servers_of(home)
        assert len(servers) == 1
        assert redis_pids == {str(servers[0])}

        # A probe sent last is answered only after everything queued before it.
        probe = run_tipline("probe", "--timeout", "120", env=env)
        assert probe.returncode == 0, probe.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        _, worker_log = worker.communicate(timeout=60)
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


def test_a_deep_home_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    server = EmbeddedRedis(deep)
    assert len(str(server.socket_path)) < 100
    assert (
        server.socket_path != EmbeddedRedis(tmp_path.joinpath(*["other-long-name"] * 8)).socket_path
    )
