"""Shared fixtures: a fresh migrated database per test, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import settings

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient
from storage.db import Database
from tests.support.databases import (
    PostgresDatabases,
    SqliteDatabases,
    postgres_problem,
    postgres_url,
)
from tests.support.emulator import EmulatorServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# CI explores the same examples on every run, so a red build is reproducible;
# developers' runs keep searching new ones (and store what they find).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if IN_CI else "dev")


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    """The migrated SQLite template of this test session."""
    databases = SqliteDatabases(tmp_path_factory.mktemp("sqlite"))
    databases.prepare()
    return databases


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """The migrated PostgreSQL template; under CI an unreachable server fails the run."""
    url = postgres_url()
    problem = postgres_problem(url)
    if problem is not None:
        message = f"PostgreSQL at TEST_DATABASE_URL is unreachable ({problem})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    databases = PostgresDatabases(url)
    databases.prepare()
    yield databases
    databases.cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_backend(request: pytest.FixtureRequest) -> SqliteDatabases | PostgresDatabases:
    """Each backend in turn (resolved outside the event loop: set-up runs its own)."""
    name = "sqlite_databases" if request.param == "sqlite" else "postgres_databases"
    backend: SqliteDatabases | PostgresDatabases = request.getfixturevalue(name)
    return backend


@pytest.fixture
async def database_url(
    database_backend: SqliteDatabases | PostgresDatabases, tmp_path: Path
) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database of each backend."""
    if isinstance(database_backend, SqliteDatabases):
        yield database_backend.create(tmp_path)
        return
    url = await database_backend.create()
    yield url
    await database_backend.drop(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A :class:`Database` on a fresh, migrated database."""
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def emulator_server() -> AsyncIterator[EmulatorServer]:
    """A fresh Bot API emulator on 127.0.0.1 (quick webhook retries) and its client."""
    emulator = Emulator(webhook_retry_delays=(0.05, 0.1, 0.2))
    server = TestServer(emulator.create_app(), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    async with EmulatorClient(url) as client:
        yield EmulatorServer(emulator, url, client)
    await server.close()
