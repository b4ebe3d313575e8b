"""Readers: long reads (digests, exports) that neither hold SQLite's write lock nor run
on the event loop (storage.db.Database.reader)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from storage.db import Database
from storage.models import Citizen
from tests.support.databases import SqliteDatabases

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def add_citizen(database: Database, telegram_id: int) -> None:
    async with database.uow() as uow:
        await uow.repos.citizens.ensure(
            telegram_id=telegram_id, language="en", first_name=None, username=None, now=NOW
        )


async def citizens(uow_session: Any) -> int:
    return int(await uow_session.scalar(select(func.count()).select_from(Citizen)))


async def test_a_reader_takes_no_write_lock(database: Database) -> None:
    async with database.reader() as reader:
        before = await citizens(reader.session)
        async with asyncio.timeout(10):  # a writer would wait for the reader here
            await add_citizen(database, 1)
        async with database.uow() as uow:
            assert await citizens(uow.session) == before + 1


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Opened by the test; opened anyway after 20 s so a blocked loop fails, not hangs."""
    opened = threading.Event()
    timer = threading.Timer(20, opened.set)
    timer.start()
    yield opened
    timer.cancel()


class TestOnSqlite:
    """SQLite's readers (PostgreSQL's are ordinary transactions, rolled back)."""

    @pytest.fixture
    def database_backend(self, sqlite_databases: SqliteDatabases) -> SqliteDatabases:
        return sqlite_databases

    async def test_a_reader_reads_one_snapshot_and_cannot_write(self, database: Database) -> None:
        async with database.reader() as reader:
            before = await citizens(reader.session)
            await add_citizen(database, 2)
            assert await citizens(reader.session) == before  # its snapshot, not the new row
            with pytest.raises(OperationalError, match="readonly"):
                await reader.session.execute(text("DELETE FROM citizens"))

    async def test_a_reader_s_query_leaves_the_event_loop_free(
        self, database: Database, gate: threading.Event
    ) -> None:
        def waits_for_the_gate() -> int:
            opened_in_time = gate.wait()
            return 1 if opened_in_time else 0

        reader_engine = database.engines[-1]  # the readers' engine comes last

        @event.listens_for(reader_engine.sync_engine, "connect")
        def register(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.create_function("wait_for_gate", 0, waits_for_the_gate)

        async def long_read() -> int:
            async with database.reader() as reader:
                return int(await reader.session.scalar(text("SELECT wait_for_gate()")))

        reading = asyncio.create_task(long_read())
        # While the reader's query waits, this loop goes on: it writes and reads.
        await add_citizen(database, 3)
        async with database.uow() as uow:
            assert await uow.repos.citizens.by_telegram_id(3) is not None
        was_blocked = gate.is_set()  # only the 20 s safety timer could have opened it
        gate.set()
        assert await asyncio.wait_for(reading, 20) == 1
        assert not was_blocked
