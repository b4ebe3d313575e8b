"""After a restart, a chat's stored, unfinished updates are handled before its new ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import build_runtime
from bot.clock import ManualClock
from bot.config import Settings
from storage.migrate import upgrade
from storage.records import IncomingUpdate
from tests.support.botprocess import TEST_TOKEN

CHAT = 4242


def update(update_id: int) -> IncomingUpdate:
    return IncomingUpdate(
        update_id=update_id,
        chat_id=CHAT,
        user_id=CHAT,
        payload={"update_id": update_id, "message": {"text": f"m{update_id}"}},
    )


async def test_new_updates_wait_for_the_stored_ones(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"
    await upgrade(url)
    clock = ManualClock()
    runtime = build_runtime(
        Settings(database_url=url), api_base="http://127.0.0.1:9", token=TEST_TOKEN, clock=clock
    )
    handled: list[int] = []
    finished = asyncio.Event()

    async def record(item: IncomingUpdate, **_delivery: object) -> None:
        handled.append(item.update_id)
        if len(handled) == 2:
            finished.set()

    # What ran, in order, whichever way it ran (queued, or at once).
    runtime.inbox.processor._handle = record
    runtime.inbox.handle = record  # type: ignore[method-assign]
    try:
        async with runtime.services.database.uow() as uow:  # left by the previous run
            await uow.repos.inbox.store([update(1)], clock.now())
        runtime.inbox.hold()
        arriving = asyncio.create_task(runtime.inbox.receive([update(2)]))
        for _ in range(20):
            await asyncio.sleep(0)  # give it every chance to run early
        assert not arriving.done() and handled == []
        assert await runtime.inbox.recover() == 1
        await asyncio.wait_for(arriving, 10)
        await asyncio.wait_for(finished.wait(), 10)
        assert handled == [1, 2]
    finally:
        await runtime.bot.session.close()
        await runtime.services.database.dispose()
