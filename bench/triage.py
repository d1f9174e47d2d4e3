"""Benchmark of processing tips into triage: `tipline worker --burst` against bare `gpg`.

Run: .venv/bin/python bench/triage.py [--tips N] [--workers 1,2]

Sets up a scratch embedded home under /tmp (`tipline init`, one partner agency with its own
key), seals N tips with `gpg` as a partner does and receives them (stored, jobs queued) before
any clock starts. Then, for each worker count W, with the same tips queued again each time:
  * the pipeline: W `tipline worker --burst` processes started together, timed from start to
    the last one's exit; every tip must end `in_triage` (decrypt, verify, validate, correlate,
    score, route, commit);
  * the baseline, in the same run: `gpg --decrypt` (verifying the signature) of the same N
    messages in the same GnuPG home, one process per message, W at a time (the same
    concurrency as the workers, so both use the cores alike).
Prints ms per tip (wall time over N) for both and their ratio. Everything is removed at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch_centre import open_centre  # noqa: E402

from tests.partners import PartnerKeys, valid_tip  # noqa: E402


def receive_all(env: dict[str, str], sealed: list[bytes]) -> list[str]:
    """Store the tips and queue their jobs, in a process of its own (as the web side does)."""
    script = (
        "import json, sys\n"
        "from referrals.intake.receiving import TipReceiver\n"
        "from tipline.config import Settings\n"
        "from tipline.runtime import Runtime\n"
        "rt = Runtime.build(Settings.from_environment())\n"
        "bodies = json.load(sys.stdin)\n"
        "ids = []\n"
        "with rt.session_factory() as session:\n"
        "    receiver = TipReceiver(session, queue=rt.queue, clock=rt.clock)\n"
        "    ids = [receiver.receive(int(sys.argv[1]), b.encode()).tip.id for b in bodies]\n"
        "rt.close()\n"
        "print(json.dumps(ids))\n"
    )
    agency_id = env["BENCH_AGENCY_ID"]
    result = subprocess.run(
        [sys.executable, "-c", script, agency_id],
        cwd=ROOT,
        env=env,
        input=json.dumps([body.decode() for body in sealed]).encode(),
        capture_output=True,
        check=True,
        timeout=3600,
    )
    ids: list[str] = json.loads(result.stdout)
    return ids


def statuses(env: dict[str, str]) -> dict[str, int]:
    script = (
        "import json\n"
        "from sqlalchemy import func, select\n"
        "from referrals.intake.models import Tip\n"
        "from tipline.config import Settings\n"
        "from tipline.runtime import Runtime\n"
        "rt = Runtime.build(Settings.from_environment())\n"
        "with rt.session_factory() as s:\n"
        "    rows = s.execute(select(Tip.status, func.count()).group_by(Tip.status)).all()\n"
        "rt.close()\n"
        "print(json.dumps({status: n for status, n in rows}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, check=True
    )
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tips", type=int, default=2000)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    options = parser.parse_args()
    counts = [int(n) for n in options.workers.split(",")]

    scratch = Path(tempfile.mkdtemp(prefix="tl-bench-triage-", dir="/tmp"))
    partner = PartnerKeys()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(TIPLINE_HOME=str(scratch / "home"), TIPLINE_LOG_LEVEL="WARNING")
    try:
        intake_fpr, added = open_centre(env, scratch, partner)
        env["BENCH_AGENCY_ID"] = str(added["id"])
        started = time.perf_counter()
        # Distinct tips, sharing the example's selectors: every one is correlated with all the
        # earlier ones (up to the cap), as a busy case would be.
        sealed = [
            partner.seal(
                valid_tip(external_reference=f"BENCH-{i:05d}"), recipient=intake_fpr, signer="bench"
            )
            for i in range(options.tips)
        ]
        print(
            f"# sealed {len(sealed)} tips in {time.perf_counter() - started:.1f} s, "
            "before any clock"
        )
        gnupg_home = scratch / "home" / "gnupg"
        passphrase = scratch / "home" / "secrets" / "intake_key_passphrase"
        for workers in counts:
            receive_all(env, sealed)
            started = time.perf_counter()
            running = [
                subprocess.Popen(
                    [sys.executable, "-m", "tipline", "worker", "--burst"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(workers)
            ]
            for process in running:
                process.wait(timeout=3600)
            pipeline = time.perf_counter() - started
            done = statuses(env)
            if done.get("in_triage", 0) < len(sealed) * (counts.index(workers) + 1):
                raise SystemExit(f"not every tip reached triage: {done}")

            def bare_gpg(body: bytes) -> None:
                subprocess.run(
                    ["gpg", "--homedir", str(gnupg_home), "--batch", "--quiet",
                     "--pinentry-mode", "loopback", "--passphrase-file", str(passphrase),
                     "--trust-model", "always", "--decrypt"],
                    input=body, capture_output=True, check=True,
                )  # fmt: skip

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as lanes:
                list(lanes.map(bare_gpg, sealed))
            bare = time.perf_counter() - started
            per_tip, per_gpg = pipeline / len(sealed) * 1000, bare / len(sealed) * 1000
            print(
                f"workers {workers}: pipeline {per_tip:6.1f} ms/tip "
                f"({len(sealed) / pipeline:5.1f} tips/s)   bare gpg --decrypt "
                f"{per_gpg:5.1f} ms/tip   ratio {per_tip / per_gpg:4.1f}x"
            )
    finally:
        partner.close()
        subprocess.run(["gpgconf", "--homedir", str(scratch / "home" / "gnupg"), "--kill", "all"],
                       check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
