"""Receiving updates: store them first, then hand them to the processor."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.methods import SendMessage
from aiogram.types import Update
from pydantic import ValidationError

from bot import failpoints
from bot.runtime.context import Services
from bot.runtime.groupcommit import GroupCommit
from bot.runtime.middlewares import Delivery
from bot.runtime.processor import UpdateProcessor
from bot.runtime.throttle import FloodGuard
from bot.runtime.tuning import keep_response_models, run_magic_filters_inline
from storage.db import UnitOfWork
from storage.records import IncomingUpdate

log = logging.getLogger(__name__)

# Queued updates keep their parsed form (about 10 KB each, five times their JSON) only
# while the backlog is short: a long one is parsed again when its turn comes.
KEEP_PARSED_BACKLOG = 256
# SQLite: the rows SQLAlchemy sends in one INSERT (its insertmanyvalues page); a store
# of more is several statements, so it takes a transaction to stay all-or-nothing.
# (PostgreSQL stores any number in one statement, but the limit does no harm there.)
ONE_INSERT = 1000


def update_payload(update: Update) -> dict[str, Any]:
    """The JSON document of a parsed update, as the Bot API sent it."""
    return update.model_dump(mode="json", by_alias=True, exclude_none=True)


def to_incoming(update: Update, payload: dict[str, Any] | None = None) -> IncomingUpdate:
    """Describe an update for the inbox: its id, chat and user, and its JSON.

    ``update`` is kept, to be handled as it is, when it is bound to the bot (parsed
    by :meth:`Inbox.parse`, or returned by a Bot API call).
    """
    context = UserContextMiddleware.resolve_event_context(update)
    return IncomingUpdate(
        update_id=update.update_id,
        chat_id=context.chat_id,
        user_id=context.user_id,
        payload=payload if payload is not None else update_payload(update),
        parsed=update if update.bot is not None else None,
    )


def sender_of(document: object) -> tuple[int | None, int | None]:
    """The sender's user id and the chat of a raw update, where plainly there.

    Read from the JSON as Telegram posts it (the event's ``from`` and ``chat``,
    a button's message's chat); anything unexpected gives None, and the update then
    goes through the parsed route, which works the sender out itself.
    """
    if not isinstance(document, dict):
        return None, None
    event = next(
        (
            value
            for key, value in document.items()
            if key != "update_id" and isinstance(value, dict)
        ),
        None,
    )
    if event is None:
        return None, None
    sender = event.get("from")
    user_id = sender.get("id") if isinstance(sender, dict) else None
    chat = event.get("chat")
    if not isinstance(chat, dict) and isinstance(event.get("message"), dict):
        chat = event["message"].get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if type(user_id) is not int:
        return None, None
    return user_id, chat_id if type(chat_id) is int else None


def _settled(committed: asyncio.Future[None], running: asyncio.Task[None]) -> None:
    """When an update run at once ends: its caller learns how, unless the commit
    already answered it (then a failure after the commit is only logged)."""
    failure = None if running.cancelled() else running.exception()
    if not committed.done():
        if running.cancelled():
            committed.cancel()
        elif failure is not None:
            committed.set_exception(failure)
        else:
            committed.set_result(None)
    elif failure is not None:
        log.error("update handling failed after its commit: %s", type(failure).__name__)


class Inbox:
    """The durable front door: stored updates are never lost, repeated ones never rerun."""

    def __init__(self, services: Services, bot: Bot, dispatcher: Dispatcher) -> None:
        self._services = services
        self._bot = bot
        self._dispatcher = dispatcher
        run_magic_filters_inline(dispatcher)
        keep_response_models(bot)
        # Build the update model now (deferred by bot.runtime.lean_aiogram), not on the
        # first citizen's message.
        Update.model_validate({"update_id": 0})
        self.processor = UpdateProcessor(
            self.handle, max_concurrency=services.settings.max_concurrent_updates
        )
        settings = services.settings
        self.flood = FloodGuard(rate=settings.flood_rate_per_second, burst=settings.flood_burst)
        self._notices: set[asyncio.Task[None]] = set()
        # Set until hold(); then new updates wait for recover() to queue the stored
        # ones first, so a chat's updates left from a previous run come first.
        self._recovered = asyncio.Event()
        self._recovered.set()
        self._stores: GroupCommit[Sequence[IncomingUpdate], list[IncomingUpdate]] = GroupCommit(
            self._store_batch,
            open=self._open_store,
            name="inbox-store",
            limit=ONE_INSERT,
            size=len,
        )
        # The reliability tests' crash point between storing and handling exists only
        # on the store-then-queue route: with it switched on, every update takes it.
        switched_on = os.environ.get(failpoints.ENVIRONMENT_VARIABLE, "").split(",")
        self._always_store_first = "after_store" in switched_on

    def parse(self, document: dict[str, Any]) -> Update:
        """An update from its JSON document, bound to the bot (raises ``ValidationError``)."""
        return Update.model_validate(document, context={"bot": self._bot})

    async def receive(
        self, updates: Sequence[IncomingUpdate], *, admitted: bool = False
    ) -> list[int]:
        """Make updates durable, then have them handled; return the ids not seen before.

        An update alone whose chat is idle, with a slot free, is handled at once and
        stored as handled in the handler's transaction: one transaction, and this
        returns once it committed. Otherwise the updates are stored (one transaction
        shared with concurrent callers) and queued. Raises if the database refuses,
        so the caller does not confirm the updates to Telegram. ``admitted``: the
        caller already passed them through :meth:`admit` (the webhook does, before
        parsing, so a flood costs as little as possible).
        """
        if not admitted:
            updates = self._admit(updates)
        if not self._recovered.is_set():
            await self._recovered.wait()
        if not updates:
            return []
        if (
            len(updates) == 1
            and not self._always_store_first
            and self.processor.can_run_now(updates[0])
        ):
            # Answered once the update is durable (its transaction committed), not
            # once its replies are sent: those take a round trip to Telegram, and the
            # Bot API waits for this answer before it sends more updates.
            item = updates[0]
            committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def on_commit() -> None:
                # Sending replies holds no lock: the update no longer counts against
                # the updates run at once.
                self.processor.committed(item)
                if not committed.done():
                    committed.set_result(None)

            delivery = Delivery(item, on_commit=on_commit)
            running = self.processor.start_now(item, partial(self.handle, delivery=delivery))
            running.add_done_callback(partial(_settled, committed))
            await committed
            return [delivery.item.update_id] if delivery.new else []
        return await self._store(updates)

    async def _store(self, updates: Sequence[IncomingUpdate]) -> list[int]:
        """Store and queue updates; callers arriving meanwhile share the next statement."""
        fresh = await self._stores.submit(updates)
        failpoints.reach("after_store")
        for item in fresh:
            if item.parsed is not None and self.processor.backlog >= KEEP_PARSED_BACKLOG:
                item = replace(item, parsed=None)
            self.processor.submit(item)
        return [item.update_id for item in fresh]

    def _open_store(self, updates: Sequence[IncomingUpdate]) -> UnitOfWork:
        # One INSERT is durable on its own; more take a transaction to be all-or-nothing.
        database = self._services.database
        return (
            database.single_statement() if len(updates) <= ONE_INSERT else database.uow(urgent=True)
        )

    async def _store_batch(
        self, uow: UnitOfWork, batches: list[Sequence[IncomingUpdate]]
    ) -> list[list[IncomingUpdate]]:
        """Store the callers' updates in one statement; each caller's new ones (an id
        sent twice is new to the first caller only)."""
        items: dict[int, IncomingUpdate] = {}
        for updates in batches:
            for item in updates:
                items.setdefault(item.update_id, item)
        fresh = set(await uow.repos.inbox.store(list(items.values()), self._services.clock.now()))
        new: list[list[IncomingUpdate]] = []
        for updates in batches:
            new.append([])
            for item in updates:
                if item.update_id in fresh:
                    fresh.discard(item.update_id)
                    new[-1].append(item)
        return new

    async def record_unreadable(self, items: Sequence[IncomingUpdate]) -> None:
        """Keep updates that could not be parsed as failed, with what they said; nobody is
        answered (we cannot read them)."""
        if not items:
            return
        services = self._services
        async with services.database.uow() as uow:
            for item in items:
                await uow.repos.inbox.record_failed(
                    item, ValidationError.__name__, services.clock.now()
                )

    def _admit(self, updates: Sequence[IncomingUpdate]) -> list[IncomingUpdate]:
        """Drop what flooders send, before it costs any database work."""
        return [item for item in updates if self.admit(item.user_id, item.chat_id, item.payload)]

    def admit(self, user_id: int | None, chat_id: int | None, payload: dict[str, Any]) -> bool:
        """Spend one of the sender's tokens; False for a flooder (told once a window)."""
        if user_id is None:
            return True
        verdict = self.flood.check(user_id)
        if not verdict.allowed and verdict.notify and chat_id == user_id:
            task = asyncio.create_task(self._slow_down(user_id, payload))
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)
        return verdict.allowed

    async def _slow_down(self, chat_id: int, payload: dict[str, Any]) -> None:
        translator = self._services.translator
        sender = (payload.get("message") or payload.get("callback_query") or {}).get("from", {})
        language = translator.resolve_language(sender.get("language_code"))
        try:
            await self._bot(
                SendMessage(chat_id=chat_id, text=translator.text(language, "flood.slow_down"))
            )
        except Exception:
            log.debug("could not send a slow-down notice", exc_info=True)

    def hold(self) -> None:
        """Keep new updates waiting until :meth:`recover` (call before serving)."""
        self._recovered.clear()

    async def recover(self) -> int:
        """Queue the updates a previous run stored but did not finish, then let new
        ones in: per chat, the old ones are handled first."""
        async with self._services.database.uow() as uow:
            pending = await uow.repos.inbox.pending()
        for item in pending:
            self.processor.submit(item)
        self._recovered.set()
        if pending:
            log.info("resuming %d stored update(s) left unfinished", len(pending))
        return len(pending)

    async def handle(self, item: IncomingUpdate, *, delivery: Delivery | None = None) -> None:
        """Run one update through the dispatcher; record it if it fails.

        Without ``delivery`` the update is stored and pending; with one, it is not
        stored yet (see :class:`Delivery`). Raises only if the failure cannot be
        recorded either.
        """
        try:
            update = item.parsed if item.parsed is not None else self.parse(item.payload)
            if delivery is None:
                await self._dispatcher.feed_update(self._bot, update)
            else:
                await self._dispatcher.feed_update(self._bot, update, delivery=delivery)
        except Exception as error:
            # The message may quote what the citizen wrote: details only at debug level.
            log.error("update %s failed: %s", item.update_id, type(error).__name__)
            log.debug("update %s failure details", item.update_id, exc_info=True)
            if delivery is not None:
                delivery.new = True
            await self._record_failure(item, error, stored=delivery is None)

    async def _record_failure(
        self, item: IncomingUpdate, error: Exception, *, stored: bool
    ) -> None:
        services = self._services
        async with services.database.uow() as uow:
            if stored:
                await uow.repos.inbox.mark_failed(
                    item.update_id, type(error).__name__, services.clock.now()
                )
            else:
                await uow.repos.inbox.record_failed(
                    item, type(error).__name__, services.clock.now()
                )
            citizen = None
            if item.user_id is not None and item.chat_id == item.user_id:
                citizen = await uow.repos.citizens.by_telegram_id(item.user_id)
        if (
            item.chat_id is None
            or item.chat_id != item.user_id
            or isinstance(error, ValidationError)
        ):
            return
        language = citizen.language if citizen else services.translator.default_language
        try:
            await self._bot(
                SendMessage(
                    chat_id=item.chat_id, text=services.translator.text(language, "error.generic")
                )
            )
        except Exception:
            log.warning("could not apologise for update %s", item.update_id)
