"""Fresh, migrated databases for tests, on SQLite and on PostgreSQL.

Each backend is migrated once per test session into a template; every test gets
its own copy (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL), so tests that run the real bot in a subprocess see committed data
and never see each other's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from storage.migrate import upgrade_sync

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The PostgreSQL server tests use (TEST_DATABASE_URL, else the local one)."""
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES)


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def postgres_problem(url: str) -> str | None:
    """None when the server answers, else why it does not."""
    try:
        asyncio.run(_admin(url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    return None


class PostgresDatabases:
    """Creates per-test databases from a migrated template on one server."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"citizenbot_tpl_{uuid.uuid4().hex[:10]}"
        self._created: list[str] = []

    def url_for(self, name: str) -> str:
        """The SQLAlchemy URL of database ``name`` on the server."""
        return (
            make_url(self.server_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )

    def prepare(self) -> None:
        """Create and migrate the template database."""
        asyncio.run(_admin(self.server_url, f'CREATE DATABASE "{self.template}"'))
        upgrade_sync(self.url_for(self.template))

    async def create(self) -> str:
        """A new database copied from the template; returns its URL."""
        name = f"citizenbot_t_{uuid.uuid4().hex[:12]}"
        await _admin(self.server_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self._created.append(name)
        return self.url_for(name)

    async def drop(self, url: str) -> None:
        """Drop a database made by :meth:`create`, closing whatever still uses it."""
        name = make_url(url).database
        await _admin(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def cleanup(self) -> None:
        """Drop the template."""
        asyncio.run(
            _admin(self.server_url, f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        )


class SqliteDatabases:
    """Copies of one migrated SQLite file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"

    def prepare(self) -> None:
        """Create and migrate the template file."""
        upgrade_sync(f"sqlite+aiosqlite:///{self.template}")

    def create(self, directory: Path) -> str:
        """A new database file copied from the template; returns its URL."""
        target = directory / f"citizenbot-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(self.template, target)
        return f"sqlite+aiosqlite:///{target}"
