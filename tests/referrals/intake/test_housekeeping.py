"""Attachment housekeeping: what killed uploads left on disk is found and removed, and nothing
a receipt was given for is touched."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from referrals.clock import SystemClock
from referrals.intake import housekeeping
from referrals.intake.attachments import AttachmentStore
from referrals.intake.housekeeping import AttachmentHousekeeping, HousekeepingReport
from referrals.intake.models import Attachment
from referrals.intake.receiving import TipReceiver
from referrals.jobs import at_most_every
from tests.conftest import RegisteredAgency
from tests.support import run_tipline, tipline_env
from tipline.cli import cli
from tipline.config import Settings
from tipline.runtime import Runtime

TWO_HOURS = 2 * 3600


class Storage:
    """Files laid out as AttachmentStore lays them out, aged as a test needs."""

    def __init__(self, runtime: Runtime, tip_id: str) -> None:
        self.store = AttachmentStore(runtime.settings.attachments_dir)
        self.runtime = runtime
        self.tip_id = tip_id

    def _aged(self, path: Path, age: float) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x85\x01ciphertext")
        moment = time.time() - age
        os.utime(path, (moment, moment))
        return path

    def partial(self, *, age: float) -> Path:
        name = f"{uuid.uuid4().hex}.pgp.part"
        return self._aged(self.store.root / "incoming" / name, age)

    def stored(self, *, age: float, recorded: bool) -> Path:
        name = f"{uuid.uuid4().hex}.pgp"
        path = self._aged(self.store.path(name), age)
        if recorded:
            with self.runtime.session_factory.begin() as session:
                session.add(
                    Attachment(
                        id=str(uuid.uuid4()),
                        tip_id=self.tip_id,
                        sha256="0" * 64,
                        size_bytes=12,
                        storage_name=name,
                        received_at=self.runtime.clock.now(),
                    )
                )
        return path


@pytest.fixture
def storage(runtime: Runtime, agencies: dict[str, RegisteredAgency]) -> Storage:
    # Any tip will do: attachment rows only need one to point at.
    body = b"-----BEGIN PGP MESSAGE-----\n\nhQEMA0\n-----END PGP MESSAGE-----\n"
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        tip_id = receiver.receive(agencies["agency-a"].id, body).tip.id
    return Storage(runtime, tip_id)


def housekeeper(runtime: Runtime) -> AttachmentHousekeeping:
    return AttachmentHousekeeping(
        runtime.session_factory,
        store=AttachmentStore(runtime.settings.attachments_dir),
        clock=SystemClock(),
    )


def test_abandoned_uploads_and_unrecorded_files_are_removed_after_an_hour(
    runtime: Runtime, storage: Storage
) -> None:
    abandoned = storage.partial(age=TWO_HOURS)
    uploading = storage.partial(age=60)
    acknowledged = storage.stored(age=TWO_HOURS, recorded=True)
    never_recorded = storage.stored(age=TWO_HOURS, recorded=False)
    committing = storage.stored(age=60, recorded=False)

    report = housekeeper(runtime).run()

    assert report == HousekeepingReport(partials_removed=1, orphans_removed=1)
    assert not abandoned.exists() and not never_recorded.exists()
    assert uploading.exists() and acknowledged.exists() and committing.exists()
    assert housekeeper(runtime).run() == HousekeepingReport(0, 0)


def test_storage_is_looked_up_in_batches(
    runtime: Runtime, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "BATCH", 4)
    kept = [storage.stored(age=TWO_HOURS, recorded=True) for _ in range(9)]
    removed = [storage.stored(age=TWO_HOURS, recorded=False) for _ in range(10)]

    assert housekeeper(runtime).run().orphans_removed == 10

    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in removed)


def test_a_maintenance_task_runs_at_most_once_per_its_interval(runtime: Runtime) -> None:
    runs: list[int] = []
    task = at_most_every(3600, "test-task", lambda _context: runs.append(1))

    for _ in range(3):
        task(runtime.job_context())

    assert runs == [1]


def test_the_housekeeping_command_reports_what_it_removed(
    settings: Settings, runtime: Runtime, storage: Storage
) -> None:
    storage.partial(age=TWO_HOURS)
    storage.stored(age=TWO_HOURS, recorded=False)

    result = CliRunner(env=tipline_env(settings)).invoke(
        cli, ["housekeeping"], catch_exceptions=False
    )

    assert result.exit_code == 0, result.output
    assert "removed 1 partial upload(s) and 1 stored file(s) never recorded" in result.output


@pytest.mark.slow
def test_a_worker_keeps_house(settings: Settings, runtime: Runtime, storage: Storage) -> None:
    abandoned = storage.partial(age=TWO_HOURS)
    never_recorded = storage.stored(age=TWO_HOURS, recorded=False)
    acknowledged = storage.stored(age=TWO_HOURS, recorded=True)

    worker = run_tipline(
        "worker",
        "--burst",
        env=tipline_env(settings, TIPLINE_STORAGE_DIR=str(runtime.settings.attachments_dir)),
    )

    assert worker.returncode == 0, worker.stderr
    assert not abandoned.exists() and not never_recorded.exists()
    assert acknowledged.exists()
