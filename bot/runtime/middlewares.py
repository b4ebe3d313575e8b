"""Outer middlewares: one unit of work per update, and the citizen behind it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Chat, TelegramObject, Update, User

from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UnitOfWorkMiddleware(BaseMiddleware):
    """Claims the stored update, runs the handlers in one transaction, marks it done.

    The inbox mark commits with the handler's effects, so a crash anywhere before
    the commit leaves the update pending and it is handled again, whole, at start-up;
    a duplicate finds it no longer pending and does nothing.
    """

    def __init__(self, services: Services) -> None:
        self._services = services

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        services = self._services
        out = Outgoing()
        async with services.database.uow() as uow:
            if not await uow.repos.inbox.claim(event.update_id):
                return UNHANDLED
            data["uow"] = uow
            data["out"] = out
            result = await handler(event, data)
            await uow.repos.inbox.mark_done(event.update_id, services.clock.now())
        bot: Bot = data["bot"]
        refused = await out.flush(bot)
        if refused:
            async with services.database.uow() as uow:
                for chat_id in refused:
                    await uow.repos.citizens.set_unreachable(chat_id, services.clock.now())
        return result


class CitizenMiddleware(BaseMiddleware):
    """Registers the private-chat user as a citizen and hands the record to handlers."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if user is not None and not user.is_bot and (chat is None or chat.type == "private"):
            services = self._services
            citizen, created = await data["uow"].repos.citizens.ensure(
                telegram_id=user.id,
                language=services.translator.resolve_language(user.language_code),
                first_name=user.first_name,
                username=user.username,
                now=services.clock.now(),
            )
            data["citizen"] = citizen
            data["citizen_created"] = created
            data["lang"] = citizen.language
        return await handler(event, data)
