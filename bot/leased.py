"""Runners of leased rows: claim what is due in batches, handle each, woken by a clock.

Follow-ups and digest subscriptions are both rows with a due time that a worker
claims with a lease (see :func:`storage.repositories._dialect.claim_update`), so any
number of bot processes may run a runner on one database. A subclass says which
repository it claims from and how one claimed row is handled.

APScheduler (in memory) only wakes the runner; time comes from the injected clock,
so tests call :meth:`LeasedRunner.run_due` after moving a ManualClock.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Generic, Protocol, TypeVar

# APScheduler 3 ships no type information.
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from bot.runtime.context import Services
from storage.db import UnitOfWork

RecordT = TypeVar("RecordT")

DEFAULT_LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5


class ClaimsDue(Protocol[RecordT]):
    """A repository whose due rows a worker claims with a lease."""

    async def claim_due(
        self, *, now: datetime, worker_id: str, lease_until: datetime, limit: int
    ) -> list[RecordT]: ...


class LeasedRunner(ABC, Generic[RecordT]):
    """Claims and handles due rows for one process; ``worker_id`` names its claims."""

    #: The scheduler job's id prefix and name, and what a failed run's log line names.
    job_id: ClassVar[str]
    job_name: ClassVar[str]
    what: ClassVar[str]
    default_interval: ClassVar[float]
    default_batch_size: ClassVar[int]
    #: One run_due call stops after this many batches, so a flood cannot starve the loop.
    max_batches: ClassVar[int]

    def __init__(
        self,
        services: Services,
        *,
        worker_id: str,
        lease: timedelta = DEFAULT_LEASE,
        batch_size: int | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if not worker_id or len(worker_id) > 64:
            raise ValueError("worker_id must be 1-64 characters")
        self.services = services
        self.worker_id = worker_id
        self.lease = lease
        self.batch_size = self.default_batch_size if batch_size is None else batch_size
        self.max_attempts = max_attempts
        self._running = asyncio.Lock()
        self._log = logging.getLogger(type(self).__module__)

    @abstractmethod
    def _claims(self, uow: UnitOfWork) -> ClaimsDue[RecordT]:
        """The repository the rows are claimed from."""

    @abstractmethod
    async def handle(self, record: RecordT) -> str | None:
        """Handle one claimed row; returns its outcome (None if it was taken over)."""

    def _due_signal(self) -> asyncio.Event | None:
        """An event that wakes the runner at once when set (None: only the clock does)."""
        return None

    # --- waking up --------------------------------------------------------------------

    def start(self, scheduler: AsyncIOScheduler, *, interval: float | None = None) -> None:
        """Have ``scheduler`` wake the runner every ``interval`` seconds (first run now)."""
        scheduler.add_job(
            self.wake,
            "interval",
            seconds=self.default_interval if interval is None else interval,
            id=f"{self.job_id}:{self.worker_id}",
            name=self.job_name,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )

    async def wake(self) -> int:
        """One scheduled wake-up: run what is due, never raise (the scheduler would log it
        without context)."""
        try:
            return await self.run_due()
        except Exception:
            self._log.exception("%s run failed", self.what)
            return 0

    async def run(self, stopping: asyncio.Event, *, interval: float | None = None) -> None:
        """Run until ``stopping``: an in-memory APScheduler wakes the runner every
        ``interval`` seconds, and the due signal (if any) wakes it at once."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        self.start(scheduler, interval=interval)
        scheduler.start()
        signal = self._due_signal()
        try:
            if signal is None:
                await stopping.wait()
            else:
                await self._wake_on(signal, stopping)
        finally:
            scheduler.shutdown(wait=False)

    async def _wake_on(self, signal: asyncio.Event, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            waiters = {
                asyncio.ensure_future(stopping.wait()),
                asyncio.ensure_future(signal.wait()),
            }
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if signal.is_set() and not stopping.is_set():
                signal.clear()
                await self.wake()

    # --- claiming ---------------------------------------------------------------------

    async def run_due(self) -> int:
        """Claim and handle every row due now; returns how many were claimed."""
        async with self._running:
            total = 0
            for _ in range(self.max_batches):
                claimed = await self.claim()
                total += len(claimed)
                for record in claimed:
                    await self.handle(record)
                if len(claimed) < self.batch_size:
                    break
            return total

    async def claim(self) -> list[RecordT]:
        """Take a batch of due rows (committed at once, so the lease starts now)."""
        now = self.services.clock.now()
        async with self.services.database.uow() as uow:
            return await self._claims(uow).claim_due(
                now=now,
                worker_id=self.worker_id,
                lease_until=now + self.lease,
                limit=self.batch_size,
            )
