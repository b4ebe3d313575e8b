"""Housekeeping: rows whose work is finished do not stay for ever.

Handled inbox rows (kept only to recognise a redelivered update), sent, failed and
dropped outbox messages (they hold the text that was sent) and finished follow-ups
are deleted once they are older than ``RETENTION_DAYS``. Telegram redelivers an
update for at most 24 hours, so a retention of two days or more keeps duplicates
recognisable. Each delete is its own statement: with several instances on one
database, a second sweep simply finds nothing left.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.periodic import sweep_every
from bot.runtime.context import Services

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3600.0


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows one sweep deleted, per table."""

    inbox: int
    outbox: int
    followups: int

    @property
    def total(self) -> int:
        return self.inbox + self.outbox + self.followups


class Housekeeper:
    """Deletes finished rows older than the retention period."""

    def __init__(self, services: Services, *, retention: timedelta) -> None:
        if retention < timedelta(days=2):
            raise ValueError("retention must be at least two days (Telegram redelivers for 24 h)")
        self._services = services
        self._retention = retention

    async def run(self, stopping: asyncio.Event, *, interval: float = DEFAULT_INTERVAL) -> None:
        """Sweep now, then every ``interval`` seconds until ``stopping``."""
        await sweep_every(
            interval, stopping, self.sweep, log=log, failure="housekeeping sweep failed"
        )

    async def sweep(self) -> Purged:
        """Delete what finished before now minus the retention period."""
        before = self._services.clock.now() - self._retention
        async with self._services.database.uow() as uow:
            purged = Purged(
                inbox=await uow.repos.inbox.purge_handled(before),
                outbox=await uow.repos.outbox.purge_finished(before),
                followups=await uow.repos.followups.purge_finished(before),
            )
        if purged.total:
            log.info(
                "housekeeping: deleted %d inbox, %d outbox and %d follow-up rows",
                purged.inbox,
                purged.outbox,
                purged.followups,
            )
        return purged
