"""Reliability fixtures: the real bot as processes that tests kill and restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.botprocess import TEST_TOKEN, BotProcess, free_port
from tests.support.emulator import EmulatorServer

BotFactory = Callable[..., Awaitable[BotProcess]]


@pytest.fixture
async def bot_processes(
    emulator_server: EmulatorServer, database_url: str, tmp_path: Path
) -> AsyncIterator[BotFactory]:
    """Start bot processes against the emulator on the test's database (each on its own
    web port, so a killed one never holds the next one's port); stopped at the end."""
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
