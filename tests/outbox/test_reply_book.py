"""The reply book: what became of an update's kept replies, written once they were sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Runtime
from bot.runtime.outgoing import ReplyBook, Retry, Settlement
from storage.db import Database
from storage.models import OutboxMessage
from storage.repositories.outbox import RETRY
from tests.support.inprocess import offline_runtime


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    """The bot's runtime on a fresh database; its Bot API is unreachable."""
    async with offline_runtime(database_url) as built:
        yield built


async def _rows(database: Database) -> dict[int, str]:
    """The outbox's rows and their status, read on a connection of their own."""
    async with database.engine.connect() as connection:
        found = await connection.execute(select(OutboxMessage.id, OutboxMessage.status))
        return {row.id: row.status for row in found}


async def test_sent_replies_are_deleted_at_once_and_retries_commit_together(
    runtime: Runtime,
) -> None:
    services = runtime.services
    database = services.database
    now = services.clock.now()
    replies = [
        {
            "chat_id": chat,
            "citizen_id": None,
            "kind": "reply",
            "method": "SendMessage",
            "payload": {"chat_id": chat, "text": "ok"},
        }
        for chat in (1, 2, 3)
    ]
    async with database.uow() as uow:
        sent, resent, failed = await uow.repos.outbox.start_sending(
            replies, worker_id=services.worker_id, now=now, lease_until=now + timedelta(minutes=1)
        )
    book = ReplyBook(services)
    # Every reply sent: the DELETE alone is durable when it returns (on PostgreSQL no
    # BEGIN and no COMMIT).
    async with database.uow(urgent=True) as uow:
        await book._write(uow, [Settlement(finished=[sent])])
        if not database.is_sqlite:
            assert set(await _rows(database)) == {resent, failed}
    assert set(await _rows(database)) == {resent, failed}
    # With a retry, the DELETE and the retry commit together, or not at all.
    async with database.uow(urgent=True) as uow:
        retry = Retry(failed, delay=5.0, error="TelegramRetryAfter")
        await book._write(uow, [Settlement(finished=[resent]), Settlement(retries=[retry])])
        if not database.is_sqlite:
            assert set(await _rows(database)) == {resent, failed}
    assert await _rows(database) == {failed: RETRY}
