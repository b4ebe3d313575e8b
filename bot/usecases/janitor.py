"""Idle conversations: one reminder, then the end.

Each session is claimed by a conditional update, so with several instances on one
database a citizen gets one reminder and one goodbye, never two; both messages go
through the outbox, written in the same transaction as the claim.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram.methods import SendMessage, TelegramMethod

from bot.conversation.render import render
from bot.outbox import enqueue
from bot.periodic import sweep_every
from bot.runtime.context import Services

log = logging.getLogger(__name__)


class SessionJanitor:
    """Reminds citizens of a conversation left open, and closes it when it expires."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def run(self, stopping: asyncio.Event, *, interval: float = 60.0) -> None:
        """Look for due sessions every ``interval`` seconds until ``stopping``."""
        await sweep_every(interval, stopping, self.sweep, log=log, failure="session sweep failed")

    async def sweep(self) -> int:
        """Nudge or expire every due session; returns how many were handled."""
        services = self._services
        async with services.database.uow() as uow:
            due = await uow.repos.sessions.due(services.clock.now())
        for citizen_id, expired in due:
            async with services.database.uow() as uow:
                methods = await self._attend(uow, citizen_id, expired=expired)
                citizen = await uow.repos.citizens.by_id(citizen_id)
                if methods and citizen is not None and citizen.telegram_id is not None:
                    await enqueue(
                        uow,
                        methods,
                        chat_id=citizen.telegram_id,
                        citizen_id=citizen_id,
                        kind="session_expired" if expired else "session_nudge",
                        now=services.clock.now(),
                    )
        if due:
            services.signals.outbox_pending.set()
        return len(due)

    async def _attend(
        self, uow: Any, citizen_id: int, *, expired: bool
    ) -> list[TelegramMethod[Any]]:
        services = self._services
        now = services.clock.now()
        citizen = await uow.repos.citizens.by_id(citizen_id)
        if citizen is None or citizen.telegram_id is None:
            return []
        quiet = citizen.stopped_at is not None or citizen.unreachable_at is not None
        conversations = services.conversations
        if expired:
            flow_id = await uow.repos.sessions.expire(citizen_id, now)
            if flow_id is None or quiet:
                return []
            published = (await conversations.published(uow)).get(flow_id)
            title = published.flow.title(citizen.language) if published else flow_id
            text = services.translator.text(citizen.language, "session.expired", flow=title)
            menu = await services.main_menu(uow, citizen.language)
            return [SendMessage(chat_id=citizen.telegram_id, text=text, reply_markup=menu)]
        if quiet or not await uow.repos.sessions.claim_nudge(citizen_id, now):
            return []
        turn = await conversations.reprompt(uow, citizen, nudge=True)
        if turn is None:
            return []
        return render(turn.messages, chat_id=citizen.telegram_id)
