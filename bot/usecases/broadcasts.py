"""Broadcasts: an administrator's message to a segment of citizens, through the outbox.

Composing (segment, then text or photo with caption, then a preview with the
count) is stored as a draft row. Confirming queues one outbox row per recipient in
the same transaction, paced at the configured rate, each with an idempotency key:
everyone eligible gets it once. /stop and erasure are respected twice: the
segment excludes such citizens when queued, and the sender drops rows of citizens
who /stop or block the bot later.

The :class:`BroadcastMonitor` posts a progress message in the administrator's
chat, edits it as the counts change (best effort, direct edits: a lost edit is
harmless), and when nothing is left to send, marks the broadcast done and queues
the final count through the outbox (that one must arrive).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import SendMessage, SendPhoto, TelegramMethod
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from bot.digests.compute import ServiceDigest, build_digest
from bot.i18n import Translator
from bot.outbox import enqueue, method_payload
from bot.periodic import sweep_every
from bot.runtime.context import Services
from bot.usecases.staff import actor_of
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.broadcasts import (
    BROADCAST_PRIORITY,
    BroadcastRecord,
    Progress,
    Segment,
)

log = logging.getLogger(__name__)

# Broadcasts take this share of the overall rate; the rest keeps room for replies,
# reminders and digests decided while a broadcast is going out.
RATE_SHARE = 0.9
MONITOR_INTERVAL = 3.0


@dataclass(frozen=True, slots=True)
class Draft:
    """A broadcast being composed and how many it would reach now."""

    broadcast: BroadcastRecord
    audience: int


def message_of(broadcast: BroadcastRecord, chat_id: int) -> TelegramMethod[Any]:
    """The Bot API call that delivers the broadcast to one chat."""
    if broadcast.photo_file_id:
        return SendPhoto(chat_id=chat_id, photo=broadcast.photo_file_id, caption=broadcast.text)
    return SendMessage(chat_id=chat_id, text=broadcast.text or "")


def broadcast_rate(services: Services) -> float:
    """Messages per second a broadcast is paced at."""
    settings = services.settings
    overall = (
        settings.outbox_paid_rate_per_second
        if settings.outbox_paid_broadcast
        else settings.outbox_rate_per_second
    )
    return overall * RATE_SHARE


async def start_broadcast(
    uow: UnitOfWork, admin: CitizenRecord, *, chat_id: int, segment: Segment, now: datetime
) -> Draft:
    """A new draft for the segment (the administrator's earlier draft is dropped)."""
    broadcast_id = await uow.repos.broadcasts.start(
        author_id=admin.id, chat_id=chat_id, segment=segment, now=now
    )
    return await _draft(uow, broadcast_id)


async def _draft(uow: UnitOfWork, broadcast_id: int) -> Draft:
    broadcast = await uow.repos.broadcasts.get(broadcast_id)
    assert broadcast is not None
    audience = len(await uow.repos.broadcasts.recipients(broadcast.segment))
    return Draft(broadcast, audience)


async def set_broadcast_content(
    uow: UnitOfWork, admin: CitizenRecord, *, text: str | None, photo_file_id: str | None
) -> Draft | None:
    """The administrator's draft with its content; None without a draft awaiting it."""
    draft = await uow.repos.broadcasts.composing(admin.id)
    if draft is None or draft.text is not None or draft.photo_file_id is not None:
        return None
    if not await uow.repos.broadcasts.set_content(draft.id, text=text, photo_file_id=photo_file_id):
        return None
    return await _draft(uow, draft.id)


async def confirm_broadcast(
    uow: UnitOfWork, services: Services, admin: CitizenRecord, broadcast_id: int
) -> int | None:
    """Queue the broadcast for everyone the segment reaches now; None if not a draft."""
    repos = uow.repos
    now = services.clock.now()
    if not await repos.broadcasts.confirm(broadcast_id, admin.id, now):
        return None
    broadcast = await repos.broadcasts.get(broadcast_id)
    assert broadcast is not None
    recipients = await repos.broadcasts.recipients(broadcast.segment)
    method, payload = method_payload(message_of(broadcast, chat_id=0))
    total = await repos.outbox.enqueue_paced(
        recipients,
        kind="broadcast",
        method=method,
        payload=payload,
        key_prefix=f"broadcast:{broadcast_id}",
        now=now,
        interval=timedelta(seconds=1 / broadcast_rate(services)),
        priority=BROADCAST_PRIORITY,
        broadcast_id=broadcast_id,
    )
    await repos.broadcasts.set_total(broadcast_id, total)
    await repos.staff.audit(
        actor=actor_of(admin),
        action="broadcast.send",
        subject=f"broadcast:{broadcast_id}",
        details={**broadcast.segment.as_json(), "recipients": total},
        now=now,
    )
    services.signals.outbox_pending.set()
    return total


def last_month(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The last whole calendar month before ``now`` in ``zone``, as UTC bounds."""
    this_month = now.astimezone(zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (this_month - timedelta(days=1)).replace(day=1)
    return previous.astimezone(UTC), this_month.astimezone(UTC)


def you_said_text(
    translator: Translator, lang: str, *, service: str, month: str, section: ServiceDigest
) -> str | None:
    """ "You said, we did" from a service's figures of a closed period; None if it was quiet."""
    reports, satisfaction = section.reports, section.satisfaction
    if reports.new == 0 and reports.fixed == 0 and satisfaction.ratings == 0:
        return None
    lines = [translator.text(lang, "yousaid.header", service=service, month=month)]
    if reports.new:
        lines.append(translator.text(lang, "yousaid.reports", count=reports.new))
    if reports.fixed:
        median = reports.median_days_to_fix
        lines.append(
            translator.text(lang, "yousaid.fixed", count=reports.fixed)
            if median is None
            else translator.text(
                lang,
                "yousaid.fixed_in",
                count=reports.fixed,
                days=format_decimal(median, format="#,##0.#", locale=lang),
            )
        )
    if satisfaction.ratings and satisfaction.csat is not None:
        lines.append(
            translator.text(
                lang,
                "yousaid.satisfaction",
                count=satisfaction.ratings,
                csat=format_percent(satisfaction.csat, locale=lang),
            )
        )
    lines.append(translator.text(lang, "yousaid.closing"))
    return "\n".join(lines)


async def draft_you_said(
    uow: UnitOfWork,
    services: Services,
    admin: CitizenRecord,
    *,
    chat_id: int,
    service_code: str,
    lang: str,
) -> Draft | None:
    """A draft to a service's participants with last month's figures; None if quiet."""
    service = await uow.repos.catalog.service_by_code(service_code)
    if service is None:
        return None
    now = services.clock.now()
    zone = ZoneInfo(services.settings.timezone)
    start, end = last_month(now, zone)
    digest = await build_digest(uow, service_ids=[service.id], start=start, end=end)
    section = next((s for s in digest.services if s.service is not None), digest.total)
    text = you_said_text(
        services.translator,
        lang,
        service=service.names.get(lang) or service.code,
        month=format_date(start.astimezone(zone), "MMMM y", locale=lang),
        section=section,
    )
    if text is None:
        return None
    broadcast_id = await uow.repos.broadcasts.start(
        author_id=admin.id, chat_id=chat_id, segment=Segment("service", service.code), now=now
    )
    await uow.repos.broadcasts.set_content(broadcast_id, text=text, photo_file_id=None)
    return await _draft(uow, broadcast_id)


async def cancel_broadcast(
    uow: UnitOfWork, admin: CitizenRecord, broadcast_id: int, now: datetime
) -> bool:
    return await uow.repos.broadcasts.cancel(broadcast_id, admin.id, now)


class BroadcastMonitor:
    """Shows each sending broadcast's progress to its author and closes it when done."""

    def __init__(self, services: Services, bot: Bot) -> None:
        self._services = services
        self._bot = bot

    async def run(self, stopping: asyncio.Event, *, interval: float = MONITOR_INTERVAL) -> None:
        await sweep_every(
            interval, stopping, self.sweep, log=log, failure="broadcast progress sweep failed"
        )

    async def sweep(self) -> int:
        """Look at every sending broadcast once; returns how many finished."""
        database = self._services.database
        async with database.uow() as uow:
            sending = await uow.repos.broadcasts.sending()
        finished = 0
        for broadcast in sending:
            finished += await self._look(broadcast)
        return finished

    def _text(
        self, broadcast: BroadcastRecord, progress: Progress, lang: str, *, done: bool
    ) -> str:
        t = self._services.translator
        key = "broadcast.done" if done else "broadcast.progress"
        return t.text(
            lang,
            key,
            id=broadcast.id,
            total=broadcast.total,
            delivered=progress.delivered,
            blocked=progress.blocked,
            skipped=progress.skipped,
            failed=progress.failed,
            waiting=progress.waiting,
        )

    async def _look(self, broadcast: BroadcastRecord) -> int:
        services = self._services
        async with services.database.uow() as uow:
            progress = await uow.repos.broadcasts.progress(broadcast.id)
            author = (
                None
                if broadcast.author_id is None
                else await uow.repos.citizens.by_id(broadcast.author_id)
            )
            claimed = broadcast.progress_message_id is None and (
                await uow.repos.broadcasts.claim_progress_message(broadcast.id)
            )
        lang = author.language if author else services.settings.default_language
        message_id = broadcast.progress_message_id
        if claimed:
            message_id = await self._post(broadcast, progress, lang)
        if progress.finished:
            now = services.clock.now()
            async with services.database.uow() as uow:
                if not await uow.repos.broadcasts.finish(broadcast.id, progress, now):
                    return 0
                text = self._text(broadcast, progress, lang, done=True)
                await enqueue(
                    uow,
                    [SendMessage(chat_id=broadcast.chat_id, text=text)],
                    chat_id=broadcast.chat_id,
                    citizen_id=broadcast.author_id,
                    kind="broadcast_report",
                    now=now,
                    idempotency_key=f"broadcast-done:{broadcast.id}",
                )
            services.signals.outbox_pending.set()
            await self._edit(broadcast, message_id, text)
            log.info("broadcast %s finished: %s", broadcast.id, progress.as_json())
            return 1
        if progress.as_json() != broadcast.progress:
            async with services.database.uow() as uow:
                await uow.repos.broadcasts.record_progress(broadcast.id, progress)
            await self._edit(
                broadcast, message_id, self._text(broadcast, progress, lang, done=False)
            )
        return 0

    async def _post(self, broadcast: BroadcastRecord, progress: Progress, lang: str) -> int | None:
        try:
            sent = await self._bot.send_message(
                broadcast.chat_id, self._text(broadcast, progress, lang, done=False)
            )
        except TelegramAPIError as error:
            log.warning("broadcast %s: progress message not posted: %s", broadcast.id, error)
            return None
        async with self._services.database.uow() as uow:
            await uow.repos.broadcasts.set_progress_message(broadcast.id, sent.message_id)
        return sent.message_id

    async def _edit(self, broadcast: BroadcastRecord, message_id: int | None, text: str) -> None:
        if not message_id:
            return
        try:
            await self._bot.edit_message_text(
                text=text, chat_id=broadcast.chat_id, message_id=message_id
            )
        except TelegramAPIError as error:  # "not modified", the chat was cleared…
            log.debug("broadcast %s: progress not edited: %s", broadcast.id, error)
