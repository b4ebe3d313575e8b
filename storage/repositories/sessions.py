"""Dialog sessions: one open conversation per citizen, saved with every accepted answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DialogSession
from storage.records import SessionRecord

# The rows this transaction has read or written, by citizen id (None: no session).
# The ORM's identity map holds rows weakly, so a row read and dropped is read again.
_ROWS = "dialog_session_rows"


def _rows(session: AsyncSession) -> dict[int, DialogSession | None]:
    rows: dict[int, DialogSession | None] = session.info.setdefault(_ROWS, {})
    return rows


def remember_row(session: AsyncSession, citizen_id: int, row: DialogSession | None) -> None:
    """Keep a citizen's session row (or its absence), read with another query, for this
    transaction: the update's handlers then read it without a statement."""
    _rows(session)[citizen_id] = row


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

    async def _row(self, citizen_id: int) -> DialogSession | None:
        rows = _rows(self._session)
        if citizen_id in rows:
            return rows[citizen_id]
        row = await self._session.get(DialogSession, citizen_id)
        rows[citizen_id] = row
        return row

    async def get(self, citizen_id: int) -> SessionRecord | None:
        """The citizen's open session, if any."""
        row = await self._row(citizen_id)
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
        nudge_at: datetime | None = None,
        pending_flow: str | None = None,
    ) -> None:
        """Create or replace the citizen's session (a new flow restarts the clock).

        Every save is activity: the reminder (``nudge_at``) is due again.
        """
        row = await self._row(citizen_id)
        if row is None or row.flow_id != flow_id or row.revision_id != revision_id:
            if row is not None:
                await self._session.delete(row)
                await self._session.flush()
            row = DialogSession(
                citizen_id=citizen_id,
                flow_id=flow_id,
                revision_id=revision_id,
                state=state,
                started_at=now,
                last_activity_at=now,
                expires_at=expires_at,
                nudge_at=nudge_at,
                nudged_at=None,
                pending_flow=pending_flow,
            )
            self._session.add(row)
            _rows(self._session)[citizen_id] = row
            return
        row.state = state
        row.last_activity_at = now
        row.expires_at = expires_at
        row.nudge_at = nudge_at
        row.nudged_at = None
        row.pending_flow = pending_flow

    async def set_pending_flow(self, citizen_id: int, flow_id: str | None) -> None:
        """Remember which flow the citizen asked for while another was open."""
        row = await self._row(citizen_id)
        if row is not None:
            row.pending_flow = flow_id

    async def end(self, citizen_id: int) -> None:
        """Close the citizen's session (finished, cancelled or expired)."""
        await self._session.execute(
            delete(DialogSession).where(DialogSession.citizen_id == citizen_id)
        )
        _rows(self._session)[citizen_id] = None

    async def due(self, now: datetime, *, limit: int = 200) -> list[tuple[int, bool]]:
        """Sessions needing attention: ``(citizen id, expired)``, expired ones first."""
        expired = await self._session.scalars(
            select(DialogSession.citizen_id)
            .where(DialogSession.expires_at <= now)
            .order_by(DialogSession.expires_at)
            .limit(limit)
        )
        nudge = await self._session.scalars(
            select(DialogSession.citizen_id)
            .where(
                DialogSession.nudge_at <= now,
                DialogSession.nudged_at.is_(None),
                DialogSession.expires_at > now,
            )
            .order_by(DialogSession.nudge_at)
            .limit(limit)
        )
        return [(citizen, True) for citizen in expired] + [(citizen, False) for citizen in nudge]

    async def claim_nudge(self, citizen_id: int, now: datetime) -> bool:
        """Mark the reminder as sent, if it is still due (one instance wins)."""
        result = await self._session.execute(
            update(DialogSession)
            .where(
                DialogSession.citizen_id == citizen_id,
                DialogSession.nudged_at.is_(None),
                DialogSession.nudge_at <= now,
                DialogSession.expires_at > now,
            )
            .values(nudged_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def expire(self, citizen_id: int, now: datetime) -> str | None:
        """End the session if its time ran out; returns its flow id (one instance wins)."""
        row = await self._row(citizen_id)
        if row is None or row.expires_at > now:
            return None
        result = await self._session.execute(
            delete(DialogSession).where(
                DialogSession.citizen_id == citizen_id, DialogSession.expires_at <= now
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        _rows(self._session)[citizen_id] = None
        return row.flow_id
