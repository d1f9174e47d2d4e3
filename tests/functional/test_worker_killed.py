"""A worker killed in the middle of processing a tip loses nothing and doubles nothing: the tip
is processed again and reaches the triage queue once, with one set of links."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from referrals.audit.models import AuditRecord
from referrals.intake import tasks
from referrals.intake.models import Tip, TipStatus
from referrals.intake.receiving import TipReceiver
from referrals.jobs import INTAKE_QUEUE
from referrals.triage.models import TipLink
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.support import PATIENCE, tipline_env
from tipline.config import Settings
from tipline.runtime import Runtime


def stalling_gpg(folder: Path) -> Path:
    """A `gpg` first on the PATH that, asked to decrypt, says so (a file) and then stalls:
    the moment to kill the worker, in the middle of processing the tip."""
    real = subprocess.run(["sh", "-c", "command -v gpg"], capture_output=True, text=True).stdout
    marker = folder / "decrypting"
    wrapper = folder / "gpg"
    wrapper.write_text(
        "#!/bin/sh\n"
        # The marker names the process that ran gpg (rq's work horse) and this one.
        f'case " $* " in *" --decrypt "*) echo "$PPID $$" > "{marker}"; exec sleep {PATIENCE};; '
        "esac\n"
        f'exec "{real.strip()}" "$@"\n'
    )
    wrapper.chmod(0o700)
    return marker


def status_of(runtime: Runtime, tip_id: str) -> str | None:
    with runtime.session_factory() as session:
        return session.scalar(select(Tip.status).where(Tip.id == tip_id))


@pytest.mark.slow
def test_a_worker_killed_mid_tip_leaves_it_to_be_processed_once_more_with_one_set_of_links(
    runtime: Runtime,
    settings: Settings,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    tmp_path: Path,
) -> None:
    # An earlier tip from another agency, sharing the example's selectors.
    earlier = (
        TipReceiver(runtime.session_factory(), queue=runtime.queue, clock=runtime.clock)
        .receive(
            agencies["agency-b"].id,
            partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-b"),
        )
        .tip.id
    )
    tasks.process_tip(runtime.job_context(), earlier)
    runtime.queue.queue(INTAKE_QUEUE).empty()
    with runtime.session_factory() as session:
        tip_id = (
            TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
            .receive(
                agencies["agency-a"].id,
                partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"),
            )
            .tip.id
        )

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = stalling_gpg(bin_dir)
    env = tipline_env(settings, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tipline", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the work horse dies with it
    )
    try:
        deadline = time.monotonic() + PATIENCE
        while not (marker.exists() and marker.read_text().strip()):
            assert worker.poll() is None, "the worker stopped before processing the tip"
            assert time.monotonic() < deadline, "the worker never started decrypting the tip"
            time.sleep(0.1)
    finally:
        # The worker, and its work horse (rq runs it in a process group of its own) with the
        # gpg it is waiting for: nothing of the first attempt lives on.
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(PATIENCE)
        if marker.exists():
            for pid in marker.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)

    with runtime.session_factory() as session:
        stuck = session.get(Tip, tip_id)
        assert stuck is not None
        assert (stuck.status, stuck.attempts) == (TipStatus.PROCESSING, 1)
    registry = StartedJobRegistry(INTAKE_QUEUE, connection=runtime.redis)
    registry.cleanup(timestamp=int(time.time() + timedelta(hours=1).total_seconds()))

    # rq finds the dead worker's job abandoned once its time is up (here, at once) and
    # schedules its retry; a worker's scheduler runs it.
    log = tmp_path / "worker.log"
    with log.open("w") as output:  # a file, not a pipe: a full pipe would stall the worker
        worker = subprocess.Popen(
            [sys.executable, "-m", "tipline", "worker"],
            env=tipline_env(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + PATIENCE
            while status_of(runtime, tip_id) != TipStatus.IN_TRIAGE:
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the tip was never processed again"
                time.sleep(0.2)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(PATIENCE)
    assert "Traceback" not in log.read_text(), log.read_text()
    with runtime.session_factory() as session:
        done = session.get(Tip, tip_id)
        assert done is not None
        assert (done.status, done.attempts) == (TipStatus.IN_TRIAGE, 2)
        links = session.scalars(select(TipLink).where(TipLink.tip_id == tip_id)).all()
        assert {link.earlier_tip_id for link in links} == {earlier}
        assert len(links) == 7  # one per shared value, once
        outcomes = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(
                AuditRecord.subject == f"tip:{tip_id}", AuditRecord.action == "tip.status_changed"
            )
        )
        assert outcomes == 1
