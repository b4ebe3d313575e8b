"""The outbox against the emulator: a runtime per test, citizens who wrote first, helpers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from aiogram.methods import SendMessage

from bot.app import Runtime, build_runtime
from bot.clock import ManualClock
from bot.config import Settings
from bot.emulator.client import CallLogEntry, EmulatorClient
from bot.outbox import enqueue
from bot.outbox.sender import OutboxSender
from storage.db import Database
from storage.repositories.outbox import OutboxRecord
from tests.support.botprocess import TEST_TOKEN
from tests.support.emulator import EmulatorServer

FIRST_USER = 710_000


class OutboxWorld:
    """One database, the emulator, and as many bot runtimes ("instances") as a test needs."""

    def __init__(self, database_url: str, emulator: EmulatorServer) -> None:
        self.database_url = database_url
        self.emulator = emulator
        self.client: EmulatorClient = emulator.client
        self.clock = ManualClock()
        self.runtimes: list[Runtime] = []
        self._next_user = FIRST_USER

    async def runtime(self, **settings: Any) -> Runtime:
        """A bot instance (its own engine and Bot session) on the shared database."""
        config = Settings(database_url=self.database_url, **settings)
        runtime = build_runtime(
            config, api_base=self.emulator.url, token=TEST_TOKEN, clock=self.clock
        )
        self.runtimes.append(runtime)
        await runtime.bot.get_me()  # the emulator learns the bot before users write to it
        return runtime

    async def sender(self, worker_id: str = "w1", **options: Any) -> OutboxSender:
        """A sender on a new runtime; ``settings`` (a dict) go to that runtime."""
        settings = options.pop("settings", {})
        runtime = await self.runtime(**settings)
        return OutboxSender(runtime.services, runtime.bot, worker_id=worker_id, **options)

    @property
    def database(self) -> Database:
        """The first runtime's database."""
        return self.runtimes[0].services.database

    async def citizens(self, count: int) -> list[tuple[int, int]]:
        """``count`` citizens who said hi to the bot: (telegram id, citizen id) pairs."""
        users = list(range(self._next_user, self._next_user + count))
        self._next_user += count
        gate = asyncio.Semaphore(16)

        async def say_hi(user_id: int) -> None:
            async with gate:
                await self.client.send_text(
                    user_id, "hi", user={"id": user_id, "first_name": f"U{user_id}"}
                )

        await asyncio.gather(*(say_hi(user_id) for user_id in users))
        pairs = []
        async with self.database.uow() as uow:
            for user_id in users:
                citizen, _ = await uow.repos.citizens.ensure(
                    telegram_id=user_id,
                    language="en",
                    first_name=f"U{user_id}",
                    username=None,
                    now=self.clock.now(),
                )
                pairs.append((user_id, citizen.id))
        return pairs

    async def enqueue(
        self,
        messages: Iterable[tuple[int, int | None, Sequence[str]]],
        *,
        kind: str = "notification",
    ) -> list[int]:
        """Queue texts per (chat, citizen) in one transaction; returns the outbox ids."""
        ids: list[int] = []
        async with self.database.uow() as uow:
            for chat_id, citizen_id, texts in messages:
                ids += await enqueue(
                    uow,
                    [SendMessage(chat_id=chat_id, text=text) for text in texts],
                    chat_id=chat_id,
                    citizen_id=citizen_id,
                    kind=kind,
                    now=self.clock.now(),
                )
        return ids

    async def rows(self, ids: Iterable[int]) -> list[OutboxRecord]:
        """The outbox rows, by id."""
        async with self.database.uow() as uow:
            return await uow.repos.outbox.messages(ids)

    async def statuses(self, ids: Iterable[int]) -> dict[str, int]:
        """How many of these rows are in each status."""
        counts: dict[str, int] = defaultdict(int)
        for row in await self.rows(ids):
            counts[row.status] += 1
        return dict(counts)

    async def sends(self, *, since: int = 0) -> list[CallLogEntry]:
        """sendMessage calls the emulator received, in the order it finished them."""
        return await self.client.calls(method="sendMessage", since=since)

    async def delivered(self, *, since: int = 0) -> dict[int, list[str]]:
        """The texts each chat received (successful sendMessage calls), in order."""
        texts: dict[int, list[str]] = defaultdict(list)
        for call in sorted(await self.sends(since=since), key=lambda c: c.seq):
            if call.ok and call.chat_id is not None:
                texts[call.chat_id].append(str(call.params["text"]))
        return dict(texts)

    async def received(self, chat_id: int) -> list[str]:
        """The bot's messages as the chat shows them (counting calls that failed after effect)."""
        history = await self.client.history(chat_id)
        return [message.content for message in history.bot_messages]

    def advance(self, seconds: float) -> None:
        """Move the injected clock (due times, leases, backoffs)."""
        self.clock.advance(timedelta(seconds=seconds))

    async def close(self) -> None:
        """Close every runtime's Bot session and engine."""
        for runtime in self.runtimes:
            await runtime.bot.session.close()
            await runtime.services.database.dispose()


@pytest.fixture
async def world(database_url: str, emulator_server: EmulatorServer) -> AsyncIterator[OutboxWorld]:
    """The outbox world of one test, on each database backend."""
    outbox_world = OutboxWorld(database_url, emulator_server)
    await outbox_world.runtime()
    try:
        yield outbox_world
    finally:
        await outbox_world.close()
