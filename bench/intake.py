"""Benchmark of receiving tips over HTTP: gunicorn on loopback, as the product serves it.

Run: .venv/bin/python bench/intake.py [--duration S] [--backends sqlite,postgresql]
                                      [--concurrency 1,8,32] [--gunicorn-args "..."]

For each backend (the embedded default: SQLite and the embedded Redis; or PostgreSQL and a
Redis server) it sets up a scratch home under /tmp (`tipline init`, one partner agency with
its own key, `tipline agency add --json` for the token), seals tips with `gpg` as a partner
does (before the clock starts), starts `gunicorn --workers 2 wsgi:app` on a free loopback
port, and with 1, 8 and 32 concurrent connections of `wrk` (Debian's package; each connection
sends back to back: a closed loop; wrk's script gives each tip a fresh Idempotency-Key)
measures:
  * POST /api/v1/tips with a sealed tip and a fresh Idempotency-Key: tips/s, p50/p99, errors
    (anything but 202);
  * the baseline, the same clients against GET /api/v1/openapi.json on the same server: a
    static answer through the same app, with no token lookup, rate limiter or database.
No job worker runs: tips are stored and their jobs accumulate in the queue (we measure
receiving). The API rate limit is raised so the limiter counts but never refuses.
Everything is removed at exit: gunicorn, the embedded Redis, gpg agents, the PostgreSQL
schema of the run, Redis database 14 and the scratch folders.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.partners import PartnerKeys, valid_tip  # noqa: E402
from tipline.embedded_redis import EmbeddedRedis  # noqa: E402

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/14"
RATE_LIMIT = "1000000/second"
SEALED_TIPS = 300
WEB_WORKERS = 2  # as `tipline serve` runs it (the README's production example says 4)
BASELINE_PATH = "/api/v1/openapi.json"
TICKS = os.sysconf("SC_CLK_TCK")


# --- measurement -------------------------------------------------------------------------


@dataclass
class Result:
    rate: float
    p50: float
    p99: float
    errors: Counter[str] = field(default_factory=Counter)
    accepted: int = 0  # expected answers over the whole run, warm-up included
    client_cpu: float = 0.0  # wrk, fraction of one core
    server_cpu: float = 0.0  # gunicorn workers, fraction of one core
    machine_busy: float = 0.0  # fraction of all cores


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def idle_check(seconds: float = 2.0) -> str:
    """How busy the machine is with nothing of ours running: other load skews every figure."""
    busy0, all0 = machine_ticks()
    time.sleep(seconds)
    busy1, all1 = machine_ticks()
    busy = (busy1 - busy0) / max(1, all1 - all0)
    warning = "  <-- WARNING: something else is running, figures will be low" if busy > 0.1 else ""
    return f"machine busy before the run: {busy:.0%}{warning}"


def process_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# wrk's Lua side: each request of a POST run is a new tip (a sealed body from the folder, round
# robin, and an Idempotency-Key no other request of the whole bench used); the summary prints
# what the Python side parses (answers by status, latency percentiles).
WRK_SCRIPT = r"""
local folder, token, prefix, count = os.getenv("BENCH_TIPS"), os.getenv("BENCH_TOKEN"),
  os.getenv("BENCH_PREFIX"), tonumber(os.getenv("BENCH_COUNT"))
-- Globals, not locals: done() reads each thread's statuses with thread:get().
bodies, n, statuses = {}, 0, {}
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  if folder then
    for i = 0, count - 1 do
      local f = assert(io.open(folder .. "/" .. i .. ".asc", "rb"))
      bodies[i] = f:read("*a")
      f:close()
    end
  end
end
function request()
  n = n + 1
  if not folder then return wrk.format("GET") end
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/pgp-encrypted",
    ["Idempotency-Key"] = prefix .. "-" .. id .. "-" .. n,
  }, bodies[n % count])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counted = thread:get("statuses")
    for status, k in pairs(counted) do total[status] = (total[status] or 0) + k end
  end
  for status, k in pairs(total) do io.write(string.format("STATUS %d %d\n", status, k)) end
  io.write(string.format("ERRORS %d\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
  io.write(string.format("LATENCY %f %f\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
  io.write(string.format("SECONDS %f\n", summary.duration / 1e6))
end
"""


def wrk(
    url: str, *, clients: int, seconds: float, env: dict[str, str], script: Path
) -> tuple[Counter[int], int, float, float, float]:
    """One wrk run: answers by status, socket errors, p50 and p99 (ms), seconds measured."""
    threads = min(clients, 2)
    if "BENCH_PREFIX" in env:  # each wrk run its own keys: a repeated key is a replay, not a tip
        env = {**env, "BENCH_PREFIX": f"{env['BENCH_PREFIX']}-{secrets.token_hex(4)}"}
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s",
         "-s", str(script), url],
        env={**os.environ, **env}, capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    statuses: Counter[int] = Counter()
    errors, p50, p99, measured = 0, float("nan"), float("nan"), seconds
    for line in out.splitlines():
        head, *values = line.split()
        if head == "STATUS":
            statuses[int(values[0])] += int(values[1])
        elif head == "ERRORS":
            errors = int(values[0])
        elif head == "LATENCY":
            p50, p99 = float(values[0]), float(values[1])
        elif head == "SECONDS":
            measured = float(values[0])
    return statuses, errors, p50, p99, measured


def load(
    url: str,
    *,
    expect: int,
    clients: int,
    warmup: float,
    duration: float,
    server_pids: list[int],
    env: dict[str, str],
    script: Path,
) -> Result:
    """wrk with ``clients`` connections, each sending back to back (a closed loop), for
    ``warmup`` seconds (answers counted, not timed), then ``duration`` seconds measured."""
    warm, _, _, _, _ = wrk(url, clients=clients, seconds=warmup, env=env, script=script)
    cpu0, srv0, (busy0, all0) = children_cpu(), process_ticks(server_pids), machine_ticks()
    statuses, socket_errors, p50, p99, elapsed = wrk(
        url, clients=clients, seconds=duration, env=env, script=script
    )
    cpu1, srv1, (busy1, all1) = children_cpu(), process_ticks(server_pids), machine_ticks()
    errors: Counter[str] = Counter(
        {f"HTTP {status}": k for status, k in statuses.items() if status != expect}
    )
    if socket_errors:
        errors["socket"] = socket_errors
    return Result(
        rate=statuses[expect] / elapsed,
        p50=p50,
        p99=p99,
        errors=errors,
        accepted=warm[expect] + statuses[expect],
        client_cpu=(cpu1 - cpu0) / elapsed,
        server_cpu=(srv1 - srv0) / TICKS / elapsed,
        machine_busy=(busy1 - busy0) / max(1, all1 - all0),
    )


# --- the stack under test ----------------------------------------------------------------


@dataclass
class Backend:
    name: str
    database_url: str | None
    redis_url: str | None
    schema: str | None = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tipline(env: dict[str, str], *args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tipline", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tipline {' '.join(args)}: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


def reachable(backend: Backend) -> str | None:
    """None if the backend's services answer, else why not."""
    if backend.database_url is None:
        return None
    import redis
    from sqlalchemy import text

    from referrals.database import make_engine

    try:
        engine = make_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip this backend
        return f"PostgreSQL at {PG_URL} unreachable ({type(exc).__name__})"
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {REDIS_URL} unreachable ({type(exc).__name__})"
    return None


@dataclass
class Stack:
    port: int
    master: int  # gunicorn's master process
    token: str
    sealed: list[bytes]
    database_url: str
    redis_url: str
    scratch: Path  # removed with the stack


@contextlib.contextmanager
def stack(backend: Backend, gunicorn_args: list[str], web_workers: int) -> Iterator[Stack]:
    """A scratch home with one agency, sealed tips and gunicorn serving it."""
    scratch = Path(tempfile.mkdtemp(prefix="tl-bench-", dir="/tmp"))
    gnupg_home = Path(tempfile.mkdtemp(prefix="tl-bench-gpg-", dir="/tmp"))
    partner = PartnerKeys()
    home = scratch / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(
        TIPLINE_HOME=str(home),
        TIPLINE_GNUPG_HOME=str(gnupg_home),
        TIPLINE_API_RATE_LIMIT=RATE_LIMIT,
        TIPLINE_LOG_LEVEL="WARNING",
    )
    engine = None
    server: subprocess.Popen[bytes] | None = None
    try:
        if backend.database_url is not None:
            from sqlalchemy import text

            from referrals.database import make_engine

            backend.schema = f"tipline_bench_{os.getpid()}_{secrets.token_hex(4)}"
            engine = make_engine(PG_URL)
            with engine.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{backend.schema}"'))
            options = quote(f"-csearch_path={backend.schema}")
            env["TIPLINE_DATABASE_URL"] = f"{PG_URL}?options={options}"
            env["TIPLINE_REDIS_URL"] = REDIS_URL
        tipline(env, "init")
        intake_key = tipline(env, "intake-key")
        partner.trust_recipient(intake_key)
        intake_fpr = next(
            line.split(":")[9]
            for line in partner.gpg("--with-colons", "--show-keys", stdin=intake_key.encode())
            .decode()
            .splitlines()
            if line.startswith("fpr:")
        )
        partner.generate("bench")
        key_file = scratch / "partner.asc"
        key_file.write_bytes(partner.public_key("bench"))
        added = json.loads(
            tipline(
                env,
                "agency",
                "add",
                "--name",
                "Bench",
                "--country",
                "GB",
                "--key-file",
                str(key_file),
                "--json",
            )
        )
        started = time.perf_counter()
        sealed = [
            partner.seal(
                valid_tip(external_reference=f"BENCH-{i:05d}"), recipient=intake_fpr, signer="bench"
            )
            for i in range(SEALED_TIPS)
        ]
        print(
            f"#   sealed {len(sealed)} tips ({len(sealed[0])} bytes armored) "
            f"in {time.perf_counter() - started:.1f} s, before the clock"
        )
        port = free_port()
        log = (scratch / "gunicorn.log").open("wb")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(web_workers),
                *gunicorn_args,
                "--bind",
                f"127.0.0.1:{port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until_serving(port, server)
        yield Stack(
            port=port,
            master=server.pid,  # `python -m gunicorn` is the master itself
            token=added["token"],
            sealed=sealed,
            database_url=env.get("TIPLINE_DATABASE_URL") or f"sqlite:///{home}/tipline.sqlite3",
            redis_url=backend.redis_url or EmbeddedRedis(home / "redis").url,
            scratch=scratch,
        )
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if backend.redis_url is None:
            with contextlib.suppress(Exception):
                EmbeddedRedis(home / "redis").stop()  # the last worker normally did already
        else:
            import redis

            with contextlib.suppress(Exception):
                redis.Redis.from_url(REDIS_URL).flushdb()
        if engine is not None and backend.schema is not None:
            from sqlalchemy import text

            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{backend.schema}" CASCADE'))
            engine.dispose()
        subprocess.run(
            ["gpgconf", "--homedir", str(gnupg_home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )
        partner.close()
        shutil.rmtree(gnupg_home, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", BASELINE_PATH)
            if connection.getresponse().status == 200:
                connection.close()
                # Both workers answer once each has loaded the app: give the second a moment.
                time.sleep(1.0)
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    try:
        return [int(pid) for pid in children.read_text().split()]
    except OSError:
        return []


def stored(served: Stack) -> tuple[int, int]:
    """(tips in the database, jobs waiting in the intake queue)."""
    import redis
    from sqlalchemy import text

    from referrals.database import make_engine

    engine = make_engine(served.database_url)
    with engine.connect() as connection:
        tips = int(connection.execute(text("SELECT count(*) FROM tips")).scalar_one())
    engine.dispose()
    client = redis.Redis.from_url(served.redis_url)
    jobs = int(client.llen("rq:queue:intake"))
    client.close()
    return tips, jobs


# --- the run -----------------------------------------------------------------------------


def bench_backend(backend: Backend, options: argparse.Namespace, gunicorn_args: list[str]) -> None:
    print(f"\n## backend: {backend.name}")
    print(f"#   {idle_check()}")
    with stack(backend, gunicorn_args, options.workers) as served:
        port, token, sealed = served.port, served.token, served.sealed
        workers = worker_pids(served.master)
        print(f"#   gunicorn master {served.master}, workers {workers}, port {port}")
        # The sealed tips as files for wrk's script, which sends them round robin.
        bodies = served.scratch / "wrk-bodies"
        bodies.mkdir()
        for i, body in enumerate(sealed):
            (bodies / f"{i}.asc").write_bytes(body)
        script = served.scratch / "bench.lua"
        script.write_text(WRK_SCRIPT)
        url = f"http://127.0.0.1:{port}"
        tip_env = {
            "BENCH_TIPS": str(bodies),
            "BENCH_TOKEN": token,
            "BENCH_COUNT": str(len(sealed)),
        }
        runs = itertools.count()  # every run its own Idempotency-Keys: every 202 is a new tip

        rows = []
        for clients in options.concurrency:
            common = {
                "clients": clients,
                "warmup": options.warmup,
                "duration": options.duration,
                "server_pids": workers,
                "script": script,
            }
            prefix = f"BENCH-{secrets.token_hex(3)}-{next(runs)}"
            tips = load(
                f"{url}/api/v1/tips", expect=202, env={**tip_env, "BENCH_PREFIX": prefix}, **common
            )
            base = load(f"{url}{BASELINE_PATH}", expect=200, env={}, **common)
            rows.append((clients, tips, base))
            errors = ", ".join(f"{k}: {v}" for k, v in tips.errors.items()) or "none"
            print(
                f"#   {clients:>2} clients: {tips.rate:7.1f} tips/s p99 {tips.p99:6.1f} ms, "
                f"baseline {base.rate:7.1f} req/s; tip errors: {errors}"
            )
        sent = sum(tips.accepted for _, tips, _ in rows)
        # wrk stops with a request in flight on each connection: the server stores those tips
        # but wrk never reads their answers (at most one per connection per wrk run).
        in_flight = sum(2 * clients for clients, _, _ in rows)
        in_db, queued = stored(served)
        print(
            f"#   202 answers read {sent}; tips in the database {in_db}; jobs waiting in the "
            f"intake queue {queued}; requests cut off when wrk stopped: at most {in_flight}"
            + ("" if in_db == queued and 0 <= in_db - sent <= in_flight else "  <-- MISMATCH")
        )
        print()
        print(
            "| clients | tips/s | p50 ms | p99 ms | errors | baseline req/s | baseline p50 "
            "| baseline p99 |"
        )
        print("|--------:|-------:|-------:|-------:|-------:|-----:|-----:|-----:|")
        for clients, tips, base in rows:
            errors = sum(tips.errors.values())
            print(
                f"| {clients:>7} | {tips.rate:6.1f} | {tips.p50:6.1f} | {tips.p99:6.1f} "
                f"| {errors:>6} | {base.rate:6.1f} | {base.p50:6.1f} | {base.p99:6.1f} |"
            )
        print()
        print("CPU during the tip runs (baseline runs in brackets), as a fraction of one core:")
        print("| clients | bench client | gunicorn workers | machine busy (of 2 cores) |")
        print("|--------:|------:|------:|------:|")
        for clients, tips, base in rows:
            print(
                f"| {clients:>7} | {tips.client_cpu:.2f} ({base.client_cpu:.2f}) "
                f"| {tips.server_cpu:.2f} ({base.server_cpu:.2f}) "
                f"| {tips.machine_busy:.0%} ({base.machine_busy:.0%}) |"
            )
        worst = rows[-1][1]
        verdict = worst.rate >= 200 and worst.p99 < 100 and not worst.errors
        print(
            f"\ntarget at {rows[-1][0]} clients (>= 200 tips/s, p99 < 100 ms, 0 errors): "
            + ("met" if verdict else "NOT met")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--workers", type=int, default=WEB_WORKERS, help="gunicorn workers")
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help="extra gunicorn options for an experiment, e.g. '--worker-class gthread "
        "--threads 8' (default: none, as the README deploys it)",
    )
    options = parser.parse_args()
    options.concurrency = [int(c) for c in options.concurrency.split(",")]
    gunicorn_args = shlex.split(options.gunicorn_args)
    known = {
        "sqlite": Backend("sqlite (embedded default: SQLite + embedded Redis)", None, None),
        "postgresql": Backend(f"postgresql ({PG_URL}, {REDIS_URL})", PG_URL, REDIS_URL),
    }
    began = time.perf_counter()
    print(f"# tipline intake bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        f"# gunicorn --workers {options.workers} {' '.join(gunicorn_args) or '(sync workers)'} "
        f"wsgi:app on 127.0.0.1; clients: wrk connections, back to back"
    )
    print(
        f"# {options.duration:g} s measured after {options.warmup:g} s warm-up per run; "
        f"TIPLINE_API_RATE_LIMIT={RATE_LIMIT} (limiter counts, never refuses); "
        "no job worker runs (jobs accumulate)"
    )
    print(f"# baseline: GET {BASELINE_PATH} (static, through the app; no token, limiter or DB)")
    for name in options.backends.split(","):
        backend = known.get(name.strip())
        if backend is None:
            parser.error(f"unknown backend {name!r} (known: {', '.join(known)})")
        why = reachable(backend)
        if why is not None:
            print(f"\n## backend: {backend.name}: SKIPPED — {why}")
            continue
        bench_backend(backend, options, gunicorn_args)
    print(f"\n# total bench time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
