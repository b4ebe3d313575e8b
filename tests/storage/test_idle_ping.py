"""PostgreSQL: a pooled connection is tested before use only after sitting idle."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from storage.db import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's connection pool")
    return database_url


async def backend_pid(database: Database) -> int:
    async with database.uow() as uow:
        return int((await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def kill(database: Database, pid: int) -> None:
    async with database.uow(urgent=True) as uow:
        await uow.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def count_pings(database: Database) -> list[int]:
    pings: list[int] = []
    dialect = database.engine.sync_engine.dialect
    real = dialect.do_ping

    def do_ping(dbapi_connection: object) -> bool:
        pings.append(1)
        return real(dbapi_connection)  # type: ignore[arg-type]

    dialect.do_ping = do_ping  # type: ignore[method-assign]
    return pings


async def test_a_connection_dropped_while_idle_is_replaced(postgres_url: str) -> None:
    database = Database(postgres_url, pool_size=1, ping_after_idle=0.0)
    try:
        pid = await backend_pid(database)
        await kill(database, pid)
        # Idle "long enough" (0 s): the dead connection fails its ping and is replaced.
        assert await backend_pid(database) != pid
    finally:
        await database.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(postgres_url: str) -> None:
    database = Database(postgres_url, pool_size=1, ping_after_idle=3600.0)
    try:
        pings = count_pings(database)
        checkouts: list[int] = []
        event.listen(database.engine.sync_engine, "checkout", lambda *_: checkouts.append(1))
        first = await backend_pid(database)
        for _ in range(3):
            assert await backend_pid(database) == first
        assert (len(checkouts), pings) == (4, [])
    finally:
        await database.dispose()
