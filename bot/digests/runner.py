"""The digest runner: claims due subscriptions and queues each manager's digest.

A subscription is claimed with a lease (see
:mod:`storage.repositories.digest_subscriptions` and :mod:`bot.leased`), so any
number of bot processes may run a runner on one database. The digest is composed
and its chart drawn outside the final transaction; that transaction re-takes the
row (locked on PostgreSQL), queues the text and the chart in the outbox and moves
``next_due_at`` on, all in one commit: a digest is queued once, whoever claimed it.

APScheduler (in memory) only wakes the runner; time comes from the injected clock,
so tests call :meth:`DigestRunner.run_due` after moving a ManualClock.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram.methods import TelegramMethod

from bot.digests.schedule import latest_due, next_due, period_before
from bot.followups.schedule import retry_delay
from bot.leased import LeasedRunner
from bot.runtime.access import roles_of
from bot.usecases.digests import (
    DigestContent,
    cadence_of,
    chosen_services,
    compose_digest,
    digest_methods,
    queue_digest,
)
from storage.db import UnitOfWork
from storage.repositories.digest_subscriptions import (
    DigestSubscriptionRecord,
    DigestSubscriptionRepository,
)
from storage.repositories.digests import Period

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 60.0
MAX_BATCHES = 50


class DigestRunner(LeasedRunner[DigestSubscriptionRecord]):
    """Sends due subscribed digests for one process; ``worker_id`` names its claims."""

    job_id = "digests"
    job_name = "digests"
    what = "digest"
    default_interval = DEFAULT_INTERVAL
    default_batch_size = 20
    max_batches = MAX_BATCHES

    def _claims(self, uow: UnitOfWork) -> DigestSubscriptionRepository:
        return uow.repos.digest_subscriptions

    async def handle(self, record: DigestSubscriptionRecord) -> str | None:
        """Send one claimed subscription's digest; returns the outcome (None if taken over)."""
        try:
            outcome = await self._handle(record)
        except Exception:
            # Never the digest's text: only which subscription.
            log.exception("digest subscription %s failed", record.id)
            await self._after_failure(record)
            return "error"
        log.debug("digest subscription %s: %s", record.id, outcome)
        return outcome

    async def _handle(self, record: DigestSubscriptionRecord) -> str | None:
        services = self.services
        now = services.clock.now()
        cadence = cadence_of(record)
        due = latest_due(cadence, record.next_due_at, now)
        period = period_before(cadence, due)
        prepared = await self._prepare(record, period)
        methods: list[TelegramMethod[Any]] = []
        chat_id = 0
        if isinstance(prepared, tuple):
            chat_id, language, content = prepared
            # The chart is drawn here, outside any transaction, in a worker thread.
            methods = await digest_methods(
                content, chat_id=chat_id, language=language, translator=services.translator
            )
        async with services.database.uow() as uow:
            held = await uow.repos.digest_subscriptions.hold(record.id, self.worker_id)
            if held is None or held.next_due_at != record.next_due_at:
                return None
            if methods:
                await queue_digest(
                    uow,
                    methods,
                    chat_id=chat_id,
                    citizen_id=record.citizen_id,
                    now=now,
                    idempotency_key=f"digest:{record.id}:{period[1].isoformat()}",
                )
            await uow.repos.digest_subscriptions.advance(
                record.id,
                self.worker_id,
                next_due_at=next_due(cadence, due),
                period=period if methods else None,
                now=now,
            )
        if not methods:
            return str(prepared)
        services.signals.outbox_pending.set()
        return "sent"

    async def _prepare(
        self, record: DigestSubscriptionRecord, period: Period
    ) -> tuple[int, str, DigestContent] | str:
        """The chat, language and digest to send, or why nothing is sent.

        Read by a reader: a long digest neither blocks the event loop nor holds SQLite's
        write lock (see :meth:`storage.db.Database.reader`).
        """
        services = self.services
        async with services.database.reader() as uow:
            citizen = await uow.repos.citizens.by_id(record.citizen_id)
            if citizen is None or citizen.telegram_id is None:
                return "no_citizen"
            if citizen.stopped_at is not None or citizen.unreachable_at is not None:
                return "unreachable"
            roles = await roles_of(services, uow, citizen)
            if not roles.is_staff:
                return "not_staff"
            service_ids = chosen_services(record.service_ids, roles)
            if service_ids == []:
                return "no_service"
            content = await compose_digest(
                uow,
                services.translator,
                language=citizen.language,
                service_ids=service_ids,
                period=period,
            )
            return citizen.telegram_id, citizen.language, content

    async def _after_failure(self, record: DigestSubscriptionRecord) -> None:
        now = self.services.clock.now()
        async with self.services.database.uow() as uow:
            repository = uow.repos.digest_subscriptions
            if record.attempts >= self.max_attempts:
                # Give this period up; the next one comes as usual.
                cadence = cadence_of(record)
                due = latest_due(cadence, record.next_due_at, now)
                await repository.advance(
                    record.id,
                    self.worker_id,
                    next_due_at=next_due(cadence, due),
                    period=None,
                    now=now,
                )
            else:
                await repository.retry_later(
                    record.id, self.worker_id, at=now + retry_delay(record.attempts)
                )
