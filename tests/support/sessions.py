"""A citizen with an open dialog session, stored directly (for storage tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from storage.db import Database, UnitOfWork
from storage.records import SessionRecord


async def citizen_with_session(database: Database, telegram_id: int, now: datetime) -> int:
    """Register Ana (``telegram_id``) with a report-flow session at step "start", open
    for an hour from ``now``; her citizen id."""
    async with database.uow() as uow:
        citizen, created = await uow.repos.citizens.ensure(
            telegram_id=telegram_id, language="en", first_name="Ana", username=None, now=now
        )
        assert created
        revision = await uow.repos.flows.add(
            flow_id="report", source="id: report", checksum="c", author="test", now=now
        )
        await uow.repos.sessions.save(
            citizen.id,
            flow_id="report",
            revision_id=revision.id,
            state={"step": "start"},
            now=now,
            expires_at=now + timedelta(hours=1),
        )
    return citizen.id


async def save_state(
    uow: UnitOfWork, citizen_id: int, state: dict[str, Any], **changes: Any
) -> SessionRecord:
    """Save the citizen's open session, on its flow, with ``state`` and ``changes``
    (``now``, ``expires_at``…); the session as it was read."""
    session = await uow.repos.sessions.get(citizen_id)
    assert session is not None
    await uow.repos.sessions.save(
        citizen_id,
        flow_id=session.flow_id,
        revision_id=session.revision_id,
        state=state,
        **changes,
    )
    return session
