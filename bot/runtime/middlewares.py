"""Outer middlewares: one unit of work per update, and the citizen behind it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.methods import SendMessage
from aiogram.types import Chat, TelegramObject, Update, User

from bot.runtime.context import Services
from bot.runtime.outgoing import Job, Outgoing, ReplyBook
from storage.records import IncomingUpdate

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


@dataclass(slots=True)
class Delivery:
    """An update handed to the dispatcher before it was stored (``feed_update(delivery=…)``).

    The middleware stores it as handled in the handler's transaction and says in
    ``new`` whether it had been seen before. ``on_commit``, when given, is called
    once that transaction has committed: the update is durable from then on, while
    its replies are still being sent.
    """

    item: IncomingUpdate
    new: bool = False
    on_commit: Callable[[], None] | None = None


class _HandledElsewhereError(Exception):
    """Another transaction marked the update while this one handled it."""


def citizen_of(data: dict[str, Any]) -> User | None:
    """The user an update makes a citizen of: a person, in a private chat (or none)."""
    user: User | None = data.get("event_from_user")
    chat: Chat | None = data.get("event_chat")
    if user is not None and not user.is_bot and (chat is None or chat.type == "private"):
        return user
    return None


class UnitOfWorkMiddleware(BaseMiddleware):
    """Runs the handlers in one transaction with the update's inbox mark.

    A stored update is claimed and marked done by one statement in that
    transaction; one not stored yet (a :class:`Delivery`) is stored as done there.
    On PostgreSQL a citizen's update is only checked first (with the citizen's
    lookup) and marked by the transaction's last statement, together with the save
    of their dialog session (``InboxRepository.open``, ``settle``): when that is all
    the update changes, the statement is atomic on its own and the transaction
    needs no BEGIN and no COMMIT; if another instance marked the update meanwhile,
    everything is rolled back and nothing is sent.
    Either way the mark commits with the handler's effects, so a crash anywhere
    before the commit leaves the update pending (or unstored and unconfirmed, so the
    Bot API sends it again) and it is handled again, whole; a duplicate finds it
    already there and does nothing. The replies that must arrive (added with
    ``keep=True``) commit with them too, in the outbox (see
    :mod:`bot.runtime.outgoing`): a crash after the commit delays them, never loses
    them. Work left for after the commit (``Outgoing.later``) runs in the background.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._lease = timedelta(seconds=services.settings.outbox_lease_seconds)
        self._book = ReplyBook(services)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        services = self._services
        delivery: Delivery | None = data.get("delivery")
        out = Outgoing()
        # The citizen CitizenMiddleware will look up, read with the inbox check where
        # the database can do both in one statement.
        sender = citizen_of(data)
        reading = sender.id if sender is not None else None
        try:
            async with services.database.uow() as uow:
                inbox = uow.repos.inbox
                fresh = await inbox.open(
                    event.update_id,
                    services.clock.now(),
                    new=delivery is not None,
                    reading=reading,
                )
                if delivery is not None:
                    delivery.new = fresh
                if not fresh:
                    return UNHANDLED
                data["uow"] = uow
                data["out"] = out
                result = await handler(event, data)
                await out.keep(
                    uow,
                    worker_id=services.worker_id,
                    citizen=data.get("citizen"),
                    now=services.clock.now(),
                    lease=self._lease,
                )
                if not await inbox.settle():
                    raise _HandledElsewhereError
        except _HandledElsewhereError:
            # Rolled back: nothing of this handling stays, and nothing is sent.
            if delivery is not None:
                delivery.new = False
            return UNHANDLED
        if delivery is not None and delivery.on_commit is not None:
            delivery.on_commit()  # durable now: the caller may answer
        bot: Bot = data["bot"]
        await self._book.settle(await out.flush(bot))
        jobs = out.take_jobs()
        if jobs:
            chat: Chat | None = data.get("event_chat")
            language = data.get("lang") or services.translator.default_language
            services.background.spawn(
                self._after_commit(jobs, bot, chat.id if chat else None, language),
                name="after-commit",
            )
        return result

    async def _after_commit(
        self, jobs: list[Job], bot: Bot, chat_id: int | None, language: str
    ) -> None:
        """Run an update's jobs (``Outgoing.later``) and make the calls they return; a
        job that fails answers the update's chat with the generic apology."""
        for job in jobs:
            out = Outgoing()
            try:
                methods = await job()
            except Exception as error:
                log.error("work after the commit failed: %s", type(error).__name__)
                log.debug("work after the commit failed", exc_info=True)
                if chat_id is None:
                    continue
                text = self._services.translator.text(language, "error.generic")
                methods = [SendMessage(chat_id=chat_id, text=text)]
            for method in methods:
                out.add(method)
            await self._book.settle(await out.flush(bot))


class CitizenMiddleware(BaseMiddleware):
    """Registers the private-chat user as a citizen and hands the record to handlers."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = citizen_of(data)
        if user is not None:
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
