"""Housekeeping of attachment storage: what a killed process or a failed commit left on disk.

An upload is written to ``incoming/<name>.part``, renamed into place, then recorded in
``attachments`` and committed; only then does the partner get a receipt. A process killed
part-way leaves a ``.part`` file behind; one killed (or a commit failed) between the rename
and the commit leaves a finished file no row names. Neither was ever acknowledged, so after
an hour (far longer than any upload or commit takes) both are removed. The storage is read
one folder and one batch at a time, so its size does not matter.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from referrals.clock import Clock
from referrals.intake.attachments import AttachmentStore
from referrals.intake.models import Attachment

logger = logging.getLogger(__name__)

DEFAULT_MIN_AGE = timedelta(hours=1)
BATCH = 500


@dataclass(frozen=True)
class HousekeepingReport:
    """What one pass removed."""

    partials_removed: int
    orphans_removed: int


class AttachmentHousekeeping:
    """Removes abandoned partial uploads and finished files no attachment row names.

    Args:
        session_factory: makes the sessions the pass reads in.
        store: the attachment storage.
        clock: the clock.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], *, store: AttachmentStore, clock: Clock
    ) -> None:
        self.sessions = session_factory
        self.store = store
        self.clock = clock

    def run(self, *, min_age: timedelta = DEFAULT_MIN_AGE) -> HousekeepingReport:
        """One pass over the storage; files changed less than ``min_age`` ago are left alone."""
        cutoff = (self.clock.now() - min_age).timestamp()
        partials = 0
        for entry in self.store.partial_files():
            if _older(entry, cutoff):
                partials += _remove(entry)
        orphans = 0
        batch: list[os.DirEntry[str]] = []
        for entry in self.store.stored_files():
            if _older(entry, cutoff):
                batch.append(entry)
            if len(batch) == BATCH:
                orphans += self._remove_orphans(batch)
                batch = []
        orphans += self._remove_orphans(batch)
        if partials or orphans:
            logger.warning(
                "housekeeping: removed %d abandoned partial upload(s) and %d stored file(s) "
                "never recorded (no receipt was given for any of them)",
                partials,
                orphans,
            )
        return HousekeepingReport(partials_removed=partials, orphans_removed=orphans)

    def _remove_orphans(self, entries: list[os.DirEntry[str]]) -> int:
        if not entries:
            return 0
        with self.sessions() as session:
            recorded = set(
                session.scalars(
                    select(Attachment.storage_name).where(
                        Attachment.storage_name.in_([entry.name for entry in entries])
                    )
                )
            )
        return sum(_remove(entry) for entry in entries if entry.name not in recorded)


def _older(entry: os.DirEntry[str], cutoff: float) -> bool:
    try:
        return entry.stat(follow_symlinks=False).st_mtime < cutoff
    except FileNotFoundError:
        return False


def _remove(entry: os.DirEntry[str]) -> int:
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        return 0  # another worker's pass got there first
    return 1
