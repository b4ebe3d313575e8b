"""A citizen with an open dialog session, stored directly (for storage tests)."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.db import Database


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
