"""Fixtures: an emulator on a real local port, an aiogram Bot and a client aimed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp.test_utils import TestServer

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient

TOKEN = "123456:TEST-token_abcdefghij"
BOT_ID = 123456
ALICE = 100001
CAMILLE = 100002


class QuickCloseSession(AiohttpSession):
    """aiogram waits 250 ms on close for TLS shutdown; plain local HTTP needs none."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(base_url: str, token: str = TOKEN) -> Bot:
    """A real aiogram Bot whose API server is the emulator."""
    return Bot(token, session=QuickCloseSession(api=TelegramAPIServer.from_base(base_url)))


async def eventually(condition: Callable[[], bool], *, within: float = 2.0) -> None:
    """Wait for an in-process condition with a deadline.

    Only for emulator state that has no event to wait on from outside (is a long
    poll pending yet?); the short checks end at the deadline.
    """
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - no event exists for this state
            await asyncio.sleep(0.005)


@pytest.fixture
def emulator() -> Emulator:
    """An emulator with quick webhook retries."""
    return Emulator(webhook_retry_delays=(0.01, 0.02, 0.05))


@pytest.fixture
async def base_url(emulator: Emulator) -> AsyncIterator[str]:
    """The emulator served on 127.0.0.1 with a free port."""
    server = TestServer(emulator.create_app(), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture(scope="session")
def aiogram_session() -> QuickCloseSession:
    """One aiogram session for the whole run: building one loads the CA bundle (~50 ms).

    It holds no connection between tests: each test's `bot` fixture closes its
    aiohttp session, and the next test's first request opens one in its own loop.
    """
    return QuickCloseSession()


@pytest.fixture
async def bot(base_url: str, aiogram_session: QuickCloseSession) -> AsyncIterator[Bot]:
    """An aiogram Bot talking to the emulator."""
    aiogram_session.api = TelegramAPIServer.from_base(base_url)
    try:
        yield Bot(TOKEN, session=aiogram_session)
    finally:
        await aiogram_session.close()


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[EmulatorClient]:
    """The user-side client."""
    async with EmulatorClient(base_url) as client:
        yield client


@pytest.fixture
async def alice_chat(bot: Bot, client: EmulatorClient) -> int:
    """Alice has started the bot (so the bot may write to her); returns her chat id."""
    await bot.get_me()
    await client.send_text(ALICE, "/start")
    return ALICE
