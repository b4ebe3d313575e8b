"""The bot wired exactly as `run` wires it, inside the test's event loop.

Faster than a subprocess and driven by a ManualClock, for tests where time moves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.app import ALLOWED_UPDATES, Runtime, build_runtime, prepare_content
from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime.polling import poll_updates
from tests.support.botprocess import TEST_TOKEN

# A Bot API nobody listens on: a test that should not call it fails if it does.
UNREACHABLE_API = "http://127.0.0.1:9"


@asynccontextmanager
async def offline_runtime(database_url: str, **build: Any) -> AsyncIterator[Runtime]:
    """The bot's runtime on a migrated database, its Bot API unreachable, closed on exit;
    ``build`` goes to ``build_runtime`` (a clock, say)."""
    runtime = build_runtime(
        Settings(database_url=database_url), api_base=UNREACHABLE_API, token=TEST_TOKEN, **build
    )
    try:
        yield runtime
    finally:
        await runtime.bot.session.close()
        await runtime.services.database.dispose()


@asynccontextmanager
async def running_bot(
    database_url: str, api_base: str, clock: ManualClock, **settings: object
) -> AsyncIterator[Runtime]:
    """A polling bot on the given database and Bot API, stopped on exit."""
    settings.setdefault("flood_burst", 1000)  # test users type far faster than people
    config = Settings(database_url=database_url, polling_timeout=1, **settings)  # type: ignore[arg-type]
    runtime = build_runtime(config, api_base=api_base, token=TEST_TOKEN, clock=clock)
    await prepare_content(runtime)
    stopping = asyncio.Event()
    polling = asyncio.create_task(
        poll_updates(
            runtime.bot,
            runtime.inbox,
            poll_timeout=1,
            allowed_updates=ALLOWED_UPDATES,
            stopping=stopping,
        )
    )
    try:
        yield runtime
    finally:
        stopping.set()
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await runtime.inbox.processor.close(grace=5)
        await runtime.services.background.join(grace=5)
        await runtime.bot.session.close()
        await runtime.services.database.dispose()


@asynccontextmanager
async def webhook_bot(
    database_url: str, api_base: str, clock: ManualClock, secret: str, **settings: object
) -> AsyncIterator[tuple[Runtime, str]]:
    """The bot's web app (webhook route and health) on a local port; yields (runtime, url)."""
    from aiohttp.test_utils import TestServer

    from bot.runtime.web import build_web_app

    config = Settings(
        database_url=database_url,
        webhook_url="http://127.0.0.1/hook",
        webhook_secret=secret,
        **settings,  # type: ignore[arg-type]
    )
    runtime = build_runtime(config, api_base=api_base, token=TEST_TOKEN, clock=clock)
    await prepare_content(runtime)
    server = TestServer(build_web_app(runtime.services, runtime.inbox, webhook_secret=secret))
    await server.start_server()
    try:
        yield runtime, str(server.make_url("/hook"))
    finally:
        await server.close()
        await runtime.inbox.processor.close(grace=10)
        await runtime.services.background.join(grace=10)
        await runtime.bot.session.close()
        await runtime.services.database.dispose()
