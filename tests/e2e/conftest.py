"""End-to-end fixtures: the emulator on a local port, the real bot as a subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient
from tests.support.botprocess import TEST_TOKEN, BotProcess, free_port

pytestmark = pytest.mark.e2e


class EmulatorServer:
    """An emulator served on 127.0.0.1 and a client for its user API."""

    def __init__(self, emulator: Emulator, url: str, client: EmulatorClient) -> None:
        self.emulator = emulator
        self.url = url
        self.client = client


@pytest.fixture
async def emulator_server() -> AsyncIterator[EmulatorServer]:
    """A fresh emulator with quick webhook retries."""
    emulator = Emulator(webhook_retry_delays=(0.05, 0.1, 0.2))
    server = TestServer(emulator.create_app(), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    async with EmulatorClient(url) as client:
        yield EmulatorServer(emulator, url, client)
    await server.close()


BotFactory = Callable[..., Awaitable[BotProcess]]


@pytest.fixture
async def start_bot(
    emulator_server: EmulatorServer, database_url: str, tmp_path: Path
) -> AsyncIterator[BotFactory]:
    """Start the bot against the emulator on the test's database; stopped at the end."""
    processes: list[BotProcess] = []

    async def start(*, wait_ready: bool = True, **environment: str) -> BotProcess:
        env = {
            "BOT_TOKEN": TEST_TOKEN,
            "TELEGRAM_API_BASE": emulator_server.url,
            "DATABASE_URL": database_url,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(free_port()),
        }
        env.update(environment)
        process = BotProcess(env, tmp_path)
        processes.append(process)
        await process.start(wait_ready=wait_ready)
        return process

    yield start
    for process in processes:
        await process.stop()
