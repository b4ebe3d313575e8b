"""The migrations build exactly the schema the models describe, and go down again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage import migrate
from storage.db import Database
from storage.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
    assert await migrate.current_revision(database) == migrate.head_revision()


async def test_migrations_go_down_to_nothing_and_up_again(database_url: str) -> None:
    await asyncio.to_thread(migrate.downgrade_sync, database_url, "base")
    await migrate.upgrade(database_url)
    database = Database(database_url)
    try:
        assert await migrate.current_revision(database) == migrate.head_revision()
    finally:
        await database.dispose()
