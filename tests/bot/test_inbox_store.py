"""Receiving updates: stored together while the write lock is busy, parsed once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime
from bot.runtime import inbox as inbox_module
from bot.runtime.inbox import to_incoming
from storage.migrate import upgrade
from storage.records import IncomingUpdate
from tests.support.inprocess import offline_runtime
from tests.support.sql import statements

ARRIVING = 12


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """The bot's runtime on a fresh SQLite file; its Bot API is unreachable."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'inbox.db'}"
    await upgrade(url)
    async with offline_runtime(url) as built:
        yield built


def text_update(update_id: int, text: str = "hello") -> dict[str, Any]:
    """A citizen's text message as the Bot API sends it (chat = 5000 + update_id)."""
    chat = 5000 + update_id
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "Ada"},
            "text": text,
        },
    }


def received(runtime: Runtime, update_id: int, text: str = "hello") -> IncomingUpdate:
    """What the webhook hands the inbox: the update parsed, with its JSON."""
    document = text_update(update_id, text)
    return to_incoming(runtime.inbox.parse(document), document)


async def test_updates_arriving_while_the_lock_is_busy_share_one_insert(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, database = runtime.inbox, runtime.services.database
    queued: list[int] = []
    # Stored and queued, not handled: this test is about storing.
    monkeypatch.setattr(inbox.processor, "can_run_now", lambda _update: False)
    monkeypatch.setattr(inbox.processor, "submit", lambda item: queued.append(item.update_id))
    with statements(database) as seen:
        async with database.uow():  # a handler's transaction holds the write lock
            arriving = []
            for n in range(ARRIVING):  # one after the other, while the lock is busy
                arriving.append(asyncio.create_task(inbox.receive([received(runtime, n)])))
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


async def test_an_update_parsed_on_receipt_is_not_parsed_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = runtime.inbox
    update = received(runtime, 7, "/help")
    parsed_again: list[object] = []
    monkeypatch.setattr(inbox, "parse", parsed_again.append)
    assert await inbox.receive([update]) == [7]
    assert parsed_again == []
    async with runtime.services.database.uow() as uow:
        assert (await uow.repos.inbox.stats()).done == 1
        assert await uow.repos.citizens.by_telegram_id(5007) is not None


async def test_queued_updates_keep_their_parsed_form_only_while_the_backlog_is_short(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = runtime.inbox
    queued: list[IncomingUpdate] = []
    monkeypatch.setattr(inbox.processor, "can_run_now", lambda _update: False)
    monkeypatch.setattr(inbox.processor, "submit", queued.append)
    assert await inbox.receive([received(runtime, 1)]) == [1]
    monkeypatch.setattr(inbox_module, "KEEP_PARSED_BACKLOG", 0)
    assert await inbox.receive([received(runtime, 2)]) == [2]
    assert [item.update_id for item in queued] == [1, 2]
    assert queued[0].parsed is not None and queued[0].parsed.update_id == 1
    assert queued[1].parsed is None and queued[1].payload["update_id"] == 2
