"""End-to-end fixtures: the emulator on a local port, the real bot as a subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.botprocess import TEST_TOKEN, BotProcess, free_port
from tests.support.emulator import EmulatorServer

pytestmark = pytest.mark.e2e


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
