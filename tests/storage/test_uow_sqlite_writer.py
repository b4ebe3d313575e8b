"""SQLite's units of work: one kept connection, statements run without a greenlet once
the write lock is held, and the same commit, rollback and waiting as before."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.util.concurrency import in_greenlet

from storage import inline_sqlite
from storage.db import Database
from storage.models import Citizen
from tests.support.databases import SqliteDatabases

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def database_backend(sqlite_databases: SqliteDatabases) -> SqliteDatabases:
    """SQLite only: PostgreSQL's units of work are SQLAlchemy's own."""
    return sqlite_databases


@contextmanager
def engine_events(database: Database, name: str) -> Iterator[list[Any]]:
    """What the engine's ``name`` event saw inside the block (in_greenlet() at each)."""
    seen: list[Any] = []

    def note(*_args: Any) -> None:
        seen.append(in_greenlet())

    target = database.engine.sync_engine
    event.listen(target, name, note)
    try:
        yield seen
    finally:
        event.remove(target, name, note)


async def register(database: Database, telegram_id: int) -> None:
    async with database.uow() as uow:
        await uow.repos.citizens.ensure(
            telegram_id=telegram_id, language="en", first_name="A", username=None, now=NOW
        )


async def count_citizens(database: Database) -> int:
    async with database.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Citizen)) or 0)


async def test_statements_and_commit_run_without_a_greenlet(database: Database) -> None:
    await register(database, 1)  # the connection is opened (through the pool) once
    with (
        engine_events(database, "before_cursor_execute") as statements,
        engine_events(database, "commit") as commits,
    ):
        await register(database, 2)
        await register(database, 1)
    assert statements and commits
    assert not any(statements) and not any(commits)


async def test_writers_keep_one_connection(database: Database) -> None:
    await register(database, 1)
    with engine_events(database, "checkout") as checkouts:
        for telegram_id in range(2, 6):
            await register(database, telegram_id)
        await asyncio.gather(*(register(database, telegram_id) for telegram_id in range(6, 9)))
    assert checkouts == []
    assert await count_citizens(database) == 8


async def test_an_exception_rolls_back_and_the_next_unit_of_work_starts_clean(
    database: Database,
) -> None:
    async def fail_after_a_write() -> None:
        async with database.uow() as uow:
            await uow.repos.citizens.ensure(
                telegram_id=1, language="en", first_name="A", username=None, now=NOW
            )
            raise LookupError

    with pytest.raises(LookupError):
        await fail_after_a_write()
    assert await count_citizens(database) == 0
    await register(database, 2)
    assert await count_citizens(database) == 1


async def test_a_transaction_left_open_on_the_kept_connection_is_rolled_back(
    database: Database,
) -> None:
    await register(database, 1)
    assert database._writer is not None
    driver = database._writer.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    # As if a unit of work had been cut short between BEGIN and its end.
    driver.execute("BEGIN IMMEDIATE")
    driver.execute("DELETE FROM citizens")
    await register(database, 2)
    assert await count_citizens(database) == 2


async def test_a_busy_statement_inside_the_transaction_waits_in_the_greenlet(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = inline_sqlite._patiently
    refused: list[bool] = []

    def busy_once_outside_the_greenlet(call: Any) -> Any:
        if not in_greenlet() and not refused:
            refused.append(True)
            raise sqlite3.OperationalError("database is locked")
        return real(call)

    async with database.uow() as uow:
        await uow.session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the lock is ours
        monkeypatch.setattr(inline_sqlite, "_patiently", busy_once_outside_the_greenlet)
        # A statement that takes SQLAlchemy's ordinary way (the hot ones run in place).
        await uow.session.execute(
            insert(Citizen).values(
                telegram_id=1, pseudonym="C-1", language="en", created_at=NOW, last_seen_at=NOW
            )
        )
    assert refused == [True]
    monkeypatch.undo()
    assert await count_citizens(database) == 1


async def test_an_empty_unit_of_work_takes_no_lock_and_commits_nothing(
    database: Database,
) -> None:
    with engine_events(database, "commit") as commits:
        async with database.uow():
            pass
    assert commits == []
    other = sqlite3.connect(str(database.url.database), isolation_level=None, timeout=0)
    try:
        async with database.uow():
            other.execute("BEGIN IMMEDIATE")  # nothing of ours holds SQLite's lock
            other.execute("ROLLBACK")
    finally:
        other.close()


async def test_the_engine_still_serves_asyncio_connections(database: Database) -> None:
    assert await database.ping()
    async with database.engine.connect() as connection:
        rows = await connection.execute(text("SELECT 1 UNION ALL SELECT 2"))
        assert [row[0] for row in rows] == [1, 2]
        async with connection.stream(text("SELECT 3")) as streamed:
            assert [row[0] async for row in streamed] == [3]
    await register(database, 1)
    async with database.uow() as uow:
        streamed_rows = await uow.session.stream(select(Citizen.telegram_id))
        assert [row[0] async for row in streamed_rows] == [1]


async def test_a_disposed_database_closes_the_kept_connection(database: Database) -> None:
    await register(database, 1)
    kept = database._writer
    assert kept is not None
    await database.dispose()
    assert kept.closed and database._writer is None


async def test_the_session_names_the_engine_as_its_bind(database: Database) -> None:
    async with database.uow() as uow:
        await uow.repos.citizens.by_telegram_id(1)
        assert uow.session.get_bind() is database.engine.sync_engine


async def test_disposing_during_a_unit_of_work_lets_it_commit_then_closes(
    database: Database,
) -> None:
    await register(database, 1)
    async with database.uow() as uow:
        await uow.repos.citizens.ensure(
            telegram_id=2, language="en", first_name="B", username=None, now=NOW
        )
        kept = database._writer
        await database.dispose()
        assert kept is not None and not kept.closed
        await uow.repos.citizens.ensure(
            telegram_id=3, language="en", first_name="C", username=None, now=NOW
        )
    assert kept.closed
    assert await count_citizens(database) == 3
