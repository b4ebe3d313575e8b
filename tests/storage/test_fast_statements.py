"""The hot statements skip SQLAlchemy's execution layer, in the unit of work's transaction.

On PostgreSQL they run on the transaction's asyncpg connection; on SQLite on the kept
sqlite3 connection once the transaction holds the write lock. What they read and write
must be what SQLAlchemy's way reads and writes, inside the unit of work's transaction,
counted as statements, and their errors must surface as SQLAlchemy's, with the unit of
work rolled back.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from storage.db import Database, UnitOfWork
from storage.models import DialogSession, InboxUpdate, Report
from storage.records import CitizenRecord, IncomingUpdate, SessionRecord
from storage.repositories._fast import FastStatement, InPlaceSession
from storage.repositories.sessions import record_of, session_columns
from tests.support.sessions import citizen_with_session, save_state
from tests.support.sql import statements

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATE = {"step": "ask", "answers": {"text": "café ☕", "n": 1.5, "none": None, "list": [1, "x"]}}


@pytest.fixture
def postgres(database: Database) -> Database:
    """The database, PostgreSQL only."""
    if database.is_sqlite:
        pytest.skip("PostgreSQL's asyncpg connection")
    return database


@pytest.fixture
def ordinary_executions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements that went through SQLAlchemy's execution layer."""
    seen: list[str] = []
    original = Connection._execute_context

    def counted(
        self: Connection, dialect: Any, constructor: Any, statement: Any, *a: Any, **kw: Any
    ) -> Any:
        seen.append(str(statement))
        return original(self, dialect, constructor, statement, *a, **kw)

    monkeypatch.setattr(Connection, "_execute_context", counted)
    return seen


def incoming(update_id: int) -> IncomingUpdate:
    return IncomingUpdate(update_id=update_id, chat_id=7, user_id=7, payload={"update_id": 1})


async def _ana(uow: UnitOfWork, now: datetime = NOW) -> tuple[CitizenRecord, bool]:
    """ensure() of the test's citizen, Telegram user 77."""
    return await uow.repos.citizens.ensure(
        telegram_id=77, language="en", first_name="Ana", username=None, now=now
    )


async def _save_again(uow: UnitOfWork, citizen_id: int, **changes: Any) -> SessionRecord:
    """Read the citizen's open session and save it with :data:`STATE` and ``changes``;
    the session as read."""
    return await save_state(uow, citizen_id, STATE, **changes)


async def _citizen_with_session(database: Database) -> int:
    """Ana, Telegram user 77, with an open session."""
    return await citizen_with_session(database, 77, NOW)


async def test_the_hot_statements_skip_sqlalchemys_execution_layer(
    database: Database, ordinary_executions: list[str]
) -> None:
    citizen_id = await _citizen_with_session(database)
    ordinary_executions.clear()
    async with database.uow() as uow:
        assert await uow.repos.inbox.record_handled(incoming(1), NOW)
        await _ana(uow)
        await _save_again(uow, citizen_id, now=NOW, expires_at=NOW + timedelta(hours=2))
    async with database.uow() as uow:
        assert not await uow.repos.inbox.record_handled(incoming(1), NOW)
    assert ordinary_executions == []


async def test_what_they_read_and_write_is_what_sqlalchemy_reads_and_writes(
    database: Database,
) -> None:
    citizen_id = await _citizen_with_session(database)
    later = NOW + timedelta(minutes=30)
    async with database.uow() as uow:
        fast_citizen, _ = await _ana(uow)
        fast_session = await _save_again(
            uow,
            citizen_id,
            now=later,
            expires_at=later + timedelta(hours=1),
            nudge_at=None,
            pending_flow="rate",
        )
    async with database.uow() as uow:
        # Through SQLAlchemy's ordinary way: the ORM, and a SELECT of the session's columns.
        slow_citizen = await uow.repos.citizens.by_telegram_id(77)
        slow_session = record_of(
            (
                await uow.session.execute(
                    select(*session_columns()).where(DialogSession.citizen_id == citizen_id)
                )
            ).one()
        )
        row = (
            await uow.session.execute(
                select(DialogSession.state, DialogSession.nudge_at, DialogSession.last_activity_at)
            )
        ).one()
    assert fast_citizen == slow_citizen
    assert fast_citizen.created_at.tzinfo is UTC
    assert fast_session.started_at == NOW and fast_session.started_at.tzinfo is UTC
    assert slow_session is not None
    assert slow_session.state == STATE
    assert slow_session.pending_flow == "rate"
    assert row == (STATE, None, later)
    async with database.uow() as uow:
        again, _ = await _ana(uow, later)
        assert await uow.repos.sessions.get(citizen_id) == slow_session
    assert again == slow_citizen


async def test_the_first_statement_of_a_unit_of_work_runs_in_its_transaction(
    database: Database,
) -> None:
    async def handler_fails() -> None:
        async with database.uow() as uow:
            assert await uow.repos.inbox.record_handled(incoming(5), NOW)
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await handler_fails()
    async with database.uow() as uow:
        assert await uow.session.scalar(select(InboxUpdate.update_id)) is None
        # And the mark commits with the unit of work when it ends cleanly.
        assert await uow.repos.inbox.record_handled(incoming(5), NOW)
    async with database.uow() as uow:
        assert await uow.session.scalar(select(InboxUpdate.status)) == "done"


async def test_a_single_statement_unit_of_work_is_durable_at_once(postgres: Database) -> None:
    # On PostgreSQL it runs in autocommit (on SQLite it is an urgent transaction, and
    # a second one would wait for it).
    async with postgres.single_statement() as uow:
        assert await uow.repos.inbox.record_handled(incoming(6), NOW)
        async with postgres.uow() as other:  # another connection sees it already
            assert await other.session.scalar(select(InboxUpdate.update_id)) == 6


async def test_they_are_counted_as_statements(database: Database) -> None:
    await _citizen_with_session(database)
    with statements(database) as seen:
        async with database.uow() as uow:
            await uow.repos.inbox.record_handled(incoming(2), NOW)
            await _ana(uow)
    assert [statement.split()[0] for statement in seen] == ["INSERT", "SELECT"]
    assert "inbox_updates" in seen[0] and "citizens" in seen[1]


async def test_a_unique_violation_surfaces_as_sqlalchemys_and_rolls_back(
    database: Database,
) -> None:
    duplicate = FastStatement(
        insert(InboxUpdate).values(update_id=3, status="done", attempts=1, received_at=NOW)
    )
    async with database.uow() as uow:
        await duplicate.execute(uow.session, {})

    async def insert_twice() -> None:
        async with database.uow() as uow:
            assert await uow.repos.inbox.record_handled(incoming(4), NOW)
            await duplicate.execute(uow.session, {})

    with pytest.raises(IntegrityError):
        await insert_twice()
    async with database.uow() as uow:
        ids = (await uow.session.scalars(select(InboxUpdate.update_id))).all()
    assert ids == [3]


async def test_a_naive_datetime_is_refused_as_sqlalchemy_refuses_it(database: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with database.uow() as uow:
            await uow.repos.inbox.record_handled(incoming(8), NOW.replace(tzinfo=None))


async def test_a_dropped_connection_fails_the_unit_of_work_and_is_replaced(
    postgres: Database,
) -> None:
    async def lose_the_connection() -> None:
        async with postgres.uow() as uow:
            await uow.repos.inbox.record_handled(incoming(10), NOW)
            pid = await uow.session.scalar(text("SELECT pg_backend_pid()"))
            async with postgres.uow(urgent=True) as other:
                await other.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await uow.repos.inbox.record_handled(incoming(11), NOW)

    with pytest.raises(DBAPIError) as raised:
        await lose_the_connection()
    assert raised.value.connection_invalidated
    async with postgres.uow() as uow:
        assert await uow.repos.inbox.record_handled(incoming(12), NOW)
        ids = (await uow.session.scalars(select(InboxUpdate.update_id))).all()
    assert ids == [12]


async def test_a_statement_it_cannot_run_exactly_is_refused(database: Database) -> None:
    # A float expression's result processor (not a float column's) reads the driver's
    # column type, which a plan compiled before execution does not know.
    doubled = FastStatement(select(Report.latitude * 2))
    async with database.uow() as uow:
        with pytest.raises(TypeError, match="not a statement FastStatement can run"):
            await doubled.execute(uow.session, {})


async def test_a_float_column_reads_as_sqlalchemy_reads_it(database: Database) -> None:
    async with database.uow() as uow:
        service = await uow.repos.catalog.upsert_service(code="roads", names={"en": "Roads"})
        category = await uow.repos.catalog.upsert_category(
            code="pothole", service_id=service, names={"en": "Pothole"}, target_days=5, radius_m=50
        )
        created = await uow.repos.reports.create(
            citizen_id=None,
            category_id=category,
            service_id=service,
            description="x",
            latitude=48.856613,
            longitude=-2.0,
            address=None,
            anonymous=True,
            language="en",
            now=NOW,
            due_at=NOW,
        )
    where = Report.id == bindparam("p_id")
    fast = FastStatement(select(Report.latitude, Report.longitude).where(where))
    async with database.uow() as uow:
        row = (await fast.execute(uow.session, {"p_id": created.id})).one()
        ordinary = (await uow.session.execute(fast.statement, {"p_id": created.id})).one()
    assert row == tuple(ordinary) == (48.856613, -2.0)
    assert all(type(value) is float for value in row)


async def test_sqlite_takes_the_ordinary_way_when_refused_for_a_lock(
    database: Database, monkeypatch: pytest.MonkeyPatch, ordinary_executions: list[str]
) -> None:
    # Not expected with the write lock held; if SQLite says busy anyway, the statement
    # did not run, and SQLAlchemy's way (which waits for the lock) runs it once.
    if not database.is_sqlite:
        pytest.skip("SQLite's kept connection")
    async with database.uow() as uow:
        assert isinstance(uow.session, InPlaceSession)
        connection = await uow.session.in_place()
        assert connection is not None
        driver: Any = connection.connection.driver_connection
        refused: list[str] = []

        def busy(sql: str, *_args: Any) -> Any:
            refused.append(sql)
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(driver, "execute", busy, raising=False)
        assert await uow.repos.inbox.record_handled(incoming(20), NOW)
        monkeypatch.undo()
    assert len(refused) == 1 and "INSERT INTO inbox_updates" in refused[0]
    assert len(ordinary_executions) == 1 and ordinary_executions[0] == refused[0]
    async with database.uow() as uow:
        assert (await uow.session.scalars(select(InboxUpdate.update_id))).all() == [20]


async def test_the_citizen_is_read_with_the_inbox_check(database: Database) -> None:
    citizen_id = await _citizen_with_session(database)
    # PostgreSQL reads whether the update is known with the citizen, and marks it at the
    # end; SQLite marks it first, then reads the citizen (a statement costs no trip).
    postgres = not database.is_sqlite
    with statements(database) as seen:
        async with database.uow() as uow:
            assert await uow.repos.inbox.open(30, NOW, new=True, reading=77)
            citizen, created = await _ana(uow)
            session = await uow.repos.sessions.get(citizen_id)
            assert await uow.repos.inbox.settle()
    expected = ["SELECT", "WITH"] if postgres else ["INSERT", "SELECT"]
    assert [s.split()[0] for s in seen] == expected
    assert citizen.id == citizen_id and not created
    assert session is not None and session.state == {"step": "start"}

    # A stranger: read as nobody, then registered.
    with statements(database) as seen:
        async with database.uow() as uow:
            assert await uow.repos.inbox.open(31, NOW, new=True, reading=78)
            stranger, created = await uow.repos.citizens.ensure(
                telegram_id=78, language="fr", first_name="Zoé", username=None, now=NOW
            )
            assert await uow.repos.sessions.get(stranger.id) is None
            assert await uow.repos.inbox.settle()
    assert created and stranger.telegram_id == 78 and stranger.language == "fr"
    assert [s.split()[0] for s in seen] == (
        ["SELECT", "INSERT", "WITH"] if postgres else ["INSERT", "SELECT", "INSERT"]
    )

    # A stored update is claimed the same way, once; a repeat is refused.
    async with database.uow() as uow:
        await uow.repos.inbox.store([incoming(32)], NOW)
    for expected in (True, False):
        async with database.uow() as uow:
            assert await uow.repos.inbox.open(32, NOW, new=False, reading=77) is expected
            again, _ = await _ana(uow)
            assert again == citizen
            assert await uow.repos.inbox.settle()
    async with database.uow() as uow:
        assert not await uow.repos.inbox.open(30, NOW, new=True, reading=77)
        # What was read ahead serves only the citizen it was read for.
        other, _ = await uow.repos.citizens.ensure(
            telegram_id=78, language="en", first_name="Zoé", username=None, now=NOW
        )
        assert other.id == stranger.id
