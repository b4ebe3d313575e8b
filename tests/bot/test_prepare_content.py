"""Instances starting together on a new database both start (content stored once)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.app import build_runtime, prepare_content
from bot.clock import ManualClock
from bot.config import Settings
from storage.models import Category, FlowRevision
from tests.support.botprocess import TEST_TOKEN


async def test_two_instances_prepare_the_content_at_once(database_url: str) -> None:
    runtimes = [
        build_runtime(
            Settings(database_url=database_url),
            api_base="http://127.0.0.1:9",  # never called here
            token=TEST_TOKEN,
            clock=ManualClock(),
        )
        for _ in range(2)
    ]
    try:
        await asyncio.gather(*(prepare_content(runtime) for runtime in runtimes))
        async with runtimes[0].services.database.uow() as uow:
            revisions = await uow.session.scalar(select(func.count()).select_from(FlowRevision))
            categories = await uow.session.scalar(select(func.count()).select_from(Category))
        fresh = build_runtime(
            Settings(database_url=database_url),
            api_base="http://127.0.0.1:9",
            token=TEST_TOKEN,
            clock=ManualClock(),
        )
        runtimes.append(fresh)
        assert revisions == len(fresh.services.conversations.catalog.builtin_sources())
        assert categories and categories > 0
    finally:
        for runtime in runtimes:
            await runtime.bot.session.close()
            await runtime.services.database.dispose()
