"""Dialog sessions: one open conversation per citizen, saved with every accepted answer.

The statements are Core statements on the table, built once: an update reads and
saves its citizen's session, and the ORM's unit of work would add more than the
statements cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DialogSession
from storage.records import SessionRecord
from storage.repositories._fast import FastStatement, typed_parameters

_TABLE = cast(Table, DialogSession.__table__)
_COLUMNS = (
    _TABLE.c.citizen_id,
    _TABLE.c.flow_id,
    _TABLE.c.revision_id,
    _TABLE.c.state,
    _TABLE.c.started_at,
    _TABLE.c.last_activity_at,
    _TABLE.c.expires_at,
    _TABLE.c.nudged_at,
    _TABLE.c.pending_flow,
)
_GET = FastStatement(select(*_COLUMNS).where(_TABLE.c.citizen_id == bindparam("p_citizen_id")))

# What this transaction knows of citizens' sessions, by citizen id (None: none open),
# so that reading it again, or saving it, costs no SELECT.
_KNOWN = "dialog_sessions_known"
# A write left for the transaction's last statement (see defer_writes): its kind and
# its parameters.
_DEFERRED = "dialog_sessions_deferred"
_DEFERRING = "dialog_sessions_deferring"


def _known(session: AsyncSession) -> dict[int, SessionRecord | None]:
    known: dict[int, SessionRecord | None] = session.info.setdefault(_KNOWN, {})
    return known


def session_columns() -> tuple[Any, ...]:
    """The columns :func:`record_of` reads, for a query that joins the session in."""
    return _COLUMNS


def record_of(row: Row[Any] | tuple[Any, ...]) -> SessionRecord | None:
    """The session in ``row`` (the :func:`session_columns`), None when they are NULL."""
    if row[0] is None:
        return None
    return SessionRecord(
        citizen_id=row[0],
        flow_id=row[1],
        revision_id=row[2],
        state=dict(row[3]),
        started_at=row[4],
        last_activity_at=row[5],
        expires_at=row[6],
        nudged_at=row[7],
        pending_flow=row[8],
    )


def remember(session: AsyncSession, citizen_id: int, record: SessionRecord | None) -> None:
    """Note a citizen's session (or that there is none), read by another query, for this
    transaction: the update's handlers then read it without a statement."""
    _known(session)[citizen_id] = record


def saving(*also: Any) -> Any:
    """The save of a session as an UPDATE, that also requires the conditions ``also``
    when given (to write it together with something else: a CTE, on PostgreSQL). Its
    parameters: ``p_citizen_id``, ``p_state``, ``p_now``, ``p_expires_at``,
    ``p_nudge_at``, ``p_pending_flow``."""
    return (
        update(_TABLE)
        .where(_TABLE.c.citizen_id == bindparam("p_citizen_id"), *also)
        .values(
            state=bindparam("p_state", type_=_TABLE.c.state.type),
            last_activity_at=bindparam("p_now", type_=_TABLE.c.last_activity_at.type),
            expires_at=bindparam("p_expires_at", type_=_TABLE.c.expires_at.type),
            nudge_at=bindparam("p_nudge_at", type_=_TABLE.c.nudge_at.type),
            nudged_at=None,
            pending_flow=bindparam("p_pending_flow", type_=_TABLE.c.pending_flow.type),
        )
    )


def starting(*also: Any) -> Any:
    """The start of a session as an INSERT, that also requires the conditions ``also``
    when given (see :func:`saving`). Its parameters: the save's, ``p_flow_id`` and
    ``p_revision_id``."""
    typed = typed_parameters(
        _TABLE,
        ["citizen_id", "flow_id", "revision_id", "state", "expires_at", "nudge_at"],
    )
    now = bindparam("p_now", type_=_TABLE.c.started_at.type)
    pending_flow = bindparam("p_pending_flow", type_=_TABLE.c.pending_flow.type)
    values = {**typed, "started_at": now, "last_activity_at": now, "pending_flow": pending_flow}
    return insert(_TABLE).from_select(list(values), select(*values.values()).where(*also))


def ending(*also: Any) -> Any:
    """The end of a session as a DELETE, that also requires the conditions ``also``
    when given (see :func:`saving`). Its parameter: ``p_citizen_id``."""
    return delete(_TABLE).where(_TABLE.c.citizen_id == bindparam("p_citizen_id"), *also)


# The writes a transaction may leave for its last statement (see defer_writes), by kind.
DEFERRABLE: dict[str, Callable[..., Any]] = {"save": saving, "start": starting, "end": ending}
_WRITE = {kind: FastStatement(write()) for kind, write in DEFERRABLE.items()}


def defer_writes(session: AsyncSession) -> None:
    """From now on in this transaction, the last write of a session (its save, start
    or end) is not run at once but left for :func:`take_deferred_write`: the caller
    runs it as part of the transaction's last statement (on PostgreSQL the inbox mark,
    in one round trip). Anything else this repository does first runs the write left
    waiting, and so does the unit of work's commit if nobody took it."""
    session.info[_DEFERRING] = True


def take_deferred_write(session: AsyncSession) -> tuple[str, dict[str, Any]] | None:
    """The kind (a key of :data:`DEFERRABLE`) and parameters of the write left waiting
    (see :func:`defer_writes`), now the caller's to run; None when there is none."""
    deferred: tuple[str, dict[str, Any]] | None = session.info.pop(_DEFERRED, None)
    return deferred


async def run_deferred_write(session: AsyncSession) -> None:
    """Run the write left waiting, if any (before anything else touches the sessions,
    and before the commit)."""
    deferred = take_deferred_write(session)
    if deferred is not None:
        kind, params = deferred
        await _WRITE[kind].execute(session, params)


async def _write(session: AsyncSession, kind: str, params: dict[str, Any]) -> None:
    """Run a write now, or leave it for the transaction's last statement (after the one
    left waiting, if any, is run: one waits at a time)."""
    waiting = session.info.get(_DEFERRED)
    if (
        kind == "save"
        and waiting is not None
        and waiting[0] == "save"
        and waiting[1]["p_citizen_id"] == params["p_citizen_id"]
    ):
        del session.info[_DEFERRED]  # the same row's every field: this save replaces it
    await run_deferred_write(session)
    if session.info.get(_DEFERRING):
        session.info[_DEFERRED] = (kind, params)
    else:
        await _WRITE[kind].execute(session, params)


class SessionRepository:
    """Reads, saves and ends dialog sessions."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, citizen_id: int) -> SessionRecord | None:
        """The citizen's open session, if any."""
        known = _known(self._session)
        if citizen_id in known:
            return known[citizen_id]
        row = (await _GET.execute(self._session, {"p_citizen_id": citizen_id})).first()
        record = None if row is None else record_of(row)
        known[citizen_id] = record
        return record

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
        current = await self.get(citizen_id)
        values = {
            "p_citizen_id": citizen_id,
            "p_state": state,
            "p_now": now,
            "p_expires_at": expires_at,
            "p_nudge_at": nudge_at,
            "p_pending_flow": pending_flow,
        }
        if current is not None and (current.flow_id, current.revision_id) == (
            flow_id,
            revision_id,
        ):
            await _write(self._session, "save", values)
            saved = dataclasses.replace(
                current,
                state=dict(state),
                last_activity_at=now,
                expires_at=expires_at,
                nudged_at=None,
                pending_flow=pending_flow,
            )
        else:
            if current is not None:
                await _write(self._session, "end", {"p_citizen_id": citizen_id})
            await _write(
                self._session,
                "start",
                {**values, "p_flow_id": flow_id, "p_revision_id": revision_id},
            )
            saved = SessionRecord(
                citizen_id=citizen_id,
                flow_id=flow_id,
                revision_id=revision_id,
                state=dict(state),
                started_at=now,
                last_activity_at=now,
                expires_at=expires_at,
                nudged_at=None,
                pending_flow=pending_flow,
            )
        _known(self._session)[citizen_id] = saved

    async def set_pending_flow(self, citizen_id: int, flow_id: str | None) -> None:
        """Remember which flow the citizen asked for while another was open."""
        current = await self.get(citizen_id)
        if current is None:
            return
        await run_deferred_write(self._session)
        await self._session.execute(
            update(_TABLE).where(_TABLE.c.citizen_id == citizen_id).values(pending_flow=flow_id)
        )
        _known(self._session)[citizen_id] = dataclasses.replace(current, pending_flow=flow_id)

    async def end(self, citizen_id: int) -> None:
        """Close the citizen's session (finished, cancelled or expired)."""
        await _write(self._session, "end", {"p_citizen_id": citizen_id})
        _known(self._session)[citizen_id] = None

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
        await run_deferred_write(self._session)
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
        _known(self._session).pop(citizen_id, None)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def expire(self, citizen_id: int, now: datetime) -> str | None:
        """End the session if its time ran out; returns its flow id (one instance wins)."""
        row = await self.get(citizen_id)
        if row is None or row.expires_at > now:
            return None
        await run_deferred_write(self._session)
        result = await self._session.execute(
            delete(DialogSession).where(
                DialogSession.citizen_id == citizen_id, DialogSession.expires_at <= now
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        _known(self._session)[citizen_id] = None
        return row.flow_id
