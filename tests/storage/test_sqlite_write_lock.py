"""SQLite: a transaction waits for another process's lock, and checkpoints run off the
event loop; neither blocks it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from storage import inline_sqlite
from storage.db import Database

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_transaction_waits_for_another_process_lock_then_runs(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    busy_answers = 0
    waiting = asyncio.Event()
    real_busy = inline_sqlite.is_busy

    def busy(error: sqlite3.OperationalError) -> bool:
        nonlocal busy_answers
        found = real_busy(error)
        if found:
            busy_answers += 1
            # Once at the quick BEGIN, then at least once more while waiting.
            if busy_answers >= 2:
                waiting.set()
        return found

    monkeypatch.setattr(inline_sqlite, "is_busy", busy)
    other = sqlite3.connect(str(database.url.database), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")

        async def register() -> None:
            async with database.uow() as uow:
                await uow.repos.citizens.ensure(
                    telegram_id=7, language="en", first_name="A", username=None, now=NOW
                )

        task = asyncio.create_task(register())
        await waiting.wait()  # the event loop runs on while the task waits
        assert not task.done()
        other.execute("COMMIT")
        await task
    finally:
        other.close()
    async with database.uow() as uow:
        assert await uow.repos.citizens.by_telegram_id(7) is not None


async def test_a_transaction_holds_the_write_lock_from_its_first_statement(
    database: Database,
) -> None:
    if not database.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    other = sqlite3.connect(str(database.url.database), isolation_level=None, timeout=0)
    try:
        async with database.uow() as uow:
            await uow.repos.citizens.by_telegram_id(7)  # a read: the lock is taken anyway
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_checkpoints_run_in_a_worker_thread_not_in_commits(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database.is_sqlite:
        pytest.skip("SQLite's write-ahead log")
    assert database.checkpointer is not None
    threads: list[int] = []
    real = inline_sqlite.checkpoint

    def checkpoint(path: str) -> None:
        threads.append(threading.get_ident())
        real(path)

    monkeypatch.setattr(inline_sqlite, "checkpoint", checkpoint)
    for telegram_id in range(inline_sqlite.CHECKPOINT_EVERY):
        async with database.uow() as uow:
            await uow.repos.citizens.ensure(
                telegram_id=telegram_id, language="en", first_name="A", username=None, now=NOW
            )
    await database.checkpointer.wait()
    assert len(threads) == 1 and threads[0] != threading.get_ident()
    async with database.uow() as uow:
        autocheckpoint = (await uow.session.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
    # The bot's connections leave the log to the checkpointer.
    assert autocheckpoint == 0
