"""Dialog sessions: one open conversation per citizen, saved with every accepted answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DialogSession
from storage.records import SessionRecord


def _record(row: DialogSession) -> SessionRecord:
    return SessionRecord(
        citizen_id=row.citizen_id,
        flow_id=row.flow_id,
        revision_id=row.revision_id,
        state=dict(row.state),
        started_at=row.started_at,
        last_activity_at=row.last_activity_at,
        expires_at=row.expires_at,
        nudged_at=row.nudged_at,
        pending_flow=row.pending_flow,
    )


class SessionRepository:
    """Reads, saves and ends dialog sessions."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, citizen_id: int) -> SessionRecord | None:
        """The citizen's open session, if any."""
        row = await self._session.get(DialogSession, citizen_id)
        return None if row is None else _record(row)

    async def save(
        self,
        citizen_id: int,
        *,
        flow_id: str,
        revision_id: int,
        state: dict[str, Any],
        now: datetime,
        expires_at: datetime,
        pending_flow: str | None = None,
    ) -> None:
        """Create or replace the citizen's session (a new flow restarts the clock)."""
        row = await self._session.get(DialogSession, citizen_id)
        if row is None or row.flow_id != flow_id or row.revision_id != revision_id:
            if row is not None:
                await self._session.delete(row)
                await self._session.flush()
            self._session.add(
                DialogSession(
                    citizen_id=citizen_id,
                    flow_id=flow_id,
                    revision_id=revision_id,
                    state=state,
                    started_at=now,
                    last_activity_at=now,
                    expires_at=expires_at,
                    nudged_at=None,
                    pending_flow=pending_flow,
                )
            )
            return
        row.state = state
        row.last_activity_at = now
        row.expires_at = expires_at
        row.nudged_at = None
        row.pending_flow = pending_flow

    async def set_pending_flow(self, citizen_id: int, flow_id: str | None) -> None:
        """Remember which flow the citizen asked for while another was open."""
        row = await self._session.get(DialogSession, citizen_id)
        if row is not None:
            row.pending_flow = flow_id

    async def end(self, citizen_id: int) -> None:
        """Close the citizen's session (finished, cancelled or expired)."""
        await self._session.execute(
            delete(DialogSession).where(DialogSession.citizen_id == citizen_id)
        )

    async def expired(self, now: datetime, *, limit: int = 500) -> list[SessionRecord]:
        """Sessions whose time ran out, oldest first."""
        rows = await self._session.scalars(
            select(DialogSession)
            .where(DialogSession.expires_at <= now)
            .order_by(DialogSession.expires_at)
            .limit(limit)
        )
        return [_record(row) for row in rows]
