"""PostgreSQL: busy moments reuse the pool's connections instead of opening new ones."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from storage.db import Database
from tests.support.databases import PostgresDatabases

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_backend(postgres_databases: PostgresDatabases) -> PostgresDatabases:
    """PostgreSQL only: SQLite keeps one connection for its writers."""
    return postgres_databases


async def test_more_units_of_work_than_connections_open_no_new_ones(database_url: str) -> None:
    database = Database(database_url, pool_size=5)
    connects: list[int] = []
    event.listen(database.engine.sync_engine, "connect", lambda *_: connects.append(1))
    running = 0
    most = 0

    async def work() -> None:
        nonlocal running, most
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))  # holds a connection from here
            running += 1
            most = max(most, running)
            await uow.session.execute(text("SELECT pg_sleep(0.001)"))
            running -= 1

    try:
        # Waves of 40 at once (as 64 updates at once do): the pool's connections are
        # opened once and handed on, none closed on return and opened again.
        for _ in range(5):
            await asyncio.gather(*(work() for _ in range(40)))
    finally:
        await database.dispose()
    # No more transactions at once than the units of work may hold: the pool's five
    # but one, which stays for the engine's other users (long reads, health checks).
    assert most == 4
    assert len(connects) == 4
