"""PostgreSQL: an update's inbox mark waits for the end of its handling (open, settle).

``open`` reads whether the update is known, with the citizen, on its own; ``settle``
marks it and saves the citizen's dialog session in one statement. An update that
changes nothing else is durable when ``settle`` returns, with no BEGIN and no COMMIT;
anything else it wrote commits with the mark; if another transaction marked the update
meanwhile, ``settle`` says so and saves nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from storage.db import Database, UnitOfWork
from storage.models import DialogSession, InboxUpdate, Service
from storage.records import IncomingUpdate
from tests.support.databases import PostgresDatabases
from tests.support.sessions import citizen_with_session
from tests.support.sql import statements

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)
ANA = 77


@pytest.fixture
def database_backend(postgres_databases: PostgresDatabases) -> PostgresDatabases:
    """PostgreSQL only: SQLite marks at once (it has no data-modifying CTE)."""
    return postgres_databases


def incoming(update_id: int) -> IncomingUpdate:
    return IncomingUpdate(update_id=update_id, chat_id=ANA, user_id=ANA, payload={"u": 1})


async def _citizen_with_session(database: Database) -> int:
    return await citizen_with_session(database, ANA, NOW)


async def _answer(uow: UnitOfWork, step: str) -> int:
    """What a handler does for an answer: the citizen, then their session saved."""
    citizen, _ = await uow.repos.citizens.ensure(
        telegram_id=ANA, language="en", first_name="Ana", username=None, now=NOW
    )
    session = await uow.repos.sessions.get(citizen.id)
    assert session is not None
    await uow.repos.sessions.save(
        citizen.id,
        flow_id=session.flow_id,
        revision_id=session.revision_id,
        state={"step": step},
        now=LATER,
        expires_at=LATER + timedelta(hours=1),
    )
    return citizen.id


async def _seen_elsewhere(database: Database, update_id: int) -> tuple[str | None, str | None]:
    """From another connection: the update's inbox status and Ana's session step."""
    async with database.engine.connect() as connection:
        status = (
            await connection.execute(
                select(InboxUpdate.status).where(InboxUpdate.update_id == update_id)
            )
        ).scalar()
        state = (await connection.execute(select(DialogSession.state))).scalar()
    return status, (state or {}).get("step")


async def _roads_active(database: Database) -> bool | None:
    async with database.engine.connect() as connection:
        return (
            await connection.execute(select(Service.active).where(Service.code == "roads"))
        ).scalar()


async def test_an_answer_is_durable_when_settled_in_two_statements(database: Database) -> None:
    await _citizen_with_session(database)
    async with database.uow() as uow:
        assert await uow.repos.inbox.open(1, NOW, new=True, reading=ANA)
        await _answer(uow, "category")
        assert await _seen_elsewhere(database, 1) == (None, "start")
        assert await uow.repos.inbox.settle()
        # Committed by the statement itself: the commit has nothing left to send.
        assert await _seen_elsewhere(database, 1) == ("done", "category")
    with statements(database) as seen:
        async with database.uow() as uow:
            assert await uow.repos.inbox.open(9, NOW, new=True, reading=ANA)
            await _answer(uow, "location")
            assert await uow.repos.inbox.settle()
    assert [s.split()[0] for s in seen] == ["SELECT", "WITH"]  # read; mark with the save

    # The same for a stored update, which must still be pending.
    async with database.uow() as uow:
        await uow.repos.inbox.store([incoming(2)], NOW)
    async with database.uow() as uow:
        assert await uow.repos.inbox.open(2, NOW, new=False, reading=ANA)
        await _answer(uow, "pin")
        assert await uow.repos.inbox.settle()
        assert await _seen_elsewhere(database, 2) == ("done", "pin")
    for update_id, new in ((1, True), (2, False)):  # a repeat is refused at once
        async with database.uow() as uow:
            assert not await uow.repos.inbox.open(update_id, NOW, new=new, reading=ANA)


async def test_a_mark_made_meanwhile_elsewhere_saves_nothing(database: Database) -> None:
    await _citizen_with_session(database)
    async with database.uow() as uow:
        await uow.repos.inbox.store([incoming(4)], NOW)
    for update_id, new in ((3, True), (4, False)):
        async with database.uow() as uow:
            assert await uow.repos.inbox.open(update_id, NOW, new=new, reading=ANA)
            await _answer(uow, "lost")
            async with database.uow() as other:  # another instance handles it first
                if new:
                    assert await other.repos.inbox.record_handled(incoming(update_id), NOW)
                else:
                    assert await other.repos.inbox.close(update_id, NOW)
            assert not await uow.repos.inbox.settle()
        assert await _seen_elsewhere(database, update_id) == ("done", "start")


async def test_other_writes_commit_with_the_mark_or_not_at_all(database: Database) -> None:
    await _citizen_with_session(database)
    async with database.uow() as uow:
        assert await uow.repos.inbox.open(5, NOW, new=True, reading=ANA)
        await _answer(uow, "summary")
        uow.session.add(Service(code="roads", names={"en": "Roads"}))  # settle flushes it
        assert await uow.repos.inbox.settle()
        # In one transaction, not committed yet: nothing shows elsewhere.
        assert await _seen_elsewhere(database, 5) == (None, "start")
    assert await _seen_elsewhere(database, 5) == ("done", "summary")
    assert await _roads_active(database)

    class RefusedError(Exception):
        pass

    async def handle_what_another_marks_meanwhile() -> None:
        async with database.uow() as uow:
            assert await uow.repos.inbox.open(6, NOW, new=True, reading=ANA)
            await _answer(uow, "lost")
            await uow.session.execute(text("UPDATE services SET active = false"))
            async with database.uow() as other:
                assert await other.repos.inbox.record_handled(incoming(6), NOW)
            if not await uow.repos.inbox.settle():
                raise RefusedError  # as the middleware does: roll back

    with pytest.raises(RefusedError):
        await handle_what_another_marks_meanwhile()
    assert await _roads_active(database)
    assert await _seen_elsewhere(database, 6) == ("done", "summary")


async def test_a_save_nobody_settled_still_commits(database: Database) -> None:
    citizen_id = await _citizen_with_session(database)
    async with database.uow() as uow:
        assert await uow.repos.inbox.open(7, NOW, new=True, reading=ANA)
        await _answer(uow, "description")
        # Ending the session runs the save left waiting first, then the DELETE.
        session = await uow.repos.sessions.get(citizen_id)
        assert session is not None
        await uow.repos.sessions.end(citizen_id)
        await uow.repos.sessions.save(
            citizen_id,
            flow_id="report",
            revision_id=session.revision_id,
            state={"step": "again"},
            now=LATER,
            expires_at=LATER + timedelta(hours=1),
        )
    assert await _seen_elsewhere(database, 7) == (None, "again")  # no settle: no mark
    async with database.uow() as uow:
        assert await uow.repos.inbox.open(8, NOW, new=True, reading=ANA)
        await _answer(uow, "anonymity")  # left waiting, then run by the commit
    assert await _seen_elsewhere(database, 8) == (None, "anonymity")
    async with database.uow() as uow:  # a later change of the session comes after it
        assert await uow.repos.inbox.open(10, NOW, new=True, reading=ANA)
        await _answer(uow, "send")
        await uow.repos.sessions.set_pending_flow(citizen_id, "rate")
        assert await uow.repos.inbox.settle()
    async with database.uow() as uow:
        session = await uow.repos.sessions.get(citizen_id)
    assert session is not None and session.pending_flow == "rate"
    assert session.state == {"step": "send"}


async def test_a_session_ended_or_started_is_written_with_the_mark(database: Database) -> None:
    """The end of a conversation, and the start of one, go with the mark too: two
    statements, no BEGIN; and not at all when the update was marked elsewhere."""
    citizen_id = await _citizen_with_session(database)
    async with database.uow() as uow:
        opened = await uow.repos.sessions.get(citizen_id)
    assert opened is not None
    revision_id = opened.revision_id

    async def end(uow: UnitOfWork) -> None:
        await uow.repos.sessions.end(citizen_id)

    async def start(uow: UnitOfWork) -> None:
        await uow.repos.sessions.save(
            citizen_id,
            flow_id="report",
            revision_id=revision_id,
            state={"step": "fresh"},
            now=LATER,
            expires_at=LATER + timedelta(hours=1),
        )

    async def handle(
        update_id: int, *writes: Any, elsewhere: bool = False
    ) -> tuple[list[str], tuple[str | None, str | None]]:
        """An update that reads Ana (as a handler does) and writes her session: the
        statements it sent before its settle, and what others saw right after it."""
        with statements(database) as seen:
            async with database.uow() as uow:
                assert await uow.repos.inbox.open(update_id, NOW, new=True, reading=ANA)
                await uow.repos.citizens.ensure(
                    telegram_id=ANA, language="en", first_name="Ana", username=None, now=NOW
                )
                for write in writes:
                    await write(uow)
                sent = [statement.split()[0] for statement in seen]
                if elsewhere:  # another instance handles it first
                    async with database.uow() as other:
                        assert await other.repos.inbox.record_handled(incoming(update_id), NOW)
                assert await uow.repos.inbox.settle() is not elsewhere
                settled = await _seen_elsewhere(database, update_id)
        return sent, settled

    # Durable when settled: no BEGIN, no COMMIT.
    assert await handle(11, end) == (["SELECT"], ("done", None))
    assert await handle(12, start) == (["SELECT"], ("done", "fresh"))
    # Ended and started again in one update: the end runs first (and begins the
    # transaction), the start goes with the mark, and both commit together.
    assert await handle(13, end, start) == (["SELECT", "DELETE"], (None, "fresh"))
    assert await _seen_elsewhere(database, 13) == ("done", "fresh")
    await handle(14, end, elsewhere=True)
    assert await _seen_elsewhere(database, 14) == ("done", "fresh")
    await handle(15, end)
    await handle(16, start, elsewhere=True)
    assert await _seen_elsewhere(database, 16) == ("done", None)
