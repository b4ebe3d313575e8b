"""Receiving updates: stored together while the write lock is busy, parsed once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import build_runtime
from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import inbox as inbox_module
from bot.runtime.inbox import to_incoming
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


async def test_an_update_parsed_on_receipt_is_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'parse.db'}"
    await upgrade(url)
    runtime = build_runtime(
        Settings(database_url=url), api_base="http://127.0.0.1:9", token=TEST_TOKEN
    )
    inbox, database = runtime.inbox, runtime.services.database
    document = {
        "update_id": 7,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": 77, "type": "private"},
            "from": {"id": 77, "is_bot": False, "first_name": "Ada"},
            "text": "/help",
        },
    }
    received = to_incoming(inbox.parse(document), document)
    parsed_again: list[object] = []
    monkeypatch.setattr(inbox, "parse", parsed_again.append)
    try:
        assert await inbox.receive([received]) == [7]
        assert parsed_again == []
        async with database.uow() as uow:
            assert (await uow.repos.inbox.stats()).done == 1
            assert await uow.repos.citizens.by_telegram_id(77) is not None
    finally:
        await runtime.bot.session.close()
        await database.dispose()


async def test_queued_updates_keep_their_parsed_form_only_while_the_backlog_is_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'backlog.db'}"
    await upgrade(url)
    runtime = build_runtime(
        Settings(database_url=url), api_base="http://127.0.0.1:9", token=TEST_TOKEN
    )
    inbox, database = runtime.inbox, runtime.services.database
    queued: list[IncomingUpdate] = []
    monkeypatch.setattr(inbox.processor, "can_run_now", lambda _update: False)
    monkeypatch.setattr(inbox.processor, "submit", queued.append)

    def received(update_id: int) -> IncomingUpdate:
        document = {
            "update_id": update_id,
            "message": {
                "message_id": 1,
                "date": 1_700_000_000,
                "chat": {"id": update_id, "type": "private"},
                "from": {"id": update_id, "is_bot": False, "first_name": "Ada"},
                "text": "hello",
            },
        }
        return to_incoming(inbox.parse(document), document)

    try:
        assert await inbox.receive([received(1)]) == [1]
        monkeypatch.setattr(inbox_module, "KEEP_PARSED_BACKLOG", 0)
        assert await inbox.receive([received(2)]) == [2]
        assert [item.update_id for item in queued] == [1, 2]
        assert queued[0].parsed is not None and queued[0].parsed.update_id == 1
        assert queued[1].parsed is None and queued[1].payload["update_id"] == 2
    finally:
        await runtime.bot.session.close()
        await database.dispose()
