"""Incoming updates that wait for the write lock are stored together, in one statement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import build_runtime
from bot.clock import ManualClock
from bot.config import Settings
from storage.migrate import upgrade
from storage.records import IncomingUpdate
from tests.support.botprocess import TEST_TOKEN
from tests.support.sql import statements

ARRIVING = 12


def update(update_id: int) -> IncomingUpdate:
    chat = 5000 + update_id
    return IncomingUpdate(
        update_id=update_id,
        chat_id=chat,
        user_id=chat,
        payload={"update_id": update_id, "message": {"text": f"m{update_id}"}},
    )


async def test_updates_arriving_while_the_lock_is_busy_share_one_insert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    await upgrade(url)
    clock = ManualClock()
    runtime = build_runtime(
        Settings(database_url=url), api_base="http://127.0.0.1:9", token=TEST_TOKEN, clock=clock
    )
    inbox, database = runtime.inbox, runtime.services.database
    queued: list[int] = []
    # Stored and queued, not handled: this test is about storing.
    monkeypatch.setattr(inbox.processor, "can_run_now", lambda _update: False)
    monkeypatch.setattr(inbox.processor, "submit", lambda item: queued.append(item.update_id))
    try:
        with statements(database) as seen:
            async with database.uow():  # a handler's transaction holds the write lock
                arriving = []
                for n in range(ARRIVING):  # one after the other, while the lock is busy
                    arriving.append(asyncio.create_task(inbox.receive([update(n)])))
                    for _ in range(5):
                        await asyncio.sleep(0)
                assert not any(task.done() for task in arriving)
            stored = await asyncio.wait_for(asyncio.gather(*arriving), 10)
        assert stored == [[n] for n in range(ARRIVING)]
        assert sorted(queued) == list(range(ARRIVING))
        inserts = [s for s in seen if s.startswith("INSERT INTO inbox_updates")]
        assert len(inserts) == 1, inserts
        async with database.uow() as uow:
            assert (await uow.repos.inbox.stats()).pending == ARRIVING
    finally:
        await runtime.bot.session.close()
        await database.dispose()
