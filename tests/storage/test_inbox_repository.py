"""The inbox repository: store once, claim once, close, recover."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from storage.db import Database
from storage.models import InboxUpdate
from storage.records import IncomingUpdate
from tests.support.sql import statements

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def incoming(update_id: int, chat_id: int = 42) -> IncomingUpdate:
    return IncomingUpdate(
        update_id=update_id,
        chat_id=chat_id,
        user_id=chat_id,
        payload={"update_id": update_id, "message": {"text": f"hello {update_id}"}},
    )


async def test_a_repeated_update_id_is_stored_once(database: Database) -> None:
    async with database.uow() as uow:
        assert await uow.repos.inbox.store([incoming(1), incoming(2)], NOW) == [1, 2]
    async with database.uow() as uow:
        assert await uow.repos.inbox.store([incoming(2), incoming(3)], NOW) == [3]
    async with database.uow() as uow:
        stats = await uow.repos.inbox.stats()
    assert (stats.pending, stats.done, stats.failed) == (3, 0, 0)


async def test_concurrent_stores_of_one_update_keep_one_row(database: Database) -> None:
    async def store() -> list[int]:
        async with database.uow() as uow:
            return await uow.repos.inbox.store([incoming(7)], NOW)

    results = await asyncio.gather(*(store() for _ in range(8)))
    assert sorted(len(result) for result in results) == [0] * 7 + [1]


async def test_claim_succeeds_once_and_done_drops_the_payload(database: Database) -> None:
    async with database.uow() as uow:
        await uow.repos.inbox.store([incoming(5)], NOW)
    async with database.uow() as uow:
        assert await uow.repos.inbox.claim(5)
        await uow.repos.inbox.mark_done(5, NOW)
    async with database.uow() as uow:
        assert not await uow.repos.inbox.claim(5)
        assert await uow.repos.inbox.pending() == []
        row = await uow.session.execute(text("SELECT payload, status FROM inbox_updates"))
        assert row.one() == (None, "done")


async def test_a_rolled_back_claim_leaves_the_update_pending(database: Database) -> None:
    async with database.uow() as uow:
        await uow.repos.inbox.store([incoming(9)], NOW)

    class CrashError(Exception):
        pass

    with pytest.raises(CrashError):  # noqa: PT012 - the crash inside the transaction is the point
        async with database.uow() as uow:
            assert await uow.repos.inbox.claim(9)
            raise CrashError
    async with database.uow() as uow:
        pending = await uow.repos.inbox.pending()
    assert [item.update_id for item in pending] == [9]
    assert pending[0].payload["message"]["text"] == "hello 9"


async def test_failed_updates_are_set_aside_and_can_be_requeued(database: Database) -> None:
    async with database.uow() as uow:
        await uow.repos.inbox.store([incoming(11), incoming(12)], NOW)
        await uow.repos.inbox.mark_failed(11, "ValueError", NOW)
    async with database.uow() as uow:
        assert [item.update_id for item in await uow.repos.inbox.pending()] == [12]
        assert (await uow.repos.inbox.stats()).failed == 1
        assert await uow.repos.inbox.requeue_failed() == 1
        assert [item.update_id for item in await uow.repos.inbox.pending()] == [11, 12]


async def test_purge_forgets_only_old_handled_updates(database: Database) -> None:
    async with database.uow() as uow:
        await uow.repos.inbox.store([incoming(20), incoming(21), incoming(22)], NOW)
        await uow.repos.inbox.mark_done(20, NOW - timedelta(days=3))
        await uow.repos.inbox.mark_done(21, NOW)
    async with database.uow() as uow:
        assert await uow.repos.inbox.purge_handled(NOW - timedelta(days=1)) == 1
        stats = await uow.repos.inbox.stats()
    assert (stats.pending, stats.done) == (1, 1)


async def test_a_single_statement_store_is_durable_when_it_returns(database: Database) -> None:
    """On PostgreSQL without BEGIN and COMMIT (one round trip): another connection sees
    the rows while the unit of work is still open. On SQLite a transaction as usual."""
    async with database.single_statement() as uow:
        assert await uow.repos.inbox.store([incoming(7), incoming(8)], NOW) == [7, 8]
        if not database.is_sqlite:
            async with database.engine.connect() as other:
                seen = await other.scalar(text("SELECT count(*) FROM inbox_updates"))
            assert seen == 2
    async with database.uow() as uow:
        assert (await uow.repos.inbox.stats()).pending == 2


async def test_one_statement_stores_any_number_of_updates(database: Database) -> None:
    """On PostgreSQL the same SQL for two rows and for three (one prepared statement,
    the columns sent as arrays), and each row reads back as it came."""
    odd = IncomingUpdate(
        update_id=30,
        chat_id=None,
        user_id=None,
        payload={"update_id": 30, "channel_post": {"text": "é \u2028 ✓ " + "x" * 4000}},
    )
    with statements(database) as seen:
        async with database.single_statement() as uow:
            assert await uow.repos.inbox.store([incoming(31, chat_id=-5), odd], NOW) == [30, 31]
        async with database.single_statement() as uow:
            stored = await uow.repos.inbox.store([incoming(34), incoming(32), incoming(33)], NOW)
            assert stored == [32, 33, 34]
    assert len(seen) == 2
    if not database.is_sqlite:
        assert seen[0] == seen[1]
    async with database.uow() as uow:
        rows = {row.update_id: row for row in (await uow.session.scalars(select(InboxUpdate)))}
    assert sorted(rows) == [30, 31, 32, 33, 34]
    assert (rows[30].chat_id, rows[30].user_id, rows[30].payload) == (None, None, odd.payload)
    assert (rows[31].chat_id, rows[31].user_id) == (-5, -5)
    assert rows[31].payload == incoming(31).payload
    assert {row.status for row in rows.values()} == {"pending"}
    assert {row.received_at for row in rows.values()} == {NOW}
