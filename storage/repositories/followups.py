"""Scheduled follow-ups: rows with a due time, claimed with a lease.

Several bot processes may share one database, so a row is taken by one claimer only:
on PostgreSQL the claim selects due rows ``FOR UPDATE SKIP LOCKED`` (a row another
claimer is taking is skipped, not waited for); on SQLite it is a compare-and-set
``UPDATE ... WHERE <still claimable>`` inside a transaction that already holds the
database's write lock. A claim carries a lease: a row whose claimer crashed becomes
claimable again when its lease runs out, and ``attempts`` counts every claim.

Statuses: ``pending`` (waiting for its due time), ``claimed`` (a worker has it),
``done`` (it ran, or was found pointless: ``outcome`` says which), ``cancelled`` (its
subject went away or changed) and ``failed`` (it kept raising).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FollowUp, Opportunity, Signup
from storage.repositories._dialect import claim_update, dialect_name
from storage.repositories._fast import FastStatement, typed_parameters

PENDING: Final = "pending"
CLAIMED: Final = "claimed"
DONE: Final = "done"
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"
OPEN_STATUSES = (PENDING, CLAIMED)


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUpRecord:
    """One follow-up row."""

    id: int
    rule: str
    citizen_id: int | None
    subject_type: str
    subject_id: int
    due_at: datetime
    status: str
    attempts: int
    lease_until: datetime | None
    claimed_by: str | None
    idempotency_key: str
    payload: dict[str, Any]
    created_at: datetime
    done_at: datetime | None
    outcome: str | None


_COLUMNS = (
    FollowUp.id,
    FollowUp.rule,
    FollowUp.citizen_id,
    FollowUp.subject_type,
    FollowUp.subject_id,
    FollowUp.due_at,
    FollowUp.status,
    FollowUp.attempts,
    FollowUp.lease_until,
    FollowUp.claimed_by,
    FollowUp.idempotency_key,
    FollowUp.payload,
    FollowUp.created_at,
    FollowUp.done_at,
    FollowUp.outcome,
)


def _record(row: Any) -> FollowUpRecord:
    return FollowUpRecord(
        id=int(row.id),
        rule=row.rule,
        citizen_id=row.citizen_id,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        due_at=row.due_at,
        status=row.status,
        attempts=row.attempts,
        lease_until=row.lease_until,
        claimed_by=row.claimed_by,
        idempotency_key=row.idempotency_key,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        done_at=row.done_at,
        outcome=row.outcome,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignupSubject:
    """What a follow-up needs to know about a sign-up and its shift, whatever its status."""

    signup_id: int
    citizen_id: int | None
    status: str
    opportunity_id: int
    opportunity_code: str
    titles: dict[str, str]
    place: str
    starts_at: datetime
    ends_at: datetime
    opportunity_status: str


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Due and waiting, or claimed by a worker whose lease ran out."""
    return or_(
        and_(FollowUp.status == PENDING, FollowUp.due_at <= now),
        and_(FollowUp.status == CLAIMED, FollowUp.lease_until <= now),
    )


def _held_by(followup_id: int, worker_id: str) -> ColumnElement[bool]:
    """Still claimed by ``worker_id`` (not taken over, not cancelled meanwhile)."""
    return and_(
        FollowUp.id == followup_id, FollowUp.status == CLAIMED, FollowUp.claimed_by == worker_id
    )


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


_FOLLOWUPS = cast(Table, FollowUp.__table__)


def _schedule(insert: Any) -> Any:
    values = typed_parameters(
        _FOLLOWUPS,
        (
            "rule",
            "citizen_id",
            "subject_type",
            "subject_id",
            "due_at",
            "idempotency_key",
            "payload",
            "created_at",
        ),
    )
    return (
        insert(_FOLLOWUPS)
        .values(status=PENDING, attempts=0, **values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_FOLLOWUPS.c.id)
    )


# Core statements built once: every new report and sign-up schedules follow-ups.
_SCHEDULE = {
    "sqlite": FastStatement(_schedule(sqlite.insert)),
    "postgresql": FastStatement(_schedule(postgresql.insert)),
}


class FollowUpRepository:
    """Schedules, claims, finishes and cancels follow-ups (never commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def schedule(
        self,
        *,
        rule: str,
        citizen_id: int | None,
        subject_type: str,
        subject_id: int,
        due_at: datetime,
        idempotency_key: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> int | None:
        """Add a pending follow-up; None when one with this idempotency key exists."""
        statement = _SCHEDULE[dialect_name(self._session)]
        values = {
            "p_rule": rule,
            "p_citizen_id": citizen_id,
            "p_subject_type": subject_type,
            "p_subject_id": subject_id,
            "p_due_at": due_at,
            "p_idempotency_key": idempotency_key,
            "p_payload": payload,
            "p_created_at": now,
        }
        new_id = (await statement.execute(self._session, values)).scalar()
        return None if new_id is None else int(new_id)

    async def claim_due(
        self, *, now: datetime, worker_id: str, lease_until: datetime, limit: int = 50
    ) -> list[FollowUpRecord]:
        """Take up to ``limit`` due follow-ups for ``worker_id`` until ``lease_until``.

        Soonest due first. Commit promptly: on PostgreSQL the rows stay locked until
        the transaction ends.
        """
        statement = claim_update(
            self._session,
            FollowUp,
            claimable=_claimable(now),
            order_by=(FollowUp.due_at, FollowUp.id),
            limit=limit,
            values={
                "status": CLAIMED,
                "claimed_by": worker_id,
                "lease_until": lease_until,
                "attempts": FollowUp.attempts + 1,
            },
            returning=_COLUMNS,
        )
        result = await self._session.execute(statement)
        return sorted((_record(row) for row in result.all()), key=lambda r: (r.due_at, r.id))

    async def hold(self, followup_id: int, worker_id: str) -> FollowUpRecord | None:
        """The follow-up, locked until the transaction ends, if ``worker_id`` still has it.

        None when another worker took it over (the lease ran out) or it was cancelled
        meanwhile: the caller must then leave it alone.
        """
        statement = select(*_COLUMNS).where(_held_by(followup_id, worker_id)).with_for_update()
        row = (await self._session.execute(statement)).one_or_none()
        return None if row is None else _record(row)

    async def finish(
        self, followup_id: int, worker_id: str, *, outcome: str, now: datetime, failed: bool = False
    ) -> bool:
        """Mark a held follow-up done (or failed); False if the worker no longer has it."""
        result = await self._session.execute(
            update(FollowUp)
            .where(_held_by(followup_id, worker_id))
            .values(
                status=FAILED if failed else DONE,
                outcome=outcome[:32],
                done_at=now,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def postpone(
        self,
        followup_id: int,
        worker_id: str,
        *,
        due_at: datetime,
        payload: dict[str, Any] | None = None,
        outcome: str | None = None,
    ) -> bool:
        """Give a held follow-up back, due again at ``due_at`` (a busy citizen, the night)."""
        values: dict[str, Any] = {
            "status": PENDING,
            "due_at": due_at,
            "claimed_by": None,
            "lease_until": None,
            "outcome": outcome,
        }
        if payload is not None:
            values["payload"] = payload
        result = await self._session.execute(
            update(FollowUp)
            .where(_held_by(followup_id, worker_id))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def by_id(self, followup_id: int) -> FollowUpRecord | None:
        """The follow-up with this id, if any."""
        row = (
            await self._session.execute(select(*_COLUMNS).where(FollowUp.id == followup_id))
        ).one_or_none()
        return None if row is None else _record(row)

    async def for_subject(
        self,
        subject_type: str,
        subject_ids: Sequence[int],
        *,
        statuses: Collection[str] | None = OPEN_STATUSES,
    ) -> list[FollowUpRecord]:
        """Follow-ups about these subjects (by default the ones still to run), by due time."""
        if not subject_ids:
            return []
        statement = select(*_COLUMNS).where(
            FollowUp.subject_type == subject_type, FollowUp.subject_id.in_(list(subject_ids))
        )
        if statuses is not None:
            statement = statement.where(FollowUp.status.in_(list(statuses)))
        rows = await self._session.execute(statement.order_by(FollowUp.due_at, FollowUp.id))
        return [_record(row) for row in rows.all()]

    async def reschedule(
        self, followup_id: int, *, due_at: datetime, payload: dict[str, Any]
    ) -> bool:
        """Move a pending follow-up (its subject moved); False if it is no longer pending."""
        result = await self._session.execute(
            update(FollowUp)
            .where(FollowUp.id == followup_id, FollowUp.status == PENDING)
            .values(due_at=due_at, payload=payload)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def cancel(self, followup_ids: Sequence[int], *, outcome: str, now: datetime) -> int:
        """Cancel these follow-ups if they have not run; returns how many were cancelled."""
        if not followup_ids:
            return 0
        result = await self._session.execute(
            update(FollowUp)
            .where(FollowUp.id.in_(list(followup_ids)), FollowUp.status.in_(OPEN_STATUSES))
            .values(status=CANCELLED, outcome=outcome[:32], done_at=now, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def cancel_for_subject(
        self,
        subject_type: str,
        subject_ids: Sequence[int],
        *,
        outcome: str,
        now: datetime,
        rules: Collection[str] | None = None,
    ) -> int:
        """Cancel what is still to run about these subjects (only ``rules``, if given).

        A follow-up a worker is running right now is locked by it (PostgreSQL) or
        behind the write lock (SQLite): this waits, then finds it done and leaves it.
        """
        if not subject_ids:
            return 0
        statement = update(FollowUp).where(
            FollowUp.subject_type == subject_type,
            FollowUp.subject_id.in_(list(subject_ids)),
            FollowUp.status.in_(OPEN_STATUSES),
        )
        if rules is not None:
            statement = statement.where(FollowUp.rule.in_(list(rules)))
        result = await self._session.execute(
            statement.values(
                status=CANCELLED, outcome=outcome[:32], done_at=now, lease_until=None
            ).execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def cancel_for_citizen(self, citizen_id: int, *, outcome: str, now: datetime) -> int:
        """Cancel every follow-up still to run for the citizen (erasure)."""
        result = await self._session.execute(
            update(FollowUp)
            .where(FollowUp.citizen_id == citizen_id, FollowUp.status.in_(OPEN_STATUSES))
            .values(status=CANCELLED, outcome=outcome[:32], done_at=now, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def purge_finished(self, before: datetime) -> int:
        """Delete follow-ups that ended (done, cancelled, failed) before ``before``."""
        result = await self._session.execute(
            delete(FollowUp)
            .where(FollowUp.status.not_in(list(OPEN_STATUSES)), FollowUp.done_at < before)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def signup_subject(self, signup_id: int) -> SignupSubject | None:
        """The sign-up (cancelled ones too) with its shift, as rules about it read them."""
        row = (
            await self._session.execute(
                select(
                    Signup.id,
                    Signup.citizen_id,
                    Signup.status,
                    Opportunity.id.label("opportunity_id"),
                    Opportunity.code,
                    Opportunity.titles,
                    Opportunity.place,
                    Opportunity.starts_at,
                    Opportunity.ends_at,
                    Opportunity.status.label("opportunity_status"),
                )
                .join(Opportunity, Opportunity.id == Signup.opportunity_id)
                .where(Signup.id == signup_id)
            )
        ).one_or_none()
        if row is None:
            return None
        return SignupSubject(
            signup_id=row.id,
            citizen_id=row.citizen_id,
            status=row.status,
            opportunity_id=row.opportunity_id,
            opportunity_code=row.code,
            titles={str(k): str(v) for k, v in (row.titles or {}).items()},
            place=row.place,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            opportunity_status=row.opportunity_status,
        )

    async def signup_ids_of_opportunity(self, opportunity_id: int) -> list[int]:
        """Every sign-up of the opportunity, whatever its status (to find follow-ups)."""
        rows = await self._session.scalars(
            select(Signup.id).where(Signup.opportunity_id == opportunity_id).order_by(Signup.id)
        )
        return list(rows)

    async def next_due(self) -> datetime | None:
        """When the soonest pending follow-up is due (None when nothing is pending)."""
        return await self._session.scalar(
            select(func.min(FollowUp.due_at)).where(FollowUp.status == PENDING)
        )

    async def count_by_status(self) -> dict[str, int]:
        """How many follow-ups are in each status."""
        rows = await self._session.execute(
            select(FollowUp.status, func.count()).group_by(FollowUp.status)
        )
        return {status: int(count) for status, count in rows.all()}
